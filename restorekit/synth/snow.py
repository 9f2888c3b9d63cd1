"""Synthetic snow: flakes of several sizes over a clean photo, optionally through a haze veil.

Flakes come in a few size classes, from many small sharp dots to fewer large soft blobs
(near the lens, out of focus), each flake with its own opacity. Each class may be
motion-blurred along the wind direction, as flakes fall during the exposure. An optional
bright haze veil (the scattering of a snowfall in the distance) lifts and flattens the scene.
Everything is screen-blended, so snow never darkens a pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..registries import SYNTHESIZERS
from ._common import check_number, check_range, draw, line_kernel, screen
from .base import Synthesizer

__all__ = ["SnowSynthesizer"]

#: Larger flakes are rarer: a class with flakes ``k`` times the smallest radius has ``k**-1.5``
#: times the smallest class's density (fewer than ``k**-2``, so big flakes still show).
_SIZE_DENSITY_EXPONENT = 1.5
#: Opacity of the largest (softest, out-of-focus) flakes relative to the smallest.
_LARGE_FLAKE_OPACITY = 0.6
#: Each flake's opacity is the class's opacity times a factor drawn in this range.
_FLAKE_OPACITY_SPREAD = (0.5, 1.0)
#: The haze veil varies smoothly over the frame; this many control points per side.
_VEIL_GRID = 4
#: Where the veil is thinnest it is this fraction of the haze strength, where thickest all of it.
_VEIL_RANGE = (0.6, 1.0)


@SYNTHESIZERS.register("snow")
class SnowSynthesizer(Synthesizer):
    """Render snow flakes of several sizes and opacities, some motion-blurred, plus haze.

    Every ``(low, high)`` argument is a range; each image (or flake class) draws its own
    value uniformly from it.

    Args:
        density: flakes per pixel in the smallest size class (0.005 ≈ 1,300 flakes on a
            512×512 photo); larger classes are rarer (density scaled by ``size_ratio**-1.5``).
        size: flake radius in pixels (Gaussian σ) of the smallest and of the largest class;
            the classes in between are spaced geometrically.
        classes: number of size classes (1 gives one size, ``size[0]``).
        opacity: peak opacity of the smallest flakes, on the [0, 1] scale; the largest
            flakes get 60% of it, and each flake 50–100% of its class's.
        motion_prob: probability that a class is motion-blurred.
        motion_length: length in pixels of the motion blur of a blurred class.
        angle: fall direction in degrees from vertical (positive: towards the right), per image.
        haze: strength of the bright veil, drawn per image; 0 is none. The veil is screened
            over the photo and varies smoothly between 60% and 100% of the strength, so
            ``haze=0.2`` moves each pixel 12–20% of the way to white.

    Raises:
        ValueError: an argument is outside its range; the message names it.
    """

    def __init__(
        self,
        density: tuple[float, float] = (0.003, 0.007),
        size: tuple[float, float] = (0.9, 4.0),
        classes: int = 3,
        opacity: tuple[float, float] = (0.7, 1.0),
        motion_prob: float = 0.5,
        motion_length: tuple[float, float] = (3.0, 8.0),
        angle: tuple[float, float] = (-30.0, 30.0),
        haze: tuple[float, float] = (0.0, 0.2),
    ) -> None:
        self.density = check_range("density", density, 0.0, 0.05)
        self.size = check_range("size", size, 0.3, 20.0)
        self.classes = int(check_number("classes", classes, 1, 8, integer=True))
        self.opacity = check_range("opacity", opacity, 0.0, 1.0)
        self.motion_prob = check_number("motion_prob", motion_prob, 0.0, 1.0)
        self.motion_length = check_range("motion_length", motion_length, 1.0, 100.0)
        self.angle = check_range("angle", angle, -80.0, 80.0)
        self.haze = check_range("haze", haze, 0.0, 0.9)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def degrade_float(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add snow to an H×W×3 float32 photo in [0, 1]; the result is never darker than ``clean``."""
        height, width = clean.shape[:2]
        fall_angle = draw(rng, self.angle)
        hazy = screen(clean, self.haze_veil(height, width, rng)[:, :, None])
        flakes = np.zeros((height, width), np.float32)
        for index in range(self.classes):
            flakes += self.flake_class(height, width, index, fall_angle, rng)
        return screen(hazy, np.clip(flakes, 0.0, 1.0)[:, :, None])

    def class_radius(self, index: int) -> float:
        """Gaussian σ in pixels of flake class ``index`` (0: smallest)."""
        small, large = self.size
        if self.classes == 1:
            return small
        return small * (large / small) ** (index / (self.classes - 1))

    def flake_class(
        self, height: int, width: int, index: int, fall_angle: float, rng: np.random.Generator
    ) -> np.ndarray:
        """The flakes of one size class, H×W float32 (values may exceed 1 where flakes overlap)."""
        radius = self.class_radius(index)
        size_ratio = radius / self.size[0]
        density = draw(rng, self.density) * size_ratio**-_SIZE_DENSITY_EXPONENT
        # Opacity falls from the smallest to the largest class: big flakes are out of focus.
        progress = index / (self.classes - 1) if self.classes > 1 else 0.0
        opacity = draw(rng, self.opacity) * (1.0 - (1.0 - _LARGE_FLAKE_OPACITY) * progress)
        motion = rng.random() < self.motion_prob
        motion_length = draw(rng, self.motion_length)

        # Flakes centred outside the frame still reach into it, so scatter them over a margin.
        margin = int(math.ceil(3 * radius + motion_length / 2)) + 1
        canvas_shape = (height + 2 * margin, width + 2 * margin)
        canvas_area = canvas_shape[0] * canvas_shape[1]
        count = rng.poisson(density * canvas_area)
        positions = rng.integers(0, canvas_area, size=count)
        peaks = opacity * rng.uniform(*_FLAKE_OPACITY_SPREAD, size=count)

        # A flake is a Gaussian blob; scale each impulse by the blur's own peak so that the
        # blurred flake's centre reaches the flake's opacity whatever its size.
        blur_size = 2 * int(math.ceil(3 * radius)) + 1
        gaussian = cv2.getGaussianKernel(blur_size, radius).astype(np.float32)
        blur_peak = float(gaussian.max()) ** 2
        impulses = np.bincount(positions, weights=peaks / blur_peak, minlength=canvas_area)
        layer = impulses.reshape(canvas_shape).astype(np.float32)
        layer = cv2.sepFilter2D(layer, -1, gaussian, gaussian, borderType=cv2.BORDER_CONSTANT)
        if motion:
            # Energy-preserving smear: a moving flake spreads the same light over a streak.
            streak = line_kernel(motion_length, fall_angle, 1.0, taper=False)
            layer = cv2.filter2D(layer, -1, streak / streak.sum(), borderType=cv2.BORDER_CONSTANT)
        return layer[margin : margin + height, margin : margin + width]

    def haze_veil(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """A smooth bright veil, H×W float32 in [0, haze]; all zeros when haze is 0."""
        strength = draw(rng, self.haze)
        # Drawn even when the strength is 0, so the flakes of a seed do not depend on the haze.
        grid = rng.uniform(*_VEIL_RANGE, size=(_VEIL_GRID, _VEIL_GRID)).astype(np.float32)
        veil = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        # Bicubic interpolation overshoots a little; keep the veil within its stated range.
        return np.clip(veil, *_VEIL_RANGE) * np.float32(strength)
