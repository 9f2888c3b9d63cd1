"""Base classes of the two kinds of schedules."""

from __future__ import annotations

__all__ = ["LossWeightSchedule", "LRSchedule"]


class LossWeightSchedule:
    """Weights of the distillation objective ``L = alpha(t)·L_H + beta(t)·L_S`` at iteration ``t >= 1``."""

    role = "loss_weights"

    def __call__(self, t: int) -> tuple[float, float]:
        raise NotImplementedError


class LRSchedule:
    """Multiplier of the base learning rate at iteration ``t`` (1-based) of ``total``."""

    role = "lr"

    def factor(self, t: int, total: int) -> float:
        raise NotImplementedError
