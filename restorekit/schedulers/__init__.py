"""Schedules, registered in :data:`restorekit.SCHEDULERS`.

Two roles share the registry: loss-weight schedules (``role = "loss_weights"``) give the
distillation weights ``(alpha(t), beta(t))``; learning-rate schedules (``role = "lr"``) give
the factor applied to the base learning rate. Both are pure functions of the iteration, so a
resumed run follows exactly the schedule of an uninterrupted one.
"""

from .base import LossWeightSchedule, LRSchedule

__all__ = ["LossWeightSchedule", "LRSchedule"]
