"""UMRL, the uncertainty-guided multi-scale residual learning network of Yasarla and Patel
("Uncertainty Guided Multi-Scale Residual Learning-using a Cycle Spinning CNN for Single
Image De-Raining", CVPR 2019), "umrl".

A densely connected encoder-decoder (5×5 dense blocks) goes down to 1/16 of the resolution
and back up. On the way up it estimates the rain at 1/4 and 1/2 scale, with a confidence map
for each estimate, and feeds the confidence-weighted estimate to the next decoder level; the
full-scale rain and its confidence come last. One shared refinement turns ``image - rain`` into
the clean image at each of the three scales::

    x1..x3_1 = encoder(O)                          # 1/2, 1/4, 1/8, 1/16 of the resolution
    x4 = up(dense(concat[up(dense(x3_1)), x3]))    # back to 1/4
    R_4 = est(concat[x4, x2]);   C_4 = conf(concat[x4, R_4])
    x5 = up(dense(concat[x4, x2, R_4 * C_4]))      # 1/2
    R_2 = est(concat[x5, x1]);   C_2 = conf(concat[x5, R_2])
    x6 = dense(up(dense(concat[x5, x1, R_2 * C_2])))
    R = tanh(conv(LReLU(conv(x6))));   C = conf(concat[x6, x6, R])
    y_s = tanh(conv3x3(LReLU(conv7x7(O_s - R_s))))  for the full, 1/2 and 1/4 scales

``est`` (three 3×3 dense blocks, conv, tanh) and ``conf`` (conv, two 3×3 dense blocks, conv,
sigmoid) are each one module used at every scale; ``O_s`` is the input subsampled by
nearest neighbour. The network returns the full-scale clean image as ``"restored"`` and,
for the ``umrl`` loss, the half- and quarter-scale images and the three confidence maps.

The authors work on images in [-1, 1] (``2x - 1``); so does this module, which maps its input
there and its images back to [0, 1]. Inputs are padded (replicating the border) to a multiple
of 16 and the outputs cropped. With the authors' sizes it has 981,994 parameters; their module
(and checkpoint) has 984,356: 2,362 more in layers it builds but never calls (two BatchNorms
and a 16→16 convolution of the confidence module; see docs/networks.md), the count the Rain
O'er Me paper's Table IV gives. The subsampled scales make it not shift-equivariant, so it
cannot be restored tile by tile exactly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .didmdn import DenseBottleneck, Transition

__all__ = ["UMRL", "RainEstimator", "ConfidenceEstimator"]


def dense(in_ch: int, growth: int, out_ch: int, resample: Literal["down", "up", "same"], kernel: int) -> nn.Sequential:
    """A dense bottleneck block and its transition (see :mod:`restorekit.models.didmdn`)."""
    return nn.Sequential(DenseBottleneck(in_ch, growth, kernel), Transition(in_ch + growth, out_ch, resample))


class RainEstimator(nn.Sequential):
    """``est``: three 3×3 dense levels at 32 channels, ``LReLU(conv 32→16)``, ``tanh(conv 16→3)``."""

    def __init__(self, in_ch: int = 64) -> None:
        super().__init__(
            dense(in_ch, 32, 32, "same", 3),
            dense(32, 32, 32, "same", 3),
            dense(32, 32, 32, "same", 3),
            nn.Conv2d(32, 16, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 3, 3, padding=1),
            nn.Tanh(),
        )


class ConfidenceEstimator(nn.Sequential):
    """``conf``: conv 35→16 (no activation), two 3×3 dense levels at 16 channels, ``sigmoid(conv 16→3)``."""

    def __init__(self, in_ch: int = 35) -> None:
        super().__init__(
            nn.Conv2d(in_ch, 16, 3, padding=1),
            dense(16, 16, 16, "same", 3),
            dense(16, 16, 16, "same", 3),
            nn.Conv2d(16, 3, 3, padding=1),
            nn.Sigmoid(),
        )


@BACKBONES.register("umrl")
class UMRL(nn.Module):
    """UMRL; returns the clean image as ``"restored"`` with its half- and quarter-scale versions
    (``"restored_half"``, ``"restored_quarter"``) and confidences (``"confidence"``,
    ``"confidence_half"``, ``"confidence_quarter"``, in (0, 1)).

    Args:
        in_channels: image channels (3 for RGB).
    """

    default_loss = "umrl"
    param_convention = "trainable"
    not_tileable = "it estimates the rain on 2× and 4× subsampled grids fixed to the image's corner"

    #: Inputs are padded to a multiple of this (the encoder halves the resolution four times).
    MULTIPLE = 16

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(
            [dense(in_channels, 29, 32, "down", 5)] + [dense(32, 32, 32, "down", 5) for _ in range(3)]
        )
        self.bottom = dense(32, 32, 32, "up", 5)  # 1/16 -> 1/8
        self.up4 = dense(64, 32, 32, "up", 5)  # concat[., x3] -> 1/4
        self.up2 = dense(67, 32, 32, "up", 5)  # concat[x4, x2, R_4 C_4] -> 1/2
        self.up1 = nn.Sequential(dense(67, 16, 16, "up", 5), dense(16, 16, 16, "same", 5))
        self.rain_head = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(16, in_channels, 3, padding=1), nn.Tanh()
        )
        self.estimate = RainEstimator(64)
        self.confidence = ConfidenceEstimator(32 + in_channels)
        self.refine = nn.Sequential(
            nn.Conv2d(in_channels, 8, 7, padding=3),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8, in_channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h, w = x.shape[-2:]
        image = F.pad(2 * x - 1, (0, -w % self.MULTIPLE, 0, -h % self.MULTIPLE), mode="replicate")
        x1 = self.encoder[0](image)
        x2 = self.encoder[1](x1)
        x3 = self.encoder[2](x2)
        x4 = self.up4(torch.cat([self.bottom(self.encoder[3](x3)), x3], dim=1))
        rain_4 = self.estimate(torch.cat([x4, x2], dim=1))
        conf_4 = self.confidence(torch.cat([x4, rain_4], dim=1))
        x5 = self.up2(torch.cat([x4, x2, rain_4 * conf_4], dim=1))
        rain_2 = self.estimate(torch.cat([x5, x1], dim=1))
        conf_2 = self.confidence(torch.cat([x5, rain_2], dim=1))
        x6 = self.up1(torch.cat([x5, x1, rain_2 * conf_2], dim=1))
        rain = self.rain_head(x6)
        conf = self.confidence(torch.cat([x6, x6, rain], dim=1))

        def clean(scale: int, rain_s: Tensor, conf_s: Tensor) -> tuple[Tensor, Tensor]:
            rows, cols = -(-h // scale), -(-w // scale)
            restored = (self.refine(image[..., ::scale, ::scale] - rain_s) + 1) / 2
            return restored[..., :rows, :cols], conf_s[..., :rows, :cols]

        full, half, quarter = clean(1, rain, conf), clean(2, rain_2, conf_2), clean(4, rain_4, conf_4)
        return {
            "restored": full[0],
            "restored_half": half[0],
            "restored_quarter": quarter[0],
            "confidence": full[1],
            "confidence_half": half[1],
            "confidence_quarter": quarter[1],
        }
