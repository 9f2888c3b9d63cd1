"""The interface of soft-label filters."""

from __future__ import annotations

import numpy as np

__all__ = ["SoftLabelFilter", "check_odd_kernel", "MAX_KERNEL"]


#: Largest window side a filter takes. OpenCV's median fails on small images above it (and
#: above ~731 on any image), and a window of hundreds of pixels has nothing left to blur.
MAX_KERNEL = 255


def check_odd_kernel(name: str, kernel_size: int, maximum: int = MAX_KERNEL) -> None:
    """Raise ValueError unless ``kernel_size`` is an odd integer from 3 to ``maximum``."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"{name} kernel_size must be an odd integer >= 3, got {kernel_size!r}")
    if kernel_size > maximum:
        raise ValueError(f"{name} kernel_size must be at most {maximum}, got {kernel_size}")


class SoftLabelFilter:
    """Maps a degraded H×W×3 uint8 RGB photo to its soft label (same shape and dtype).

    Subclasses implement :meth:`apply` and list the constructor arguments that change the
    output in :attr:`cache_key`, so cached labels are never reused across settings.
    """

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The soft label of ``image``: an H×W×3 uint8 RGB array of the same shape and type."""
        raise NotImplementedError

    @property
    def cache_key(self) -> str:
        """A string that changes whenever the filter's output would change."""
        params = ",".join(f"{k}={v!r}" for k, v in sorted(vars(self).items()))
        return f"{type(self).__module__}.{type(self).__qualname__}({params})"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
        out = self.apply(np.ascontiguousarray(image))
        if out.shape != image.shape or out.dtype != np.uint8:
            raise RuntimeError(f"{type(self).__name__} returned {out.dtype} {out.shape} for {image.shape}")
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
