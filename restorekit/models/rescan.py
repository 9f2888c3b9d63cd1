"""RESCAN, the recurrent squeeze-and-excitation context aggregation network of Li et al.
("Recurrent Squeeze-and-Excitation Context Aggregation Net for Single Image Deraining",
ECCV 2018), "rescan".

Each of ``S`` stages runs the same five recurrent convolutional units, of growing dilation,
and a decoder; it predicts the whole rain layer, and the next stage starts again from the
input minus that estimate. Every unit keeps its own hidden state from stage to stage::

    x_1 = O
    for s = 1..S:
        z = x_s
        for k = 1..5:  z, state_k = Unit_k(z, state_k)      # 3->24 d=1, then 24->24 d=1, 2, 4, 8
        R_s = conv1x1(LReLU(SE(conv3x3(z))))                # 24 -> 3: the rain layer
        x_{s+1} = O - R_s
    restored = O - R_S

A unit's input-to-state convolutions are dilated 3×3, its state-to-state ones plain 3×3; its
output goes through squeeze-and-excitation (global mean, Linear(C→6), ReLU, Linear(6→C),
sigmoid; the hidden width is a fixed 6) and LeakyReLU(0.2). In the first stage there is no
state yet and the units use the input terms only (a GRU: ``h = z·n``; an LSTM: ``c = i·j``,
``h = o·c``). The recurrent unit is an argument, as in the authors' settings:

==========  ===============================================  ===========
``unit``    unit                                             parameters
==========  ===============================================  ===========
``"gru"``   ConvGRU (the authors' default; ``rescan``)       149,823
``"lstm"``  ConvLSTM (``rescan_lstm``)                       197,367
``"rnn"``   ConvRNN, ``tanh(Wx + Uh)`` (``rescan_rnn``)      54,735
``"conv"``  a plain convolution, no state                    28,695
==========  ===============================================  ===========

The Rain O'er Me paper's Table IV lists 54,735, the ConvRNN variant. The network returns
``{"residual": R_S, "stage_rain": R_1..R_S stacked as N×S×3×H×W}``; the ``rescan`` loss (its
authors': the sum over stages of the MSE between ``R_s`` and the true rain) supervises every stage.
Squeeze-and-excitation averages over the whole image, so RESCAN cannot be restored tile by
tile exactly (a tile's means differ from the image's).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes

__all__ = ["RESCAN", "SqueezeExcitation", "RecurrentUnit", "rescan", "rescan_rnn", "rescan_lstm"]

#: Input-to-state convolutions (gates) of each unit type; each recurrent type has as many state-to-state ones.
GATES: dict[str, int] = {"gru": 3, "lstm": 4, "rnn": 1, "conv": 1}


class SqueezeExcitation(nn.Module):
    """``x * sigmoid(Linear(ReLU(Linear(mean_hw(x)))))``, with a fixed hidden width."""

    def __init__(self, channels: int = 24, hidden: int = 6) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class RecurrentUnit(nn.Module):
    """One recurrent convolutional unit followed by SE and LeakyReLU(0.2).

    ``forward(x, state)`` returns ``(output, new state)``; ``state`` is None in the first stage,
    then ``(h, c)``: the hidden map and, for the LSTM only, its cell (None for the others).
    """

    def __init__(self, unit: Literal["gru", "lstm", "rnn", "conv"], in_ch: int, channels: int, dilation: int) -> None:
        super().__init__()
        if unit not in GATES:
            raise ValueError(f"rescan unit must be one of {', '.join(repr(u) for u in GATES)}, got {unit!r}")
        self.unit = unit
        gates = GATES[unit]
        self.input_convs = nn.ModuleList(
            nn.Conv2d(in_ch, channels, 3, padding=dilation, dilation=dilation) for _ in range(gates)
        )
        self.state_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(gates if unit != "conv" else 0)
        )
        self.se = SqueezeExcitation(channels)

    def _cell(self, x: Tensor, state: tuple[Tensor, Tensor | None] | None) -> tuple[Tensor, Tensor | None]:
        """The unit's new hidden map and (LSTM only) its new cell, before SE and activation."""
        wx = [conv(x) for conv in self.input_convs]
        if self.unit == "conv":
            return wx[0], None
        if self.unit == "rnn":
            return torch.tanh(wx[0] if state is None else wx[0] + self.state_convs[0](state[0])), None
        if self.unit == "gru":  # gates: update z, reset r, candidate n
            if state is None:
                return torch.sigmoid(wx[0]) * torch.tanh(wx[2]), None
            h = state[0]
            z = torch.sigmoid(wx[0] + self.state_convs[0](h))
            r = torch.sigmoid(wx[1] + self.state_convs[1](h))
            n = torch.tanh(wx[2] + self.state_convs[2](r * h))
            return (1 - z) * h + z * n, None
        # lstm, gates: forget f, input i, output o, candidate j
        if state is None:
            c = torch.sigmoid(wx[1]) * torch.tanh(wx[3])
            return torch.sigmoid(wx[2]) * c, c
        h, c = state
        u = [w + conv(h) for w, conv in zip(wx, self.state_convs)]
        c = torch.sigmoid(u[0]) * c + torch.sigmoid(u[1]) * torch.tanh(u[3])
        return torch.sigmoid(u[2]) * torch.tanh(c), c

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor | None] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor | None] | None]:
        h, cell = self._cell(x, state)
        out = F.leaky_relu(self.se(h), 0.2)
        # The authors' units carry the activated output on as the hidden state (the LSTM its raw cell too).
        return out, (None if self.unit == "conv" else (out, cell))


