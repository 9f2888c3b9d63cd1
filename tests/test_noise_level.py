"""Blind denoising's soft label: the noise level estimated from the photo alone, and the
bilateral filter whose strength follows it (``sigma_color: auto``)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from restorekit.errors import ConfigError
from restorekit.filters.noise_level import estimate_noise_sigma
from restorekit.registries import FILTERS


def _photo() -> np.ndarray:
    """A real photo with edges and texture (scikit-image's astronaut), cropped to 256×256."""
    return skdata.astronaut()[100:356, 100:356]


def _noisy(photo: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, photo.shape)
    return np.clip(np.round(photo.astype(np.float64) + noise), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0, 50.0])
def test_estimated_noise_sigma_is_near_the_true_one_on_a_real_photo(sigma):
    estimate = estimate_noise_sigma(_noisy(_photo(), sigma))
    # The photo's own texture adds about a level (2.2 on the clean crop); clipping at 0 and 255
    # takes some noise away, most at σ = 50 (41.5 measured there).
    assert abs(estimate - sigma) < 0.2 * sigma + 1.0


def test_estimate_ignores_smooth_content_and_grows_with_the_noise():
    y, x = np.mgrid[0:128, 0:128]
    ramp = np.repeat((60 + x + 0.5 * y)[..., None], 3, axis=2).astype(np.uint8)
    assert estimate_noise_sigma(ramp) < 1.0  # a linear ramp has no diagonal detail
    estimates = [estimate_noise_sigma(_noisy(ramp, s)) for s in (5, 10, 20, 40)]
    assert estimates == sorted(estimates)
    assert estimate_noise_sigma(ramp[:1, :1]) == 0.0
    with pytest.raises(ValueError, match="H×W"):
        estimate_noise_sigma(np.zeros(5))


def test_auto_bilateral_smooths_each_photo_by_its_own_noise():
    auto = FILTERS.build({"type": "bilateral", "sigma_color": "auto"})
    photo = _photo()
    quiet, loud = _noisy(photo, 10), _noisy(photo, 40)
    assert auto.range_sigma(quiet) == pytest.approx(2 * estimate_noise_sigma(quiet))
    assert auto.range_sigma(loud) > 3 * auto.range_sigma(quiet)

    def error(label: np.ndarray) -> float:
        return float(np.sqrt(np.mean((label.astype(np.float64) - photo) ** 2)))

    # Against one fixed strength, right for neither photo, the per-photo strength is closer to the
    # truth on both: a fixed 2·25 over-smooths the quiet photo and leaves noise in the loud one.
    fixed = FILTERS.build({"type": "bilateral", "sigma_color": 50.0})
    for noisy in (quiet, loud):
        assert error(auto(noisy)) < error(fixed(noisy))
    # The cache of soft labels must not mix the two.
    assert auto.cache_key != fixed.cache_key


def test_bilateral_sigma_color_errors_name_the_value():
    with pytest.raises(ConfigError, match="sigma_color"):
        FILTERS.build({"type": "bilateral", "sigma_color": "automatic"})
    with pytest.raises(ValueError, match="positive or 'auto'"):
        FILTERS.build({"type": "bilateral", "sigma_color": -1.0})
