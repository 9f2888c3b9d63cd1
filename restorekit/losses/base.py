"""What a loss is called with: the prediction, the target, and what else the method knows.

A loss registered in :data:`restorekit.LOSSES` is an ``nn.Module`` (subclassing :class:`Loss`
is recommended, not required) called as ``loss(pred, target, **ctx)``:

``pred``, ``target``
    N×3×H×W images in [0, 1]: the network's restored image and the image it should be.

``ctx["restoration"]``
    the backbone's :class:`~restorekit.models.contract.Restoration` of this pass, for losses
    that supervise auxiliary outputs too (PReNet's stages, JORDER-E's mask and rain level).
    Both built-in methods pass it.

``ctx["rain"]``
    the known degradation ``degraded - clean`` (N×3×H×W): exact for ``dt``'s hard pairs
    (the distilled rain added to a clean image) and for ``sv``'s pairs. The soft objective of
    ``dt`` has no known rain, so it passes neither key: a loss that needs them must not be the
    soft loss, and should say so when they are missing (see
    :class:`~restorekit.losses.structured.JORDERELoss`).

A loss returns a scalar tensor, zero when ``pred`` equals ``target`` (losses on auxiliary
outputs: when those are right too), computed in fp32 whatever the autocast precision.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Loss"]


class Loss(nn.Module):
    """Base of restorekit's losses: ``forward(pred, target, *, restoration=None, rain=None, **ctx)``."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        """The loss of ``pred`` against ``target``; ``ctx`` as the module docstring says."""
        raise NotImplementedError
