"""Training methods, registered in :data:`restorekit.METHODS`: ``dt`` (two-stage data distillation,
:mod:`restorekit.methods.dt`) and ``sv`` (supervised on pairs, :mod:`restorekit.methods.sv`).

Both depend only on the backbone contract (:mod:`restorekit.models.contract`), so any
registered backbone trains either way; :mod:`restorekit.methods.base` is the contract a method
meets, so that a plugin's method trains like the built-in ones.
"""

from .base import Baseline, Method, StepOutput, build_method

__all__ = ["Method", "StepOutput", "Baseline", "build_method"]
