"""Loss-weight schedules of the distillation objective (paper Eqs. 6, 9, 10 and Table VII)."""

from __future__ import annotations

from ..registries import SCHEDULERS
from .base import LossWeightSchedule

__all__ = ["DynamicWeights", "FixedWeights"]


@SCHEDULERS.register("dynamic")
class DynamicWeights(LossWeightSchedule):
    """``alpha = t / scale`` (optionally capped), ``beta = scale / (scale + t)``.

    The paper's Eqs. 9-10 use ``scale = 1000`` and no cap: the hard objective starts at zero
    and grows while the soft one fades, so the network first learns what rain is from the soft
    label and then learns to keep detail from the hard pairs. The authors' released code caps
    alpha: 10 for Rain1400, 50 for Rain200L; its DID-data variant uses ``scale = 500``, cap 100.
    A run much shorter than the paper's can shrink ``scale`` so that alpha reaches the same
    values at the same fraction of training.

    Args:
        scale: iterations over which alpha grows by 1 and beta halves.
        cap: upper bound of alpha (null: uncapped).
        beta_floor: lower bound of beta (0: none, the paper). Keeps the soft objective alive
            once alpha dominates, the only one that pushes back when the residual shrinks.
    """

    def __init__(self, scale: float = 1000.0, cap: float | None = None, beta_floor: float = 0.0) -> None:
        if scale <= 0:
            raise ValueError(f"dynamic scale must be positive, got {scale}")
        if cap is not None and cap <= 0:
            raise ValueError(f"dynamic cap must be positive or null, got {cap}")
        if beta_floor < 0:
            raise ValueError(f"dynamic beta_floor must be >= 0, got {beta_floor}")
        self.scale = float(scale)
        self.cap = cap
        self.beta_floor = float(beta_floor)

    def __call__(self, t: int) -> tuple[float, float]:
        alpha = t / self.scale
        if self.cap is not None:
            alpha = min(alpha, self.cap)
        return alpha, max(self.beta_floor, self.scale / (self.scale + t))


@SCHEDULERS.register("fixed")
class FixedWeights(LossWeightSchedule):
    """Constant weights; the paper's Table VII ablation uses ``alpha`` in {10, 100, 300} with ``beta = 1``.

    Args:
        alpha: weight of the hard objective.
        beta: weight of the soft objective.
    """

    def __init__(self, alpha: float = 100.0, beta: float = 1.0) -> None:
        if alpha < 0 or beta < 0:
            raise ValueError(f"fixed weights must be >= 0, got alpha={alpha}, beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def __call__(self, t: int) -> tuple[float, float]:
        return self.alpha, self.beta
