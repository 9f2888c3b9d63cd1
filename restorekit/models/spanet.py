"""SPANet, the spatial attentive deraining network of Wang et al. ("Spatial Attentive
Single-Image Deraining with a High Quality Real Rain Dataset", CVPR 2019), "spanet".

Seventeen residual bottleneck blocks of 32 channels; blocks 4-15 scale their residual by a
spatial attention map that one spatial attentive module (SAM, weights shared) computes four
times, before blocks 4, 7, 10 and 13. The SAM gathers context along rows and columns with
two rounds of the four-direction IRNN (:mod:`restorekit.models.irnn`)::

    F = ReLU(conv3x3(x))                                      # 3 -> 32, no bias
    F = ReLU(block_k(F) + F)                     k = 1..3       # block: 1x1, ReLU, 3x3 d=2, ReLU, 1x1
    A_m = SAM(F);  F = ReLU(block_k(F) * A_m + F)   k = 3m+1..3m+3, m = 1..4
    F = ReLU(block_k(F) + F)                     k = 16, 17
    y = conv3x3(F)                                            # 32 -> 3, no bias: the clean image

    SAM(F): w = direction_attention(F)                        # 4 maps, one per direction
            G = conv3x3(F);   G = conv3x3(concat[w_d * IRNN_1(G)_d])   # 128 -> 32
            G = ReLU(conv3x3(concat[w_d * IRNN_2(G)_d]))              # 128 -> 32
            A = sigmoid(conv1x1(G))                                   # 32 -> 1

The network predicts the clean image ``y`` directly (no skip from the input), so it returns
``{"restored": y, "attention": A_1}`` (see :mod:`restorekit.models.contract`); the authors'
loss supervises the first attention map with a binary rain mask (the ``spanet`` loss).

With the authors' sizes it has 283,716 parameters, their count. Their direction-attention
branch computes the weights ``w`` and then discards them (``top_up.mul(w)`` is not in place),
so their released model is the function with every ``w_d = 1``: ``direction_attention=False``
reproduces that function without building the branch (276,704 parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes
from .irnn import IRNN

__all__ = ["SPANet", "SpatialAttentiveModule", "Bottleneck"]


def conv3x3(in_ch: int, out_ch: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)


class Bottleneck(nn.Sequential):
    """``1×1 → ReLU → 3×3 dilation 2 → ReLU → 1×1``, no biases; the caller adds the skip."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
        )


class SpatialAttentiveModule(nn.Module):
    """SAM: two IRNN rounds over the features, then a one-channel attention map in (0, 1).

    Args:
        channels: feature width (32).
        direction_attention: weight each direction's IRNN output by a learned map (see the
            module notes: the authors' code computes and then ignores these weights).
    """

    def __init__(self, channels: int = 32, direction_attention: bool = True) -> None:
        super().__init__()
        self.direction_weights = (
            nn.Sequential(
                conv3x3(channels, channels // 2, bias=True),
                nn.ReLU(),
                conv3x3(channels // 2, channels // 2, bias=True),
                nn.ReLU(),
                nn.Conv2d(channels // 2, 4, 1),
                nn.Sigmoid(),
            )
            if direction_attention
            else None
        )
        self.conv_in = conv3x3(channels, channels)
        self.irnn1 = IRNN(channels)
        self.conv2 = conv3x3(4 * channels, channels)
        self.irnn2 = IRNN(channels)
        self.conv3 = conv3x3(4 * channels, channels)
        self.conv_out = nn.Conv2d(channels, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        weights = None if self.direction_weights is None else self.direction_weights(x)

        def gather(irnn: IRNN, features: Tensor) -> Tensor:
            directions = irnn(features)
            if weights is not None:
                directions = tuple(d * weights[:, k : k + 1] for k, d in enumerate(directions))
            return torch.cat(directions, dim=1)

        out = self.conv2(gather(self.irnn1, self.conv_in(x)))
        out = F.relu(self.conv3(gather(self.irnn2, out)))
        return torch.sigmoid(self.conv_out(out))


@BACKBONES.register("spanet")
class SPANet(nn.Module):
    """SPANet; returns ``{"restored": clean image, "attention": first attention map N×1×H×W}``.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width (32 in the paper).
        direction_attention: apply the SAM's per-direction weights (True: the design as the
            authors wrote it, 283,716 parameters) or leave them out (False: the function of
            their released model, whose code discards the weights; 276,704 parameters).
    """

    default_loss = "spanet"
    param_convention = "trainable"
    not_tileable = "its IRNN carries context along whole rows and columns of the image"
    not_exportable = "its IRNN loops over the image's rows and columns: a traced graph fits one size only"

    #: Blocks whose residual is scaled by the attention map, grouped by the SAM call before them.
    ATTENDED = ((3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14))

    def __init__(self, in_channels: int = 3, channels: int = 32, direction_attention: bool = True) -> None:
        super().__init__()
        check_sizes("spanet", in_channels=in_channels, channels=channels)
        self.conv_in = conv3x3(in_channels, channels)
        self.blocks = nn.ModuleList(Bottleneck(channels) for _ in range(17))
        self.sam = SpatialAttentiveModule(channels, direction_attention)
        self.conv_out = conv3x3(channels, in_channels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = F.relu(self.conv_in(x))
        for block in self.blocks[:3]:
            out = F.relu(block(out) + out)
        attention_maps = []
        for group in self.ATTENDED:
            attention = self.sam(out)
            attention_maps.append(attention)
            for k in group:
                out = F.relu(self.blocks[k](out) * attention + out)
        for block in self.blocks[15:]:
            out = F.relu(block(out) + out)
        return {"restored": self.conv_out(out), "attention": attention_maps[0]}
