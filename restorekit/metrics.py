"""PSNR and SSIM as deraining papers report them.

The Rain O'er Me authors (and most deraining papers) evaluate on the **Y channel** of uint8
images: OpenCV's full-range YCrCb conversion, then scikit-image's PSNR with data range 255
and SSIM with its defaults (7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance,
a 3-pixel border excluded). This module reimplements exactly that with NumPy and OpenCV, so
evaluation needs no scikit-image; a test checks it against scikit-image on known images.
RGB figures (SSIM averaged over the three channels) are reported beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["y_channel", "psnr", "ssim", "ImageScores", "score_pair", "brightness_error", "brightness_split"]


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """Luma of an H×W×3 uint8 RGB image, as OpenCV's full-range YCrCb conversion gives it (uint8)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0]


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    if a.shape != b.shape:
        raise ValueError(f"PSNR needs equal shapes, got {a.shape} and {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mse))


def _ssim_2d(a: np.ndarray, b: np.ndarray, data_range: float, win: int = 7) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    n = win * win
    cov_norm = n / (n - 1.0)  # unbiased (sample) covariance, as scikit-image's default

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, (win, win), borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(a), mean(b)
    uxx, uyy, uxy = mean(a * a), mean(b * b), mean(a * b)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM with scikit-image's defaults; H×W×C images average the per-channel values."""
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs equal shapes, got {a.shape} and {b.shape}")
    if min(a.shape[:2]) < 7:
        raise ValueError(f"SSIM needs images of at least 7×7 pixels, got {a.shape[:2]}")
    if a.ndim == 2:
        return _ssim_2d(a, b, data_range)
    return float(np.mean([_ssim_2d(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))


@dataclass(frozen=True)
class ImageScores:
    """Scores of one restored image against its ground truth."""

    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    #: The restored image's mean minus the truth's mean, in grey levels of 0-255. Rain left in
    #: the output, or a shift the network adds, shows here; PSNR charges it, SSIM hardly does.
    brightness: float = 0.0


def score_pair(restored: np.ndarray, ground_truth: np.ndarray) -> ImageScores:
    """Y-channel and RGB PSNR/SSIM of two H×W×3 uint8 RGB images."""
    if restored.shape != ground_truth.shape:
        raise ValueError(f"restored {restored.shape} and ground truth {ground_truth.shape} differ in size")
    ya, yb = y_channel(restored), y_channel(ground_truth)
    return ImageScores(
        psnr_y=psnr(ya, yb),
        ssim_y=ssim(ya, yb),
        psnr_rgb=psnr(restored, ground_truth),
        ssim_rgb=ssim(restored, ground_truth),
        brightness=brightness_error(restored, ground_truth),
    )


def brightness_error(restored: np.ndarray, ground_truth: np.ndarray) -> float:
    """Mean of ``restored`` minus mean of ``ground_truth`` over all pixels and channels, in their own units."""
    return float(restored.astype(np.float64).mean() - ground_truth.astype(np.float64).mean())


def brightness_split(
    restored: np.ndarray, degraded: np.ndarray, ground_truth: np.ndarray, threshold: float = 1.0
) -> tuple[float, float]:
    """:func:`brightness_error` as the sum of what degraded pixels and clean pixels contribute.

    A pixel is degraded where the channel mean of ``|degraded - ground_truth|`` exceeds
    ``threshold`` (grey levels). The first number is the error summed over degraded pixels, the
    second over the others, each divided by the whole image's size, so the two add up to
    :func:`brightness_error`. Rain left in the output shows in the first; a shift the network
    adds everywhere, in the second.
    """
    error = restored.astype(np.float64) - ground_truth.astype(np.float64)
    mask = np.abs(degraded.astype(np.float64) - ground_truth.astype(np.float64)).mean(axis=-1) > threshold
    per_pixel = error.mean(axis=-1)
    return float(per_pixel[mask].sum() / per_pixel.size), float(per_pixel[~mask].sum() / per_pixel.size)
