"""Soft-label filters built on OpenCV: median (the paper's), Gaussian, mean, bilateral, non-local means.

The paper prefers the median for rain: rain brightens a minority of pixels in any window, so
the window's median ignores it, where a mean or Gaussian averages it in (paper Fig. 4). For
noise, which touches every pixel, an averaging or edge-preserving filter is the right tool.
OpenCV's median is exact and orders of magnitude faster than a tensor median at kernel 31.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import cv2
import numpy as np

from ..registries import FILTERS
from .base import SoftLabelFilter, check_odd_kernel
from .noise_level import estimate_noise_sigma

__all__ = ["MedianFilter", "GaussianFilter", "MeanFilter", "BilateralFilter", "NonLocalMeansFilter"]


#: Largest bilateral diameter and non-local-means window: their cost grows with the square of it.
MAX_WINDOW = 63
#: Below this many pixels a photo's channels are filtered in one call: threads would cost more than they save.
PARALLEL_MIN_PIXELS = 128 * 128
_channel_pool: tuple[int, ThreadPoolExecutor] | None = None


def _channels_in_parallel(image: np.ndarray, per_channel) -> np.ndarray:
    """Apply a single-channel OpenCV call to each channel on its own thread.

    OpenCV's median runs one thread per call, and releases the GIL: three channels on three
    threads use every core (``tools/benchmark.py`` times it against one plain call and prints
    the ratio). ``cv2.setNumThreads(1)`` (what ``runtime.threads: 1`` sets) keeps it to one
    call; any other setting only switches the threads on, and all three channels run at once,
    even on 2 cores (three workers there measured faster than two). The pool is made per
    process, so a forked data-loader worker gets its own.
    """
    global _channel_pool
    threads = min(image.shape[2], cv2.getNumThreads(), os.cpu_count() or 1)
    if threads <= 1 or image.shape[0] * image.shape[1] < PARALLEL_MIN_PIXELS:
        return per_channel(image)
    if _channel_pool is None or _channel_pool[0] != os.getpid():
        _channel_pool = (os.getpid(), ThreadPoolExecutor(max_workers=3, thread_name_prefix="restorekit-filter"))
    return cv2.merge(list(_channel_pool[1].map(per_channel, cv2.split(image))))


@FILTERS.register("median")
class MedianFilter(SoftLabelFilter):
    """Exact median over a ``kernel_size``×``kernel_size`` window, per channel (the paper's soft label, k=31).

    Args:
        kernel_size: odd window side; the paper uses 31 and finds 21-51 equivalent (Table V).
    """

    def __init__(self, kernel_size: int = 31) -> None:
        check_odd_kernel("median", kernel_size)
        self.kernel_size = kernel_size

    def apply(self, image: np.ndarray) -> np.ndarray:
        return _channels_in_parallel(image, lambda channels: cv2.medianBlur(channels, self.kernel_size))


@FILTERS.register("gaussian")
class GaussianFilter(SoftLabelFilter):
    """Gaussian blur.

    Args:
        kernel_size: odd window side.
        sigma: standard deviation in pixels; 0 derives it from the kernel size as OpenCV does.
    """

    def __init__(self, kernel_size: int = 31, sigma: float = 0.0) -> None:
        check_odd_kernel("gaussian", kernel_size)
        if sigma < 0:
            raise ValueError(f"gaussian sigma must be >= 0, got {sigma}")
        self.kernel_size = kernel_size
        self.sigma = float(sigma)

    def apply(self, image: np.ndarray) -> np.ndarray:
        k = self.kernel_size
        return cv2.GaussianBlur(image, (k, k), self.sigma, borderType=cv2.BORDER_REFLECT_101)


@FILTERS.register("mean")
class MeanFilter(SoftLabelFilter):
    """Box (mean) filter.

    Args:
        kernel_size: odd window side.
    """

    def __init__(self, kernel_size: int = 31) -> None:
        check_odd_kernel("mean", kernel_size)
        self.kernel_size = kernel_size

    def apply(self, image: np.ndarray) -> np.ndarray:
        k = self.kernel_size
        return cv2.blur(image, (k, k), borderType=cv2.BORDER_REFLECT_101)


@FILTERS.register("bilateral")
class BilateralFilter(SoftLabelFilter):
    """Edge-preserving bilateral filter, applied ``iterations`` times.

    Args:
        diameter: pixel neighbourhood diameter.
        sigma_color: range sigma on the [0, 255] scale: differences well below it are smoothed.
            About 2σ of the noise to remove. ``"auto"``: ``noise_factor`` times the noise σ of
            each photo, estimated from the photo (:func:`~restorekit.filters.noise_level.estimate_noise_sigma`),
            for photos whose noise level varies and is not known (blind denoising).
        sigma_space: spatial sigma in pixels.
        iterations: repeated passes remove more noise while keeping strong edges.
        noise_factor: ``sigma_color`` per unit of estimated noise σ when ``sigma_color`` is ``"auto"``.
    """

    def __init__(
        self,
        diameter: int = 9,
        sigma_color: float | Literal["auto"] = 75.0,
        sigma_space: float = 5.0,
        iterations: int = 2,
        noise_factor: float = 2.0,
    ) -> None:
        if not 1 <= diameter <= MAX_WINDOW:
            # Its cost grows with the square of the diameter: a huge one never finishes.
            raise ValueError(f"bilateral diameter must be from 1 to {MAX_WINDOW}, got {diameter}")
        if sigma_color != "auto" and (isinstance(sigma_color, str) or sigma_color <= 0):
            raise ValueError(f"bilateral sigma_color must be positive or 'auto', got {sigma_color!r}")
        if sigma_space <= 0 or noise_factor <= 0:
            raise ValueError(f"bilateral sigma_space and noise_factor must be positive, got {sigma_space}, {noise_factor}")
        if iterations < 1:
            raise ValueError(f"bilateral iterations must be >= 1, got {iterations}")
        self.diameter = diameter
        self.sigma_color: float | str = sigma_color if sigma_color == "auto" else float(sigma_color)
        self.sigma_space = float(sigma_space)
        self.iterations = iterations
        self.noise_factor = float(noise_factor)

    def range_sigma(self, image: np.ndarray) -> float:
        """The ``sigma_color`` used on ``image`` (its own, when ``sigma_color`` is ``"auto"``)."""
        if self.sigma_color == "auto":
            # A floor of 1 level: a clean photo then stays (almost) as it is, and OpenCV gets a positive sigma.
            return self.noise_factor * max(estimate_noise_sigma(image), 1.0)
        return float(self.sigma_color)

    def apply(self, image: np.ndarray) -> np.ndarray:
        sigma_color = self.range_sigma(image)
        out = image
        for _ in range(self.iterations):
            out = cv2.bilateralFilter(out, self.diameter, sigma_color, self.sigma_space)
        return out


@FILTERS.register("nlm")
class NonLocalMeansFilter(SoftLabelFilter):
    """OpenCV's non-local means for colour images (edge-preserving, slower than bilateral).

    Args:
        strength: filter strength h on the [0, 255] scale (roughly the noise sigma).
        color_strength: the same for the colour components.
        template_window: odd side of the compared patches.
        search_window: odd side of the search area.
    """

    def __init__(
        self, strength: float = 25.0, color_strength: float = 25.0, template_window: int = 7, search_window: int = 21
    ) -> None:
        if strength <= 0 or color_strength <= 0:
            raise ValueError(f"nlm strengths must be positive, got {strength}, {color_strength}")
        for name, k in (("template_window", template_window), ("search_window", search_window)):
            if k < 1 or k % 2 == 0 or k > MAX_WINDOW:
                raise ValueError(f"nlm {name} must be odd, from 1 to {MAX_WINDOW}, got {k}")
        self.strength = float(strength)
        self.color_strength = float(color_strength)
        self.template_window = template_window
        self.search_window = search_window

    def apply(self, image: np.ndarray) -> np.ndarray:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        out = cv2.fastNlMeansDenoisingColored(
            bgr, None, self.strength, self.color_strength, self.template_window, self.search_window
        )
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
