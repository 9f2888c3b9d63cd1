"""A small residual backbone: the shape every restorekit backbone has.

restorekit's methods only need ``forward(x) -> residual``, with the restored image being
``x - residual``; see :mod:`restorekit.models.contract`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ExampleNet"]


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))``, keeping the width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ExampleNet(nn.Module):
    """A plain stack of residual blocks that predicts the degradation layer (rain, snow, noise).

    Only 3×3 convolutions with padding, so any image size works, odd ones included.

    Args:
        in_channels: image channels (restorekit passes 3 for RGB).
        channels: feature width.
        num_blocks: number of residual blocks.
    """

    #: The loss restorekit uses for the hard pairs (and for ``sv``) when a config names none.
    default_loss = "ssim"

    def __init__(self, in_channels: int = 3, channels: int = 16, num_blocks: int = 2) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"example_net num_blocks must be >= 1, got {num_blocks}")
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.head = nn.Conv2d(channels, in_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Map images in [0, 1] (N×C×H×W) to the residual, so that ``x - residual`` is restored."""
        return self.head(self.blocks(F.relu(self.stem(x))))
