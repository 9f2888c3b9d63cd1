"""Synthetic rain: thin, motion-blurred streaks screened over a clean photo.

A rain layer is built the way a camera sees falling drops: sparse droplets (single bright
pixels) are smeared along their direction of fall by a line kernel, so each droplet becomes
one streak. Each image has a dominant wind angle; streaks come in a few groups whose angle
jitters slightly around it and whose lengths differ. Up to a few layers are summed for depth:
each farther layer has shorter, thinner, dimmer streaks. The layer is screen-blended (or added)
over the photo, so rain only ever brightens a pixel, as real rain does.

The defaults aim at light-to-moderate rain like Rain100L / Rain200L: streaks 1–2 pixels wide,
covering well under half of any 31×31 window, so a median filter of kernel 31 (the soft-label
filter of *Rain O'er Me*) removes them.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from ..registries import SYNTHESIZERS
from ._common import (
    check_number,
    check_number_or_range,
    check_range,
    draw,
    draw_int,
    line_kernel,
    screen,
)
from .base import Synthesizer

__all__ = ["RainSynthesizer"]

#: Each farther rain layer is scaled by this factor (length, and through its square root,
#: width and brightness): far streaks look shorter, thinner and fainter.
_FAR_LAYER_SCALE = 0.6
#: Streaks of one layer are drawn in this many groups, each with its own angle and length.
_STREAK_GROUPS = 4
#: Each streak's brightness is the layer's brightness times a factor drawn in this range.
_STREAK_BRIGHTNESS_SPREAD = (0.6, 1.0)


@SYNTHESIZERS.register("rain")
class RainSynthesizer(Synthesizer):
    """Render rain streaks of random angle, length, width, density and brightness.

    Every ``(low, high)`` argument is a range; each image (and each layer, for the per-layer
    ones) draws its own value uniformly from it.

    Args:
        density: streaks per pixel in each layer (0.003 ≈ 790 streaks on a 512×512 photo).
        length: streak length in pixels, drawn per streak group.
        angle: dominant tilt from vertical in degrees, drawn per image; positive angles make
            the rain fall to the right.
        angle_jitter: standard deviation in degrees of each streak group's angle around the
            dominant one.
        width: streak width in pixels (nearest layer).
        brightness: peak brightness added by the brightest streaks of the nearest layer, on
            the [0, 1] scale; each streak takes 60–100% of it.
        layers: how many depth layers to sum, a number or an inclusive integer range.
        blend: ``"screen"`` (``x + r·(1 − x)``: streaks fade over bright areas, never exceed
            white) or ``"add"`` (``x + r``, clipped when converted to uint8).

    Raises:
        ValueError: an argument is outside its range; the message names it.
    """

    def __init__(
        self,
        density: tuple[float, float] = (0.0015, 0.003),
        length: tuple[float, float] = (12.0, 32.0),
        angle: tuple[float, float] = (-25.0, 25.0),
        angle_jitter: float = 3.0,
        width: tuple[float, float] = (1.0, 1.8),
        brightness: tuple[float, float] = (0.35, 0.7),
        layers: int | tuple[int, int] = (1, 2),
        blend: Literal["screen", "add"] = "screen",
    ) -> None:
        self.density = check_range("density", density, 0.0, 0.05)
        self.length = check_range("length", length, 1.0, 200.0)
        self.angle = check_range("angle", angle, -80.0, 80.0)
        self.angle_jitter = check_number("angle_jitter", angle_jitter, 0.0, 45.0)
        self.width = check_range("width", width, 0.5, 8.0)
        self.brightness = check_range("brightness", brightness, 0.0, 1.0)
        self.layers = check_number_or_range("layers", layers, 1, 5, integer=True)
        if blend not in ("screen", "add"):
            raise ValueError(f"blend must be 'screen' or 'add', got {blend!r}")
        self.blend = blend

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def degrade_float(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add rain to an H×W×3 float32 photo in [0, 1]; the result is never darker than ``clean``."""
        height, width = clean.shape[:2]
        dominant_angle = draw(rng, self.angle)
        rain = np.zeros((height, width), np.float32)
        for depth in range(draw_int(rng, self.layers)):
            rain += self.rain_layer(height, width, dominant_angle, depth, rng)
        rain_rgb = np.clip(rain, 0.0, 1.0)[:, :, None]
        if self.blend == "screen":
            return screen(clean, rain_rgb)
        return (clean + rain_rgb).astype(np.float32)

    def rain_layer(
        self, height: int, width: int, dominant_angle: float, depth: int, rng: np.random.Generator
    ) -> np.ndarray:
        """One depth layer of streaks, H×W float32, ``depth`` 0 being the nearest."""
        scale = _FAR_LAYER_SCALE**depth
        density = draw(rng, self.density)
        streak_width = draw(rng, self.width) * np.sqrt(scale)
        brightness = draw(rng, self.brightness) * np.sqrt(scale)
        max_length = self.length[1] * scale
        # Droplets are scattered over a margin around the photo too, so streaks enter from
        # outside the frame instead of stopping short of its edges.
        margin = int(np.ceil(max_length / 2.0)) + 2
        canvas_shape = (height + 2 * margin, width + 2 * margin)
        canvas_area = canvas_shape[0] * canvas_shape[1]
        layer = np.zeros(canvas_shape, np.float32)
        for _ in range(_STREAK_GROUPS):
            group_angle = dominant_angle + rng.normal(0.0, self.angle_jitter)
            group_length = max(draw(rng, self.length) * scale, 1.0)
            count = rng.poisson(density * canvas_area / _STREAK_GROUPS)
            positions = rng.integers(0, canvas_area, size=count)
            values = brightness * rng.uniform(*_STREAK_BRIGHTNESS_SPREAD, size=count)
            droplets = np.bincount(positions, weights=values, minlength=canvas_area)
            droplets = droplets.reshape(canvas_shape).astype(np.float32)
            streak_kernel = line_kernel(group_length, group_angle, streak_width)
            layer += cv2.filter2D(droplets, -1, streak_kernel, borderType=cv2.BORDER_CONSTANT)
        return layer[margin : margin + height, margin : margin + width]
