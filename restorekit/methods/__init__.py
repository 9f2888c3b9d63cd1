"""Training methods: ``dt`` (two-stage data distillation) and ``sv`` (supervised on pairs).

Both depend only on the backbone contract (:mod:`restorekit.models.contract`), so any
registered backbone trains either way.
"""

from .base import Method, StepOutput, build_method
from .dt import Distillation
from .sv import Supervised

__all__ = ["Method", "StepOutput", "Distillation", "Supervised", "build_method"]
