"""Degradation synthesizers: registration, determinism, physics of each degradation, argument checks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restorekit import SYNTHESIZERS
from restorekit.synth.base import Synthesizer
from restorekit.synth.noise import GaussianNoise, PoissonGaussianNoise
from restorekit.synth.rain import RainSynthesizer
from restorekit.synth.snow import SnowSynthesizer

BUILTIN_TARGETS = {
    "rain": "restorekit.synth.rain:RainSynthesizer",
    "snow": "restorekit.synth.snow:SnowSynthesizer",
    "gaussian_noise": "restorekit.synth.noise:GaussianNoise",
    "poisson_gaussian_noise": "restorekit.synth.noise:PoissonGaussianNoise",
}
BRIGHTENING = ["rain", "snow"]


def textured_photo(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """A stand-in photo with smooth gradients, texture, and pure black and white patches."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, 0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 5.0)], axis=2)
    image = np.clip(base * 255 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    image[:16, :16] = 0  # darkest possible pixels
    image[-16:, -16:] = 255  # saturated pixels must stay saturated, not wrap
    return image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return textured_photo()


# --------------------------------------------------------------------------- registration
@pytest.mark.parametrize("name", sorted(BUILTIN_TARGETS))
def test_builtin_table_and_decorator_agree(name: str) -> None:
    assert SYNTHESIZERS.builtin_table()[name] == BUILTIN_TARGETS[name]
    cls = SYNTHESIZERS.get(name)
    assert f"{cls.__module__}:{cls.__qualname__}" == BUILTIN_TARGETS[name]
    assert SYNTHESIZERS.info(name).source == "builtin"
    assert isinstance(SYNTHESIZERS.build(name), Synthesizer)


def test_build_from_config_lists() -> None:
    # YAML gives lists, not tuples: the registry's type check converts them.
    rain = SYNTHESIZERS.build({"type": "rain", "density": [0.001, 0.002], "layers": 1})
    assert rain.density == (0.001, 0.002) and rain.layers == (1, 1)
    noise = SYNTHESIZERS.build({"type": "gaussian_noise", "sigma": [15, 50]})
    assert noise.sigma == (15.0, 50.0)


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", sorted(BUILTIN_TARGETS))
def test_same_seed_same_output_and_different_seed_differs(name: str, photo: np.ndarray) -> None:
    synth = SYNTHESIZERS.build(name)
    first, again, other = synth(photo, seed=7), synth(photo, seed=7), synth(photo, seed=8)
    assert first.dtype == np.uint8 and first.shape == photo.shape
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # A generator seeded the same way is the same seed.
    np.testing.assert_array_equal(first, synth(photo, np.random.default_rng(7)))
    floats = photo.astype(np.float32) / 255
    out = synth.degrade_float(floats, np.random.default_rng(3))
    assert out.dtype == np.float32 and out.shape == floats.shape
    np.testing.assert_array_equal(out, synth.degrade_float(floats, np.random.default_rng(3)))


# --------------------------------------------------------------------------- rain and snow
@pytest.mark.parametrize(
    "spec",
    [
        {"type": "rain"},
        {"type": "rain", "blend": "add", "layers": 3},
        {"type": "snow"},
        {"type": "snow", "haze": [0.3, 0.5]},
    ],
)
def test_rain_and_snow_never_darken_and_change_many_pixels(spec: dict, photo: np.ndarray) -> None:
    synth = SYNTHESIZERS.build(spec)
    floats = photo.astype(np.float32) / 255
    for seed in range(4):
        degraded = synth(photo, seed=seed)
        assert (degraded >= photo).all()
        assert (degraded[-16:, -16:] == 255).all()
        changed = (degraded != photo).any(axis=2).mean()
        assert changed > 0.05, f"only {changed:.1%} of pixels changed"
        degraded_float = synth.degrade_float(floats, np.random.default_rng(seed))
        assert (degraded_float >= floats).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(BRIGHTENING), level=st.integers(0, 255))
def test_never_darkens_any_flat_image(seed: int, name: str, level: int) -> None:
    flat = np.full((40, 48, 3), level, np.uint8)
    assert (SYNTHESIZERS.build(name)(flat, seed=seed) >= flat).all()


def test_default_rain_is_removed_by_the_median_31_soft_label() -> None:
    # On a flat background the median-31 soft label of the method must see (almost) no rain:
    # the streaks are thin and sparse, covering far less than half of any 31x31 window.
    flat = np.full((192, 192, 3), 100, np.uint8)
    synth = RainSynthesizer()
    for seed in range(6):
        rainy = synth(flat, seed=seed).astype(np.int16)
        soft_label = cv2.medianBlur(rainy.astype(np.uint8), 31).astype(np.int16)
        rain_left = np.abs(soft_label - 100)
        assert np.abs(rainy - 100).mean() > 1.0  # there was rain to remove
        assert rain_left.mean() < 0.1 * np.abs(rainy - 100).mean()
        assert np.percentile(rain_left, 99) <= 5


def _shift_correlation(layer: np.ndarray, dy: int, dx: int) -> float:
    shifted = np.roll(layer, (dy, dx), axis=(0, 1))
    return float(np.corrcoef(layer.ravel(), shifted.ravel())[0, 1])


@pytest.mark.parametrize(
    "angle, along, across", [(0.0, (4, 0), (0, 4)), (45.0, (3, 3), (3, -3)), (-45.0, (3, -3), (3, 3))]
)
def test_rain_streaks_follow_the_angle(angle: float, along: tuple[int, int], across: tuple[int, int]) -> None:
    # Positive angles make the rain fall to the right: a streak's bottom end is to its right.
    synth = RainSynthesizer(angle=(angle, angle), angle_jitter=0.0, layers=1, width=(1.0, 1.0))
    black = np.zeros((128, 128, 3), np.float32)
    rain = synth.degrade_float(black, np.random.default_rng(0))[:, :, 0]
    assert _shift_correlation(rain, *along) > 0.5
    assert _shift_correlation(rain, *along) > 3 * abs(_shift_correlation(rain, *across))


