"""Synthetic sensor noise: additive white Gaussian, and signal-dependent Poisson-Gaussian.

Both return the noisy float image unclipped (the uint8 conversion of
``Synthesizer.__call__`` clips), so statistics measured on ``degrade_float`` are the
model's exactly.
"""

from __future__ import annotations

import numpy as np

from ..registries import SYNTHESIZERS
from ._common import check_number_or_range, draw
from .base import Synthesizer

__all__ = ["GaussianNoise", "PoissonGaussianNoise"]


@SYNTHESIZERS.register("gaussian_noise")
class GaussianNoise(Synthesizer):
    """Additive white Gaussian noise: ``y = x + (σ / 255) · n`` with ``n ~ N(0, 1)`` per pixel and channel.

    Args:
        sigma: noise standard deviation on the [0, 255] scale (the denoising literature's
            convention: 15, 25, 50), or a ``(low, high)`` range drawn per image.

    Raises:
        ValueError: ``sigma`` is negative, above 255, or not a number or a range.
    """

    def __init__(self, sigma: float | tuple[float, float] = 25.0) -> None:
        self.sigma = check_number_or_range("sigma", sigma, 0.0, 255.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma!r})"

    def degrade_float(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``clean`` plus Gaussian noise, float32, not clipped."""
        sigma = draw(rng, self.sigma) / 255.0
        noise = rng.standard_normal(clean.shape, dtype=np.float32)
        return (clean + np.float32(sigma) * noise).astype(np.float32)


@SYNTHESIZERS.register("poisson_gaussian_noise")
class PoissonGaussianNoise(Synthesizer):
    """Signal-dependent sensor noise in its heteroscedastic Gaussian form (Foi et al., TIP 2008).

    ``y = x + sqrt(a · x + b) · n`` with ``x`` the clean intensity in [0, 1] and ``n ~ N(0, 1)``
    per pixel and channel, so the noise variance grows linearly with the signal:
    ``Var[y | x] = a · x + b``.

    * ``a`` is the shot-noise gain: a sensor collecting ``N`` photons at white has
      ``a = 1 / N`` (Poisson counts ``N·x`` have variance ``N·x``, i.e. ``x / N`` once scaled
      back to [0, 1]). ``a = 0.01`` is 100 photons at white, a dim indoor shot.
    * ``b`` is the signal-independent variance (read noise, quantisation, dark current), on the
      [0, 1] scale: ``b = 0.0004`` is a read-noise standard deviation of 0.02, about 5 / 255.

    The Gaussian form matches Poisson statistics in mean and variance and is the usual model
    for real raw-to-sRGB noise synthesis at these photon counts; below a few photons per pixel
    the true distribution is visibly skewed and this approximation is not the right tool.

    Args:
        a: shot-noise gain (>= 0), a number or a ``(low, high)`` range drawn per image.
        b: read-noise variance (>= 0) on the [0, 1] scale, a number or a range drawn per image.

    Raises:
        ValueError: ``a`` or ``b`` is negative, above 1, or not a number or a range.
    """

    def __init__(
        self,
        a: float | tuple[float, float] = 0.01,
        b: float | tuple[float, float] = 0.0004,
    ) -> None:
        self.a = check_number_or_range("a", a, 0.0, 1.0)
        self.b = check_number_or_range("b", b, 0.0, 1.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(a={self.a!r}, b={self.b!r})"

    def degrade_float(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``clean`` plus signal-dependent noise, float32, not clipped."""
        gain = draw(rng, self.a)
        read_variance = draw(rng, self.b)
        # Clamp at 0: a slightly negative input (from an upstream step) must not give NaN.
        std = np.sqrt(np.maximum(gain * clean + read_variance, 0.0)).astype(np.float32)
        noise = rng.standard_normal(clean.shape, dtype=np.float32)
        return (clean + std * noise).astype(np.float32)
