"""Learning-rate schedules."""

from __future__ import annotations

from ..registries import SCHEDULERS
from .base import LRSchedule

__all__ = ["ConstantThenLinear"]


@SCHEDULERS.register("constant_then_linear")
class ConstantThenLinear(LRSchedule):
    """Constant for the first ``decay_start`` fraction of training, then linear decay to 0.

    The paper: 1e-4 for 150K iterations, then linearly to 0 over the next 150K
    (``decay_start = 0.5``). ``decay_start = 1`` keeps the rate constant.

    Args:
        decay_start: fraction of the iterations after which the decay begins, in [0, 1].
    """

    def __init__(self, decay_start: float = 0.5) -> None:
        if not 0.0 <= decay_start <= 1.0:
            raise ValueError(f"constant_then_linear decay_start must be in [0, 1], got {decay_start}")
        self.decay_start = float(decay_start)

    def factor(self, t: int, total: int) -> float:
        start = self.decay_start * total
        if t <= start or total <= start:
            return 1.0
        # Linear from 1 at the start of the decay to 0 after the last iteration.
        return max(0.0, (total - t + 1) / (total - start + 1))


@SCHEDULERS.register("multistep")
class MultiStep(LRSchedule):
    """Multiply the rate by ``gamma`` at each milestone, given as fractions of the training.

    PReNet's authors: epochs 30, 50, 80 of 100 with gamma 0.2 (``milestones: [0.3, 0.5, 0.8]``);
    DDN's: ×0.1 after one and two thirds of the iterations. Fractions keep a recipe's shape
    when ``train.iters`` changes.

    Args:
        milestones: increasing fractions of ``train.iters`` in (0, 1).
        gamma: multiplier applied at each milestone.
    """

    def __init__(self, milestones: list[float] = [0.5], gamma: float = 0.1) -> None:  # noqa: B006 - read only
        if not milestones or any(not 0.0 < m < 1.0 for m in milestones) or sorted(milestones) != list(milestones):
            raise ValueError(f"multistep milestones must be increasing fractions in (0, 1), got {milestones}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"multistep gamma must be in (0, 1], got {gamma}")
        self.milestones = tuple(float(m) for m in milestones)
        self.gamma = float(gamma)

    def factor(self, t: int, total: int) -> float:
        passed = sum(1 for m in self.milestones if t > m * total)
        return self.gamma**passed
