"""Losses, soft-label filters and their cache, schedules, metrics: properties and reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import restorekit
from restorekit.data.io import content_digest
from restorekit.methods.soft_labels import SoftLabelCache
from restorekit.losses.ssim import ssim
from restorekit.metrics import brightness_split, psnr, score_pair, y_channel
from restorekit.metrics import ssim as ssim_metric
from restorekit.testing import make_photo


# --------------------------------------------------------------------------- losses
@pytest.mark.parametrize("name", restorekit.LOSSES.names())
def test_pixel_losses_are_zero_on_identical_images(name):
    if getattr(restorekit.LOSSES.get(name), "aux_keys", None):
        pytest.skip("needs auxiliary outputs (tested with the backbone zoo)")
    loss = restorekit.LOSSES.build(name)
    x = torch.rand(2, 3, 24, 24)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(x, 1 - x)) > 0


def _direct_ssim(x, y, padding: int):
    """SSIM written out with one 11×11 Gaussian window (σ 1.5) and a plain conv2d: the reference."""
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)

    def blur(t):
        return F.conv2d(t, w, padding=padding, groups=3)

    mx, my = blur(x), blur(y)
    sx, sy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sx + sy + c2))).mean()


def test_ssim_matches_a_direct_2d_gaussian_window_with_zero_padding():
    """The authors' SSIM: an 11×11 window, σ 1.5, conv2d with zero padding, mean of the map."""
    x, y = torch.rand(2, 3, 30, 34), torch.rand(2, 3, 30, 34)
    torch.testing.assert_close(ssim(x, y), _direct_ssim(x, y, padding=5), rtol=1e-5, atol=1e-6)


def test_valid_ssim_is_the_mean_over_interior_windows():
    x, y = torch.rand(1, 3, 30, 34), torch.rand(1, 3, 30, 34)
    # No padding: the 20×24 windows that lie inside the image.
    torch.testing.assert_close(ssim(x, y, padding="valid"), _direct_ssim(x, y, padding=0), rtol=1e-5, atol=1e-6)
    assert float(restorekit.LOSSES.build({"type": "ssim", "padding": "valid"})(x, x)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x[..., :8, :8], y[..., :8, :8], padding="valid")


def _best_brightness_shift(padding: str) -> int:
    """The brightness offset (grey levels) of a noisy output that the SSIM loss likes best."""
    from restorekit.data.demo import resolve_demo
    from restorekit.data.io import list_images, read_image

    torch.manual_seed(0)
    photos = sorted(list_images(resolve_demo("demo:noise/test") / "gt"))
    clean = torch.stack([torch.from_numpy(read_image(p)[100:164, 100:164]).permute(2, 0, 1).float() / 255 for p in photos])
    noisy = clean + torch.randn_like(clean) * 25 / 255
    losses = {s: float(1 - ssim(noisy + s / 255, clean, padding=padding)) for s in range(-8, 21)}
    return min(losses, key=losses.get)


def test_zero_padded_ssim_rewards_a_brighter_noisy_output_and_valid_ssim_does_not():
    """Why denoising trains with ``padding: valid``: zero padding biases the output's brightness."""
    zero, valid = _best_brightness_shift("zero"), _best_brightness_shift("valid")
    assert abs(valid) <= 1 and zero >= valid + 3


