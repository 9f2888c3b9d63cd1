"""The hierarchical aggregation network of *Rain O'er Me* (Lin et al., TIP 2020), "hagg".

Multi-scale dilated-convolution (MSDC) blocks, paired into aggregation modules whose outputs
are fused by aggregation nodes in a two-level tree (paper Fig. 6, Eq. 14)::

    state = Agg_1(ReLU(stem(x)))
    for k = 2..K:  state = Node(state, Agg_k(state))      # K = num_blocks / 2
    residual = tanh(head(state))                          # restored = x - residual

With the published 6 blocks and 16 channels the convolution weights total 51,552 (the paper's
Table IV; biases add 291). Table VIII varies ``num_blocks`` over 4, 6, 8 and 10.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes, init_normal_

__all__ = ["HAgg", "MSDCBlock", "AggregationNode", "AggregationModule"]


def conv3x3(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)


class MSDCBlock(nn.Module):
    """Multi-scale dilated convolution block: ``F1 = ReLU(W1*F)``, ``out = ReLU(W_d*(F - F1) + F1)``.

    The dilated branch sees the mapping error ``F - F1`` of the plain branch (the paper's
    "self-correcting" reading of Eq. 14).
    """

    def __init__(self, channels: int = 16, dilation: int = 3) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels)
        self.dilated_conv = conv3x3(channels, channels, dilation)

    def forward(self, f: Tensor) -> Tensor:
        f1 = F.relu(self.conv(f))
        return F.relu(self.dilated_conv(f - f1) + f1)


class AggregationNode(nn.Module):
    """Fuse two feature maps: ``ReLU(conv3x3(concat[earlier, later]))``."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = conv3x3(2 * channels, channels)

    def forward(self, earlier: Tensor, later: Tensor) -> Tensor:
        return F.relu(self.conv(torch.cat([earlier, later], dim=1)))


class AggregationModule(nn.Module):
    """Two MSDC blocks in series, their outputs fused by a node."""

    def __init__(self, channels: int = 16, dilation: int = 3) -> None:
        super().__init__()
        self.block1 = MSDCBlock(channels, dilation)
        self.block2 = MSDCBlock(channels, dilation)
        self.node = AggregationNode(channels)

    def forward(self, x: Tensor) -> Tensor:
        a1 = self.block1(x)
        return self.node(a1, self.block2(a1))


@BACKBONES.register("hagg")
class HAgg(nn.Module):
    """The paper's deraining network: returns the rain residual in (-1, 1).

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width (16 in the paper).
        num_blocks: number of MSDC blocks, an even number >= 2 (6 in the paper).
        dilation: dilation of the second convolution of each block (3 in the paper).
        init: ``"normal"`` is the authors' N(0, 0.02) for every convolution. It leaves the
            13-layer ReLU body nearly silent (each layer scales activations by ~0.17), so the
            residual starts near zero and, at CPU scale and in bfloat16, can stay there.
            ``"kaiming"`` uses He initialisation for the body (activations keep their scale)
            and the authors' small initialisation for the head, so the residual still starts
            near zero but every layer receives gradient from the first step.
        head_init: ``"normal"`` (the authors' N(0, 0.02)) or ``"zero"``: the head starts at
            zero, so the residual is exactly 0 and ``tanh`` starts unsaturated. With He
            initialisation of the body, N(0, 0.02) head weights can push some channels of
            the residual near ±1 at the start, where ``tanh`` passes almost no gradient,
            and the early push to shrink that residual can silence the last aggregation
            node for good: in the CPU preset's dt run of 8 blocks the residual was gone by
            iteration 100 and at the end every ReLU of that node output zero on a test photo
            (the network returned its input; 10 blocks did the same); with a zero head it
            stayed alive (configs/reproduce/table8.yaml).
    """

    default_loss = "ssim"
    param_convention = "weights"

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 16,
        num_blocks: int = 6,
        dilation: int = 3,
        init: Literal["normal", "kaiming"] = "normal",
        head_init: Literal["normal", "zero"] = "normal",
    ) -> None:
        super().__init__()
        check_sizes("hagg", in_channels=in_channels, channels=channels, dilation=dilation)
        if num_blocks < 2 or num_blocks % 2:
            raise ValueError(f"hagg num_blocks must be an even number >= 2, got {num_blocks}")
        self.stem = conv3x3(in_channels, channels)
        self.aggregations = nn.ModuleList(AggregationModule(channels, dilation) for _ in range(num_blocks // 2))
        self.outer_nodes = nn.ModuleList(AggregationNode(channels) for _ in range(num_blocks // 2 - 1))
        self.head = conv3x3(channels, in_channels)
        init_normal_(self)
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and m is not self.head:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif init != "normal":
            raise ValueError(f"hagg init must be 'normal' or 'kaiming', got {init!r}")
        if head_init == "zero":
            nn.init.zeros_(self.head.weight)
            if self.head.bias is not None:
                nn.init.zeros_(self.head.bias)
        elif head_init != "normal":
            raise ValueError(f"hagg head_init must be 'normal' or 'zero', got {head_init!r}")

    def forward(self, x: Tensor) -> Tensor:
        state = self.aggregations[0](F.relu(self.stem(x)))
        for aggregation, node in zip(self.aggregations[1:], self.outer_nodes):
            state = node(state, aggregation(state))
        return torch.tanh(self.head(state))
