"""DDN's deep detail network (Fu et al., "Removing rain from single images via a deep
detail network", CVPR 2017), "ddn".

A self-guided filter splits the rainy image ``O`` into a smooth base layer and a detail
layer; a 26-layer ResNet sees only the detail layer, and its output is added to the *whole*
input ("negative residual mapping")::

    detail = O - guided_filter(O, guide=O)           # per channel, radius 15, eps 1
    h = ReLU(BN(conv(detail)))                       # 3 -> 16
    12 x:  h = h + ReLU(BN(conv(ReLU(BN(conv(h))))))  # identity shortcut, ReLU before the add
    n = BN(conv(h))                                  # 16 -> 3, no activation
    clean = O + n

restorekit's contract is ``restored = x - residual``, so :class:`DDN` returns ``residual = -n``.

Every one of the 26 convolutions has a bias and is followed by BatchNorm, the last one
included (both are in the authors' released ``network.mat``). The published 58,175 counts
the 57,369 trainable parameters plus the 806 BatchNorm running means and variances, hence
``param_convention = "trainable+bn_stats"``.

BatchNorm under data distillation
---------------------------------
The ``dt`` method applies one network twice in a training step: to the rainy batch ``X`` and
then to the synthesised hard batch ``D = C + R_e``. This module keeps **ordinary BatchNorm in
training mode for both passes**, as the Rain O'er Me authors' scaffolding does (its generator
is simply called twice while in ``train()``) and as DDN itself was trained ("BN in training
mode"). Consequences, all deliberate:

* each pass is normalised by its *own* batch statistics, so the rainy and the synthetic
  batch never leak statistics into each other within a step (the second batch depends on the
  first pass's output, so the two cannot be merged into one batch anyway);
* the running statistics are updated twice per step and so track a mixture of the real-rain
  and the synthesised-rain distributions, both of which look like test inputs;
* in ``eval()`` BatchNorm uses those running statistics only, so the output is a fixed
  function of the input: the same image gives the same result twice, whatever else is in the
  batch.

Freezing BN or sharing statistics across passes would need the method to know about this
backbone; keeping the standard behaviour lets ``dt`` and ``sv`` treat DDN like any other
network. ``bn_momentum`` (PyTorch's default 0.1) is exposed because two updates per step
halve the number of steps the running averages remember, and TensorFlow, where DDN was
trained, defaults to slower averages (momentum 0.01 or 0.001).

The guided filter is He et al.'s (ECCV 2010 / TPAMI 2013) with box means computed from
cumulative sums, so its cost does not depend on the radius; windows are clipped at the image
border and normalised by the number of pixels they cover. It has no parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes

__all__ = ["DDN", "ResidualUnit", "GuidedFilter", "guided_filter", "box_mean"]


# --------------------------------------------------------------------------- guided filter
def _window_bounds(n: int, radius: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Start (inclusive) and end (exclusive) index of the clipped window around each position."""
    idx = torch.arange(n, device=device)
    return (idx - radius).clamp(min=0), (idx + radius).clamp(max=n - 1) + 1