# --------------------------------------------------------------------------- filters
def test_median_filter_is_exact():
    image = make_photo(0, 23, 29)
    k = 5
    out = restorekit.FILTERS.build({"type": "median", "kernel_size": k})(image)
    padded = np.pad(image, ((k // 2,) * 2, (k // 2,) * 2, (0, 0)), mode="edge")  # OpenCV replicates borders
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(0, 1))
    np.testing.assert_array_equal(out, np.median(windows, axis=(-2, -1)).astype(np.uint8))


def test_median_filter_on_parallel_channels_equals_one_opencv_call(monkeypatch):
    import cv2

    image = make_photo(2, 160, 200)  # above PARALLEL_MIN_PIXELS: one thread per channel
    median = restorekit.FILTERS.build({"type": "median", "kernel_size": 31})
    np.testing.assert_array_equal(median(image), cv2.medianBlur(image, 31))
    monkeypatch.setattr(cv2, "getNumThreads", lambda: 1)  # runtime.threads: 1 -> one call
    np.testing.assert_array_equal(median(image), cv2.medianBlur(image, 31))


@pytest.mark.parametrize("name", ["median", "gaussian", "mean", "bilateral", "nlm"])
def test_filters_keep_shape_and_reduce_rain(name):
    clean = make_photo(1, 64, 64)
    rainy = restorekit.SYNTHESIZERS.build("rain")(clean, 3)
    label = restorekit.FILTERS.build(name)(rainy)
    assert label.shape == rainy.shape and label.dtype == np.uint8


@pytest.mark.parametrize("name", ["median", "gaussian", "mean"])
def test_even_kernels_are_rejected(name):
    with pytest.raises(ValueError, match="odd"):
        restorekit.FILTERS.build({"type": name, "kernel_size": 30})


def test_soft_label_cache_returns_the_fresh_label_and_keys_by_settings(tmp_path):
    image = make_photo(2, 64, 80)
    digest = content_digest(image.tobytes())
    median = restorekit.FILTERS.build({"type": "median", "kernel_size": 31})
    cache = SoftLabelCache(median, tmp_path)
    first = cache.get(image, digest)
    again = SoftLabelCache(median, tmp_path).get(image, digest)  # a later run: read from disk
    np.testing.assert_array_equal(first, median(image))
    np.testing.assert_array_equal(again, first)
    assert cache.misses == 1
    other = SoftLabelCache(restorekit.FILTERS.build({"type": "median", "kernel_size": 21}), tmp_path)
    assert other.folder != cache.folder
    np.testing.assert_array_equal(other.get(image, digest), restorekit.FILTERS.build({"type": "median", "kernel_size": 21})(image))


# --------------------------------------------------------------------------- schedules
def test_dynamic_weights_follow_the_paper_and_the_authors_caps():
    paper = restorekit.SCHEDULERS.build({"type": "dynamic"})
    assert paper(1) == pytest.approx((0.001, 1000 / 1001))
    assert paper(1000) == pytest.approx((1.0, 0.5))
    assert paper(300_000) == pytest.approx((300.0, 1000 / 301_000))
    rain1400 = restorekit.SCHEDULERS.build({"type": "dynamic", "cap": 10})
    assert rain1400(300_000)[0] == 10
    did = restorekit.SCHEDULERS.build({"type": "dynamic", "scale": 500, "cap": 100})
    assert did(1000) == pytest.approx((2.0, 1 / 3))
    assert restorekit.SCHEDULERS.build({"type": "fixed", "alpha": 300})(7) == (300.0, 1.0)


def test_constant_then_linear_lr():
    schedule = restorekit.SCHEDULERS.build({"type": "constant_then_linear"})
    total = 300_000
    assert schedule.factor(1, total) == 1.0
    assert schedule.factor(150_000, total) == 1.0
    assert schedule.factor(225_000, total) == pytest.approx(0.5, abs=1e-4)
    assert 0 < schedule.factor(total, total) < 1e-4
    factors = [schedule.factor(t, 100) for t in range(1, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


# --------------------------------------------------------------------------- metrics
def test_metrics_match_scikit_image_on_known_images():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    data = pytest.importorskip("skimage.data")
    clean = data.astronaut()
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    ya, yb = y_channel(noisy), y_channel(clean)
    assert psnr(ya, yb) == pytest.approx(skimage_metrics.peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-9)
    assert ssim_metric(ya, yb) == pytest.approx(skimage_metrics.structural_similarity(ya, yb, data_range=255), abs=1e-9)
    rgb = skimage_metrics.structural_similarity(noisy, clean, data_range=255, channel_axis=-1)
    assert score_pair(noisy, clean).ssim_rgb == pytest.approx(rgb, abs=1e-9)


def test_brightness_error_is_the_signed_mean_difference_in_grey_levels():
    clean = np.full((16, 16, 3), 100, np.uint8)
    brighter = clean + np.uint8(10)
    brighter[0, :, 0] = 100  # one row of one channel unchanged: 10 · (1 - 1/48) on average
    assert score_pair(brighter, clean).brightness == pytest.approx(10 * (1 - 1 / 48))
    assert score_pair(clean, brighter).brightness == pytest.approx(-10 * (1 - 1 / 48))
    assert score_pair(clean, clean).brightness == 0.0


def test_y_channel_is_opencv_full_range_luma():
    pixel = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert y_channel(pixel).tolist() == [[76, 150, 29, 255]]  # round(0.299·255), round(0.587·255), ...
    assert math.isinf(psnr(pixel, pixel))


def test_ssim_stays_float32_under_bf16_autocast():
    """bf16 variances (E[x²] - E[x]²) cancel into NaN; SSIM must ignore autocast."""
    x = torch.rand(2, 3, 40, 40)
    y = (x + 0.01 * torch.randn_like(x)).clamp(0, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = ssim(x, y)
    assert under_autocast.dtype == torch.float32
    assert float(under_autocast) == float(ssim(x, y))


def test_brightness_split_sums_to_the_error_and_puts_left_rain_on_rainy_pixels():
    clean = np.full((8, 8, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[:, 2] = 200  # one streak: a column of 8 of the 64 pixels
    half_removed = rainy.copy()
    half_removed[:, 2] = 150
    on_rain, elsewhere = brightness_split(half_removed, rainy, clean)
    assert on_rain == pytest.approx(50 / 8) and elsewhere == 0.0
    assert on_rain + elsewhere == pytest.approx(score_pair(half_removed, clean).brightness)
    shifted = clean + np.uint8(2)  # no rain left, but a shift of 2 everywhere
    on_rain, elsewhere = brightness_split(shifted, rainy, clean)
    assert on_rain == pytest.approx(2 / 8) and elsewhere == pytest.approx(2 * 7 / 8)