def test_snow_haze_lifts_dark_pixels() -> None:
    black = np.zeros((64, 64, 3), np.float32)
    clear = SnowSynthesizer(density=(0.0, 0.0), haze=(0.0, 0.0)).degrade_float(black, np.random.default_rng(0))
    hazy = SnowSynthesizer(density=(0.0, 0.0), haze=(0.4, 0.4)).degrade_float(black, np.random.default_rng(0))
    assert clear.max() == 0.0
    # The veil is 60-100% of the haze strength everywhere.
    assert 0.4 * 0.6 - 1e-6 <= hazy.min() and hazy.max() <= 0.4 + 1e-6


# --------------------------------------------------------------------------- noise statistics
def _flat(level: float, size: int = 256) -> np.ndarray:
    return np.full((size, size, 3), level, np.float32)


@pytest.mark.parametrize("sigma", [15.0, 25.0, 50.0])
def test_gaussian_noise_has_zero_mean_and_sigma_std(sigma: float) -> None:
    clean = _flat(0.5)
    residual = GaussianNoise(sigma).degrade_float(clean, np.random.default_rng(1)) - clean
    n = residual.size
    std = sigma / 255
    # Five standard errors of the sample mean (std/sqrt(n)) and of the sample std (std/sqrt(2n)).
    assert abs(residual.mean()) < 5 * std / math.sqrt(n)
    assert abs(residual.std() - std) < 5 * std / math.sqrt(2 * n)


def test_gaussian_noise_range_draws_sigma_per_image() -> None:
    synth = GaussianNoise((15.0, 50.0))
    clean = _flat(0.5, 64)
    stds = [float((synth.degrade_float(clean, np.random.default_rng(s)) - clean).std() * 255) for s in range(12)]
    assert all(14.0 < s < 51.0 for s in stds)
    assert max(stds) - min(stds) > 10.0  # not one fixed sigma


def test_poisson_gaussian_variance_follows_the_model() -> None:
    a, b = 0.02, 0.001
    synth = PoissonGaussianNoise(a=a, b=b)
    measured = []
    for level in (0.05, 0.3, 0.6, 0.95):
        clean = _flat(level)
        residual = synth.degrade_float(clean, np.random.default_rng(2)) - clean
        expected = a * level + b
        n = residual.size
        # The sample variance of n Gaussian draws has relative standard error sqrt(2 / (n - 1)).
        assert abs(residual.var() - expected) < 5 * expected * math.sqrt(2 / (n - 1))
        assert abs(residual.mean()) < 5 * math.sqrt(expected / n)
        measured.append(residual.var())
    assert measured == sorted(measured)


def test_poisson_gaussian_with_only_read_noise_is_signal_independent() -> None:
    synth = PoissonGaussianNoise(a=0.0, b=0.0025)
    dark, bright = _flat(0.1, 128), _flat(0.9, 128)
    std_dark = (synth.degrade_float(dark, np.random.default_rng(0)) - dark).std()
    std_bright = (synth.degrade_float(bright, np.random.default_rng(0)) - bright).std()
    assert std_dark == pytest.approx(0.05, rel=0.02) and std_bright == pytest.approx(0.05, rel=0.02)


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    "cls, kwargs, argument",
    [
        (RainSynthesizer, {"density": (0.01, 0.001)}, "density"),
        (RainSynthesizer, {"density": (-0.1, 0.1)}, "density"),
        (RainSynthesizer, {"length": 20}, "length"),
        (RainSynthesizer, {"angle": (-100.0, 0.0)}, "angle"),
        (RainSynthesizer, {"angle_jitter": -1.0}, "angle_jitter"),
        (RainSynthesizer, {"width": (0.0, 1.0)}, "width"),
        (RainSynthesizer, {"brightness": (0.5, 1.5)}, "brightness"),
        (RainSynthesizer, {"layers": 0}, "layers"),
        (RainSynthesizer, {"layers": (1, 2.5)}, "layers"),
        (RainSynthesizer, {"blend": "multiply"}, "blend"),
        (SnowSynthesizer, {"density": "heavy"}, "density"),
        (SnowSynthesizer, {"size": (4.0, 1.0)}, "size"),
        (SnowSynthesizer, {"classes": 0}, "classes"),
        (SnowSynthesizer, {"opacity": (-0.1, 0.5)}, "opacity"),
        (SnowSynthesizer, {"motion_prob": 1.5}, "motion_prob"),
        (SnowSynthesizer, {"motion_length": (0.0, 5.0)}, "motion_length"),
        (SnowSynthesizer, {"haze": (0.5, 1.5)}, "haze"),
        (GaussianNoise, {"sigma": -1.0}, "sigma"),
        (GaussianNoise, {"sigma": (30.0, 10.0)}, "sigma"),
        (GaussianNoise, {"sigma": float("nan")}, "sigma"),
        (GaussianNoise, {"sigma": True}, "sigma"),
        (PoissonGaussianNoise, {"a": -0.1}, "a"),
        (PoissonGaussianNoise, {"b": (0.1, 0.05)}, "b"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(cls: type, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must be"):
        cls(**kwargs)


def test_rejects_non_uint8_photos() -> None:
    with pytest.raises(ValueError, match="uint8"):
        RainSynthesizer()(np.zeros((8, 8, 3), np.float32))
