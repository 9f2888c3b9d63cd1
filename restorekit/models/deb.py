"""The detail enhancement block (DEB) of *Rain O'er Me*: a training-time adapter.

``g`` maps the network's residual ``R`` to ``R_e = g(R)``; the soft objective supervises
``x - R_e`` so that image detail blurred away by the soft label can live in ``R_e`` rather
than in the network's own residual (paper Eq. 8, Table I). It is not used at test time.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import DETAIL_BLOCKS
from .contract import check_sizes, init_normal_

__all__ = ["DetailEnhancementBlock", "DetailEnhancementBlockDID"]


@DETAIL_BLOCKS.register("deb")
class DetailEnhancementBlock(nn.Module):
    """Three 3×3 convolutions, ``3→16→16→3``, ReLU between, no final activation (3,203 parameters).

    Args:
        in_channels: image channels.
        channels: feature width.
        init: ``"normal"`` is the authors' N(0, 0.02): ``g`` then passes about 0.2% of its
            input, so the soft objective, which reaches the network only through ``g``,
            hardly trains it in a short run while the hard objective teaches it to do
            nothing (on 320-px photos the CPU preset's residual died out completely).
            ``"identity"`` adds an exact identity on top of that: the first layer carries
            ``+R`` and ``-R`` in ``2 × in_channels`` channels, the second passes them on, and
            the third takes ``relu(R) - relu(-R) = R``, so ``g(R) ≈ R`` from the first step.
    """

    def __init__(self, in_channels: int = 3, channels: int = 16, init: Literal["normal", "identity"] = "normal") -> None:
        super().__init__()
        check_sizes("deb", in_channels=in_channels, channels=channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv2d(channels, in_channels, 3, padding=1)
        init_normal_(self)
        if init == "identity":
            if channels < 2 * in_channels:
                raise ValueError(f"deb identity init needs channels >= 2 × in_channels, got {channels} < {2 * in_channels}")
            with torch.no_grad():
                for i in range(in_channels):
                    self.conv1.weight[2 * i, i, 1, 1] += 1.0
                    self.conv1.weight[2 * i + 1, i, 1, 1] -= 1.0
                    for j in (2 * i, 2 * i + 1):
                        self.conv2.weight[j, j, 1, 1] += 1.0
                    self.conv3.weight[i, 2 * i, 1, 1] += 1.0
                    self.conv3.weight[i, 2 * i + 1, 1, 1] -= 1.0
        elif init != "normal":
            raise ValueError(f"deb init must be 'normal' or 'identity', got {init!r}")

    def forward(self, residual: Tensor) -> Tensor:
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(residual)))))


@DETAIL_BLOCKS.register("deb_did")
class DetailEnhancementBlockDID(nn.Module):
    """The authors' DID-data variant: ``3→16→3`` with a final ReLU, so ``R_e >= 0`` (883 parameters)."""

    def __init__(self, in_channels: int = 3, channels: int = 16) -> None:
        super().__init__()
        check_sizes("deb_did", in_channels=in_channels, channels=channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, in_channels, 3, padding=1)
        init_normal_(self)

    def forward(self, residual: Tensor) -> Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(residual))))