def _box_sum_1d(x: Tensor, radius: int, dim: int) -> Tensor:
    """Sum of ``x`` over a window of ``2 * radius + 1`` along ``dim``, clipped at the borders."""
    n = x.shape[dim]
    start, stop = _window_bounds(n, radius, x.device)
    zero_shape = list(x.shape)
    zero_shape[dim] = 1
    # A leading zero makes "sum of x[a:b]" = cs[b] - cs[a] hold for a = 0 as well.
    cs = torch.cat([x.new_zeros(zero_shape), x.cumsum(dim)], dim=dim)
    return cs.index_select(dim, stop) - cs.index_select(dim, start)


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of every channel of ``x`` (N×C×H×W) over a ``(2r+1)²`` window clipped at the border.

    O(1) per pixel whatever the radius (two cumulative sums), as in He et al.'s reference box filter.
    """
    h, w = x.shape[-2:]
    total = _box_sum_1d(_box_sum_1d(x, radius, -2), radius, -1)
    rows_start, rows_stop = _window_bounds(h, radius, x.device)
    cols_start, cols_stop = _window_bounds(w, radius, x.device)
    count = (rows_stop - rows_start).to(x.dtype)[:, None] * (cols_stop - cols_start).to(x.dtype)[None, :]
    return total / count


def guided_filter(image: Tensor, guide: Tensor, radius: int, eps: float) -> Tensor:
    """He et al.'s guided filter of ``image`` by ``guide``, channel by channel (same shapes).

    In each window the output is the linear function ``a * guide + b`` that best fits ``image``
    with ridge penalty ``eps`` on ``a``; the per-pixel coefficients are averaged over all windows
    that cover the pixel. Computed in float32: the box means subtract large cumulative sums.
    """
    dtype = image.dtype
    p, i = image.float(), guide.float()
    mean_i, mean_p = box_mean(i, radius), box_mean(p, radius)
    var_i = box_mean(i * i, radius) - mean_i * mean_i
    cov_ip = box_mean(i * p, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return (box_mean(a, radius) * i + box_mean(b, radius)).to(dtype)


class GuidedFilter(nn.Module):
    """Self-guided filter ``guided_filter(x, guide=x)``: DDN's base layer (no parameters).

    Args:
        radius: window radius ``r`` (window side ``2r + 1``).
        eps: regularisation; large values (DDN's 1 on [0, 1] images) make it close to a box mean.
    """

    def __init__(self, radius: int = 15, eps: float = 1.0) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"guided filter radius must be >= 1, got {radius}")
        if eps <= 0:
            raise ValueError(f"guided filter eps must be positive, got {eps}")
        self.radius = radius
        self.eps = eps

    def extra_repr(self) -> str:
        return f"radius={self.radius}, eps={self.eps}"

    def forward(self, x: Tensor) -> Tensor:
        return guided_filter(x, x, self.radius, self.eps)


# --------------------------------------------------------------------------- network
def conv_bn(in_ch: int, out_ch: int, bn_momentum: float) -> nn.Sequential:
    """3×3 convolution (with bias, as in the released weights) followed by BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=True),
        nn.BatchNorm2d(out_ch, momentum=bn_momentum),
    )


class ResidualUnit(nn.Module):
    """``h + ReLU(BN(conv(ReLU(BN(conv(h))))))``: DDN puts the ReLU before the add, none after."""

    def __init__(self, channels: int = 16, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.conv1 = conv_bn(channels, channels, bn_momentum)
        self.conv2 = conv_bn(channels, channels, bn_momentum)

    def forward(self, h: Tensor) -> Tensor:
        return h + F.relu(self.conv2(F.relu(self.conv1(h))))


@BACKBONES.register("ddn")
class DDN(nn.Module):
    """DDN's ResNet on the guided-filter detail layer; returns ``-n`` where ``clean = x + n``.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width (16 in the paper).
        num_units: residual units of two convolutions each (12 in the paper: 26 layers in all).
        radius: guided-filter radius (15, as in the author's TensorFlow re-implementation;
            the MATLAB demo's fast guided filter used 16 with 4× subsampling).
        eps: guided-filter regularisation (1 in both).
        bn_momentum: PyTorch BatchNorm momentum of the running statistics (see the module notes).
        head_gamma: starting scale γ of the last BatchNorm, i.e. the standard deviation of the
            output residual at initialisation. 1 (the frameworks' default, the authors' choice)
            starts with a residual of unit variance, on images in [0, 1]: DDN's own SGD at lr
            0.1 shrinks γ within a few hundred steps, but Adam moves γ by about its learning
            rate per step, so under the paper's Adam at 1e-4..3e-4 a CPU-scale schedule of
            800 steps ends near γ = 0.77 with the output still dominated by the residual. A
            small value (the dt CPU preset uses 0.05) starts near the identity instead.
    """

    default_loss = "mse"
    param_convention = "trainable+bn_stats"

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 16,
        num_units: int = 12,
        radius: int = 15,
        eps: float = 1.0,
        bn_momentum: float = 0.1,
        head_gamma: float = 1.0,
    ) -> None:
        super().__init__()
        check_sizes("ddn", in_channels=in_channels, channels=channels, radius=radius)
        if num_units < 0:
            raise ValueError(f"ddn num_units must be >= 0, got {num_units}")
        self.base_filter = GuidedFilter(radius, eps)
        self.stem = conv_bn(in_channels, channels, bn_momentum)
        self.units = nn.Sequential(*(ResidualUnit(channels, bn_momentum) for _ in range(num_units)))
        self.head = conv_bn(channels, in_channels, bn_momentum)
        if head_gamma < 0:
            raise ValueError(f"ddn head_gamma must be >= 0, got {head_gamma}")
        self._init_weights(head_gamma)

    def _init_weights(self, head_gamma: float) -> None:
        # The author's training script: Xavier (Glorot uniform) weights, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.head[1].weight, head_gamma)

    def forward(self, x: Tensor) -> Tensor:
        detail = x - self.base_filter(x)
        h = F.relu(self.stem(detail))
        negative_residual = self.head(self.units(h))
        return -negative_residual
