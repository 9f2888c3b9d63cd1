"""Soft-label filters: cheap restorations that remove the degradation and accept blur.

Registered in :data:`restorekit.FILTERS`; the training pipeline computes each photo's label
once and caches it (:mod:`restorekit.methods.soft_labels`).
"""

from .base import SoftLabelFilter

__all__ = ["SoftLabelFilter"]
