"""The noise level of a photo, estimated from the photo alone (no clean twin, no σ given).

A blind denoising run trains on photos whose noise level differs from photo to photo and is
known to nobody, so a soft-label filter with one fixed strength over-smooths the quiet photos
and leaves noise in the loud ones. :func:`estimate_noise_sigma` gives each photo its own
strength (``sigma_color: auto`` of the bilateral filter).

The estimator is Donoho and Johnstone's (1994): the median absolute value of the finest
diagonal wavelet coefficients, divided by 0.6745 (the median of ``|N(0, 1)|``). The diagonal
Haar coefficient of a 2×2 block, ``(a - b - c + d) / 2``, cancels every constant and every
linear ramp of the photo and keeps white noise at its full σ, and the median ignores the
minority of coefficients that sit on edges and texture, which is what makes it robust where a
plain standard deviation of a high-pass is not.
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_noise_sigma"]

#: The median of |N(0, 1)|: turns a median absolute value into a standard deviation.
_MAD_TO_SIGMA = 0.6745


def estimate_noise_sigma(image: np.ndarray) -> float:
    """The standard deviation of white noise in ``image``, on the scale of its values.

    ``image``: H×W or H×W×C, any numeric dtype (uint8 photos give σ on [0, 255]). Each channel
    gives its own estimate; the median of them is returned. Photos smaller than 2×2 give 0.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {image.shape}")
    h, w = data.shape[0] // 2 * 2, data.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return 0.0
    blocks = data[:h, :w]
    a, b = blocks[0::2, 0::2], blocks[0::2, 1::2]
    c, d = blocks[1::2, 0::2], blocks[1::2, 1::2]
    diagonal = np.abs(a - b - c + d) * 0.5
    per_channel = np.median(diagonal.reshape(-1, data.shape[2]), axis=0) / _MAD_TO_SIGMA
    return float(np.median(per_channel))
