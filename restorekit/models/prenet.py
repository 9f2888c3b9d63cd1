"""PReNet and PRN, the progressive recurrent deraining networks of Ren et al.
("Progressive Image Deraining Networks: A Better and Simpler Baseline", CVPR 2019).

One small network is unrolled over ``T`` stages with shared weights; each stage sees the
rainy input ``O`` next to the previous stage's estimate and refines it::

    x_0 = O;  h_0 = c_0 = 0
    for t = 1..T:
        z = ReLU(conv_in(concat[O, x_{t-1}]))          # 6 -> 32
        h_t, c_t = ConvLSTM(z, h_{t-1}, c_{t-1})       # PReNet only; PRN uses y = z
        y = ResBlock_5(...ResBlock_1(h_t))             # conv-ReLU-conv-ReLU, add, ReLU
        x_t = O + conv_out(y)                          # 32 -> 3, global residual to the input

Four registered variants share :class:`PReNet`:

=============  =========  ================  =======================
name           ConvLSTM   ResBlocks         trainable parameters
=============  =========  ================  =======================
``prenet``     yes        5 distinct        168,963
``prn``        no         5 distinct        95,107
``prenet_r``   yes        1, applied 5×     94,979
``prn_r``      no         1, applied 5×     21,123
=============  =========  ================  =======================

The network predicts the clean image, so under restorekit's contract it returns
``{"residual": O - x_T, "stages": x_1..x_T stacked as N×T×3×H×W}``; the restored image
``O - residual`` is ``x_T``. The authors trained with the negative SSIM of ``x_T``;
``1 - SSIM`` has the same gradients (they differ by a constant), so ``default_loss = "ssim"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes

__all__ = ["PReNet", "ConvLSTMCell", "ResBlock", "prenet", "prn", "prenet_r", "prn_r"]


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM with one 3×3 convolution per gate on ``concat[input, hidden]``.

    Four separate convolutions (input, forget, cell candidate, output), as in the authors' net;
    a single conv with four times the outputs would compute the same function.
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.input_gate = conv3x3(2 * channels, channels)
        self.forget_gate = conv3x3(2 * channels, channels)
        self.cell_candidate = conv3x3(2 * channels, channels)
        self.output_gate = conv3x3(2 * channels, channels)

    def forward(self, z: Tensor, hidden: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        u = torch.cat([z, hidden], dim=1)
        i = torch.sigmoid(self.input_gate(u))
        f = torch.sigmoid(self.forget_gate(u))
        g = torch.tanh(self.cell_candidate(u))
        o = torch.sigmoid(self.output_gate(u))
        cell = f * cell + i * g
        return o * torch.tanh(cell), cell


class ResBlock(nn.Module):
    """``ReLU(ReLU(conv(ReLU(conv(y)))) + y)``."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, y: Tensor) -> Tensor:
        return F.relu(F.relu(self.conv2(F.relu(self.conv1(y)))) + y)


class PReNet(nn.Module):
    """Progressive recurrent network; returns ``{"residual": x - x_T, "stages": N×T×3×H×W}``.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width (32 in the paper).
        stages: number of unrolled stages ``T`` (6 in the paper); weights are shared across them.
        num_resblocks: ResBlocks per stage (5 in the paper).
        recurrent: carry a ConvLSTM state across stages (PReNet) or not (PRN).
        shared_resblock: use one ResBlock applied ``num_resblocks`` times (the ``_r`` variants).
    """

    default_loss = "ssim"
    param_convention = "trainable"

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 32,
        stages: int = 6,
        num_resblocks: int = 5,
        recurrent: bool = True,
        shared_resblock: bool = False,
    ) -> None:
        super().__init__()
        check_sizes("prenet", in_channels=in_channels, channels=channels, stages=stages, num_resblocks=num_resblocks)
        self.stages = stages
        self.channels = channels
        self.conv_in = conv3x3(2 * in_channels, channels)
        self.lstm = ConvLSTMCell(channels) if recurrent else None
        # A shared block is stored once and applied repeatedly, so the state dict holds no
        # aliased tensors (safetensors refuses those) and the count is the published one.
        self.resblocks = nn.ModuleList(ResBlock(channels) for _ in range(1 if shared_resblock else num_resblocks))
        self.block_repeats = num_resblocks if shared_resblock else 1
        self.conv_out = conv3x3(channels, in_channels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        n, _, h, w = x.shape
        estimate = x
        hidden = cell = x.new_zeros(n, self.channels, h, w)
        outputs = []
        for _ in range(self.stages):
            y = F.relu(self.conv_in(torch.cat([x, estimate], dim=1)))
            if self.lstm is not None:
                hidden, cell = self.lstm(y, hidden, cell)
                y = hidden
            for block in self.resblocks:
                for _ in range(self.block_repeats):
                    y = block(y)
            estimate = x + self.conv_out(y)
            outputs.append(estimate)
        return {"residual": x - estimate, "stages": torch.stack(outputs, dim=1)}


@BACKBONES.register("prenet")
def prenet(in_channels: int = 3, channels: int = 32, stages: int = 6, num_resblocks: int = 5) -> PReNet:
    """PReNet: ConvLSTM across stages, 5 distinct ResBlocks (168,963 parameters)."""
    return PReNet(in_channels, channels, stages, num_resblocks, recurrent=True, shared_resblock=False)


@BACKBONES.register("prn")
def prn(in_channels: int = 3, channels: int = 32, stages: int = 6, num_resblocks: int = 5) -> PReNet:
    """PRN: no recurrent state, 5 distinct ResBlocks (95,107 parameters)."""
    return PReNet(in_channels, channels, stages, num_resblocks, recurrent=False, shared_resblock=False)


@BACKBONES.register("prenet_r")
def prenet_r(in_channels: int = 3, channels: int = 32, stages: int = 6, num_resblocks: int = 5) -> PReNet:
    """PReNet_r: ConvLSTM, one ResBlock applied 5 times (94,979 parameters)."""
    return PReNet(in_channels, channels, stages, num_resblocks, recurrent=True, shared_resblock=True)


@BACKBONES.register("prn_r")
def prn_r(in_channels: int = 3, channels: int = 32, stages: int = 6, num_resblocks: int = 5) -> PReNet:
    """PRN_r: no recurrent state, one ResBlock applied 5 times (21,123 parameters)."""
    return PReNet(in_channels, channels, stages, num_resblocks, recurrent=False, shared_resblock=True)
