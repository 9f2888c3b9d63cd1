"""Training losses, registered in :data:`restorekit.LOSSES`.

Every loss is called as ``loss(pred, target, **ctx)``; :mod:`restorekit.losses.base` says what
``ctx`` may hold (the backbone's ``restoration`` and the known ``rain``). Pixel losses ignore it.
"""

from .base import Loss

__all__ = ["Loss"]