class RESCAN(nn.Module):
    """RESCAN; returns ``{"residual": R_S, "stage_rain": N×S×3×H×W}``.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width (24 in the paper).
        stages: recurrent stages ``S`` (4 in the paper); weights are shared across stages.
        depth: the authors' depth setting (7): ``depth - 2`` recurrent units, the first
            ``in_channels -> channels``, then dilations 1, 2, 4, ... ``2 ** (depth - 4)``.
        unit: ``"gru"`` (default), ``"lstm"``, ``"rnn"`` or ``"conv"``.
    """

    default_loss = "rescan"
    param_convention = "trainable"
    not_tileable = "its squeeze-and-excitation scales every channel by a mean over the whole image"

    def __init__(
        self, in_channels: int = 3, channels: int = 24, stages: int = 4, depth: int = 7, unit: Literal["gru", "lstm", "rnn", "conv"] = "gru"
    ) -> None:
        super().__init__()
        check_sizes("rescan", in_channels=in_channels, channels=channels, stages=stages)
        if depth < 3:
            raise ValueError(f"rescan depth must be >= 3, got {depth}")
        self.stages = stages
        self.units = nn.ModuleList(
            [RecurrentUnit(unit, in_channels, channels, 1)]
            + [RecurrentUnit(unit, channels, channels, 2**k) for k in range(depth - 3)]
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            SqueezeExcitation(channels),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, in_channels, 1),
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        states: list[tuple[Tensor, Tensor | None] | None] = [None] * len(self.units)
        estimate, rain_layers = x, []
        for _ in range(self.stages):
            z = estimate
            for k, unit in enumerate(self.units):
                z, states[k] = unit(z, states[k])
            rain = self.decoder(z)
            rain_layers.append(rain)
            estimate = x - rain
        return {"residual": rain_layers[-1], "stage_rain": torch.stack(rain_layers, dim=1)}


@BACKBONES.register("rescan")
def rescan(in_channels: int = 3, channels: int = 24, stages: int = 4, depth: int = 7, unit: Literal["gru", "lstm", "rnn", "conv"] = "gru") -> RESCAN:
    """RESCAN: ConvGRU units by default (149,823 parameters); ``unit`` picks the others."""
    return RESCAN(in_channels, channels, stages, depth, unit)


@BACKBONES.register("rescan_rnn")
def rescan_rnn(in_channels: int = 3, channels: int = 24, stages: int = 4, depth: int = 7) -> RESCAN:
    """RESCAN with ConvRNN units (54,735 parameters: the count in Rain O'er Me's Table IV)."""
    return RESCAN(in_channels, channels, stages, depth, "rnn")


@BACKBONES.register("rescan_lstm")
def rescan_lstm(in_channels: int = 3, channels: int = 24, stages: int = 4, depth: int = 7) -> RESCAN:
    """RESCAN with ConvLSTM units (197,367 parameters)."""
    return RESCAN(in_channels, channels, stages, depth, "lstm")
