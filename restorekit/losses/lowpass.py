"""A low-frequency (brightness) anchor: L1 between block means of two images."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..registries import LOSSES
from .base import Loss

__all__ = ["LowPassL1Loss"]


@LOSSES.register("lowpass")
class LowPassL1Loss(Loss):
    """``mean |avgpool_b(pred) - avgpool_b(target)|``: compares only the ``b``×``b`` block means.

    Why distillation needs it: SSIM barely charges a uniform shift (at mid-grey a shift of
    ``d`` costs about ``2d²`` in its luminance term), and the hard pair cannot see one at all,
    since a brightness offset the network adds travels into the hard pair with the distilled
    residual and the same network takes it out again. So nothing held the brightness of the
    output, and runs drifted brighter. Between ``X - g(R)`` and the soft label this term ties
    the output's low frequencies to the label's, whose low frequencies are rain-free (a median
    keeps the background under sparse streaks) and which says nothing about detail, so the
    SSIM objectives stay in charge of everything finer than a block.

    Args:
        block: side of the averaged blocks in pixels (crops whose sides are not a multiple of
            it lose the remainder at the right and bottom).
    """

    def __init__(self, block: int = 8) -> None:
        super().__init__()
        if block < 1:
            raise ValueError(f"lowpass block must be >= 1 pixel, got {block}")
        self.block = block

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        if min(pred.shape[-2:]) < self.block:
            raise ValueError(f"lowpass block {self.block} is larger than the images ({tuple(pred.shape[-2:])})")
        return F.l1_loss(F.avg_pool2d(pred.float(), self.block), F.avg_pool2d(target.float(), self.block))
