"""SSIM and the SSIM loss ``1 - SSIM`` used by the paper's soft and hard objectives.

SSIM as the Rain O'er Me and PReNet authors trained with it: an 11×11 Gaussian window with
σ = 1.5, zero padding ("same" output size; ``padding="valid"`` is the unbiased option), C1 = 0.01², C2 = 0.03² for data range 1, mean
over channels and pixels. The window is separable, so it runs as two 1-D convolutions.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d
from torch import Tensor

from ..registries import LOSSES
from .base import Loss

__all__ = ["ssim", "SSIMLoss"]


def _blur(x: Tensor, kernel: Tensor, padding: Literal["zero", "valid"] = "zero") -> Tensor:
    """Separable Gaussian blur of every channel: zero-padded (same size) or valid (interior only)."""
    c = x.shape[1]
    k = kernel.shape[-1]
    pad = k // 2 if padding == "zero" else 0
    kx = kernel.view(1, 1, 1, k).expand(c, 1, 1, k)
    ky = kernel.view(1, 1, k, 1).expand(c, 1, k, 1)
    x = F.conv2d(x, kx, padding=(0, pad), groups=c)
    return F.conv2d(x, ky, padding=(pad, 0), groups=c)


def _check_padding(padding: str) -> None:
    if padding not in ("zero", "valid"):
        raise ValueError(f"SSIM padding must be 'zero' or 'valid', got {padding!r}")


def ssim(
    x: Tensor,
    y: Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding: Literal["zero", "valid"] = "zero",
) -> Tensor:
    """Mean SSIM of two N×C×H×W batches (a scalar tensor, differentiable).

    ``padding="zero"`` is how the authors trained; ``"valid"`` averages only the windows that
    lie inside the image (see :class:`SSIMLoss` for why that matters).
    """
    if x.shape != y.shape:
        raise ValueError(f"SSIM needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    _check_padding(padding)
    if padding == "valid" and min(x.shape[-2:]) < window_size:
        raise ValueError(f"SSIM with valid padding needs images of at least {window_size}² pixels, got {tuple(x.shape[-2:])}")
    # Variances are differences of large products (E[x²] - E[x]²) and cancel catastrophically
    # in bfloat16 (negative variances, NaN): compute SSIM in float32 even under autocast.
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _ssim_fp32(x.float(), y.float(), window_size, sigma, data_range, padding)


def _ssim_fp32(x: Tensor, y: Tensor, window_size: int, sigma: float, data_range: float, padding: str) -> Tensor:
    kernel = get_gaussian_kernel1d(window_size, sigma, device=x.device, dtype=x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # One batched blur of the five maps instead of five separate calls.
    stacked = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), kernel, padding)
    mu_x, mu_y, xx, yy, xy = stacked.chunk(5, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_x, sigma_y, sigma_xy = xx - mu_xx, yy - mu_yy, xy - mu_xy
    num = (2 * mu_xy + c1) * (2 * sigma_xy + c2)
    den = (mu_xx + mu_yy + c1) * (sigma_x + sigma_y + c2)
    return (num / den).mean()


@LOSSES.register("ssim")
class SSIMLoss(Loss):
    """``1 - SSIM(pred, target)``: zero for identical images.

    Args:
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        padding: ``"zero"`` (the authors' choice, the default) pads each crop with zeros, so
            the crop's border becomes a strong edge that the output shares with its target.
            When noise remains in the output, brightening it strengthens that shared edge
            against the noise, and the loss rewards a biased brightness (measured on σ = 25
            noisy crops: lowest for an output 10-12 grey levels too bright). ``"valid"``
            scores only windows inside the crop and has no such bias; denoising uses it.
    """

    def __init__(self, window_size: int = 11, sigma: float = 1.5, padding: Literal["zero", "valid"] = "zero") -> None:
        super().__init__()
        if window_size < 3 or window_size % 2 == 0:
            raise ValueError(f"SSIM window_size must be odd and >= 3, got {window_size}")
        if sigma <= 0:
            raise ValueError(f"SSIM sigma must be positive, got {sigma}")
        _check_padding(padding)
        self.window_size = window_size
        self.sigma = sigma
        self.padding = padding

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        return 1.0 - ssim(pred, target, self.window_size, self.sigma, padding=self.padding)
