"""A soft-label filter: a morphological opening, which erases thin bright structures.

Rain streaks are brighter than what lies behind them and only a few pixels wide, so an
erosion (window minimum) removes them and the following dilation (window maximum) restores the
size of the larger bright objects that survived. Unlike the median it also removes streaks that
cover more than half of a window, at the cost of darkening thin bright details of the scene.
"""

from __future__ import annotations

import cv2
import numpy as np

from restorekit.filters.base import SoftLabelFilter, check_odd_kernel

__all__ = ["OpeningFilter"]


class OpeningFilter(SoftLabelFilter):
    """Grey-level opening (erosion, then dilation) with a square window, per channel.

    Args:
        kernel_size: odd window side; bright structures thinner than this disappear.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        check_odd_kernel("example_opening", kernel_size)
        # The attributes name every setting that changes the output: restorekit keys its
        # soft-label cache on them (SoftLabelFilter.cache_key).
        self.kernel_size = kernel_size

    def apply(self, image: np.ndarray) -> np.ndarray:
        window = np.ones((self.kernel_size, self.kernel_size), np.uint8)
        return cv2.morphologyEx(image, cv2.MORPH_OPEN, window, borderType=cv2.BORDER_REFLECT_101)
