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
