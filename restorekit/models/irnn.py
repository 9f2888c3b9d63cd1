"""The four-direction IRNN of SPANet (Wang et al., CVPR 2019), in plain PyTorch.

An IRNN ("identity recurrent neural network", Le et al. 2015) scans a feature map along one
direction with a ReLU recurrence whose recurrent weight is a per-channel scalar. For the scan
that runs downwards (from the top row to the bottom row), channel ``c`` and column ``j``::

    h[0, j] = relu(x[0, j])                                # the first row: no bias, no recurrence
    h[i, j] = relu(w[c] * h[i-1, j] + b[c] + x[i, j])       # i = 1 .. H-1

SPANet's spatial attentive module runs four such scans, one per direction, each with its own
``w`` and ``b``: "up" (from the bottom row to the top), "right" (from the left column to the
right), "down" and "left"; the output at a pixel sums up what lies on one side of it along one
axis. The authors wrote the scan as a CUDA kernel (one thread per output pixel, each looping
over the pixels before it: quadratic work). Here a scan is a loop over rows whose every step is
one whole-row tensor operation (all images, channels and columns at once), so the work is
linear and a 64-pixel crop costs 64 small steps. The four directions become downward scans of
the map, the flipped map (up), the transposed map (right) and the transposed flipped map
(left), stacked so that a square map takes one scan for all four and any other map two.

Gradients come from a hand-written reverse scan (:class:`RowScan`), so autograd does not keep
a graph node per row: the forward pass writes its rows in place into one preallocated tensor.
The scan computes in float32 (or float64) whatever its input's dtype (the authors' kernel is float32, and
a long bfloat16 recurrence would accumulate rounding), and returns the input's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["IRNN", "irnn_scan", "irnn_reference", "RowScan", "DIRECTIONS"]

#: Output order of :class:`IRNN` (the authors' order).
DIRECTIONS = ("up", "right", "down", "left")


class RowScan(torch.autograd.Function):
    """Downward IRNN scan of ``x`` laid out as ``(L, G, N, C, M)``: rows first, ``G`` groups.

    ``weight`` and ``bias`` are ``(G, C)``: group ``g`` (a direction) has its own per-channel
    recurrent weight and bias.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        w = weight[:, None, :, None]
        shifted = x + bias[:, None, :, None]  # b + x, for every row after the first
        out = torch.empty_like(x)
        torch.clamp(x[0], min=0.0, out=out[0])
        for i in range(1, x.shape[0]):
            torch.addcmul(shifted[i], w, out[i - 1], out=out[i])
            out[i].relu_()
        ctx.save_for_backward(out, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        out, weight = ctx.saved_tensors
        w = weight[:, None, :, None]
        active = out > 0  # relu'(z) = 1 exactly where relu(z) > 0
        grad_z = torch.empty_like(grad_out)
        carry = torch.zeros_like(grad_out[0])  # gradient reaching h[i] from h[i+1]
        for i in range(grad_out.shape[0] - 1, -1, -1):
            torch.add(grad_out[i], carry, out=grad_z[i])
            grad_z[i].mul_(active[i])
            carry = w * grad_z[i]
        rows = grad_z[1:]  # the first row has no weight and no bias
        grad_bias = rows.sum(dim=(0, 2, 4))
        grad_weight = (rows * out[:-1]).sum(dim=(0, 2, 4))
        return grad_z, grad_weight, grad_bias


def _scan_rows(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Downward scans of ``x`` (G×N×C×H×W) with ``weight``/``bias`` (G×C), in float32 at least."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    rows_first = x.to(dtype).permute(3, 0, 1, 2, 4).contiguous()
    return RowScan.apply(rows_first, weight.to(dtype), bias.to(dtype)).permute(1, 2, 3, 0, 4)


def irnn_scan(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four IRNN scans of ``x`` (N×C×H×W).

    Args:
        x: the feature map.
        weight: recurrent weights, 4×C, in :data:`DIRECTIONS` order (up, right, down, left).
        bias: biases, 4×C, same order.

    Returns:
        ``(up, right, down, left)``, each N×C×H×W in ``x``'s dtype.
    """
    up, right, down, left = range(4)
    across = x.transpose(2, 3)
    if x.shape[2] == x.shape[3]:  # square (training crops): all four directions in one scan
        order = [down, up, right, left]
        scans = _scan_rows(torch.stack([x, x.flip(2), across, across.flip(2)]), weight[order], bias[order])
        vertical, horizontal = scans[:2], scans[2:]
    else:
        vertical = _scan_rows(torch.stack([x, x.flip(2)]), weight[[down, up]], bias[[down, up]])
        horizontal = _scan_rows(torch.stack([across, across.flip(2)]), weight[[right, left]], bias[[right, left]])
    horizontal = horizontal.transpose(3, 4)
    outputs = (vertical[1].flip(2), horizontal[0], vertical[0], horizontal[1].flip(3))
    return tuple(o.to(x.dtype) for o in outputs)  # type: ignore[return-value]


def irnn_reference(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The same four scans as a direct loop over every pixel (slow; the definition, for tests).

    Differentiable: each pixel's output is its own tensor, stacked at the end.
    """
    n, c, h, w = x.shape
    outputs = []
    for d, (di, dj) in enumerate([(1, 0), (0, -1), (-1, 0), (0, 1)]):  # the offset of the pixel before
        out: dict[tuple[int, int], Tensor] = {}
        rows = range(h - 1, -1, -1) if di == 1 else range(h)
        cols = range(w - 1, -1, -1) if dj == 1 else range(w)
        for i in rows:
            for j in cols:
                before = (i + di, j + dj)  # already computed, or outside the map: a scan's first pixel
                if before in out:
                    pre = weight[d] * out[before] + bias[d] + x[:, :, i, j]
                else:
                    pre = x[:, :, i, j]
                out[(i, j)] = torch.relu(pre)
        outputs.append(torch.stack([torch.stack([out[(i, j)] for j in range(w)], -1) for i in range(h)], -2))
    return tuple(outputs)  # type: ignore[return-value]


class IRNN(nn.Module):
    """Four-direction IRNN with learnable per-channel weights and biases.

    Args:
        channels: feature channels ``C``.
        alpha: starting recurrent weight of every channel and direction (0.2, the authors').

    The weights start at ``alpha`` and the biases as PyTorch starts those of a 1×1 depthwise
    convolution (uniform in ±1), as in the authors' module, which stores each direction as
    such a convolution but never applies it as one. Parameters: ``4 × 2 × C``.
    """

    def __init__(self, channels: int, alpha: float = 0.2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((4, channels), float(alpha)))
        # A 1×1 depthwise convolution has fan-in 1: PyTorch's default bias is uniform in (-1, 1).
        self.bias = nn.Parameter(torch.empty(4, channels).uniform_(-1.0, 1.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return irnn_scan(x, self.weight, self.bias)
