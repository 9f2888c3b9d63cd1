"""Pieces the synthesizers share: argument checks, per-image draws, streak kernels, blending.

Synthesizer arguments are either a number or a ``(low, high)`` range from which each image
draws its own value; the checks here raise :class:`ValueError` naming the argument and the
range it must lie in, so a bad config fails when the synthesizer is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

__all__ = [
    "check_range",
    "check_number",
    "check_number_or_range",
    "draw",
    "draw_int",
    "line_kernel",
    "screen",
]


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _bounds_text(lo: float, hi: float) -> str:
    return f"{lo:g} <= value <= {hi:g}" if math.isfinite(hi) else f"value >= {lo:g}"


def check_number(name: str, value: object, lo: float, hi: float = math.inf, *, integer: bool = False) -> float:
    """``value`` as a float (or int) if it is a finite number in ``[lo, hi]``; else ValueError naming ``name``."""
    kind = "an integer" if integer else "a number"
    if not _is_number(value) or (integer and float(value) != int(value)):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be {kind} with {_bounds_text(lo, hi)}, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not lo <= number <= hi:
        raise ValueError(f"{name} must be {kind} with {_bounds_text(lo, hi)}, got {value!r}")
    return int(number) if integer else number


def check_range(
    name: str, value: object, lo: float, hi: float = math.inf, *, integer: bool = False
) -> tuple[float, float]:
    """Check a ``(low, high)`` pair with ``lo <= low <= high <= hi``; return it as a tuple.

    Raises:
        ValueError: naming ``name`` and the expected range.
    """
    expected = f"a (low, high) pair with {lo:g} <= low <= high" + (f" <= {hi:g}" if math.isfinite(hi) else "")
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    low, high = value
    try:
        low = check_number(name, low, lo, hi, integer=integer)
        high = check_number(name, high, lo, hi, integer=integer)
    except ValueError:
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    if low > high:
        raise ValueError(f"{name} must be {expected} (low <= high), got {value!r}")
    return (low, high)


def check_number_or_range(
    name: str, value: object, lo: float, hi: float = math.inf, *, integer: bool = False
) -> tuple[float, float]:
    """Accept a number ``v`` (stored as ``(v, v)``) or a ``(low, high)`` range."""
    if _is_number(value):
        number = check_number(name, value, lo, hi, integer=integer)
        return (number, number)
    return check_range(name, value, lo, hi, integer=integer)


def draw(rng: np.random.Generator, value_range: tuple[float, float]) -> float:
    """One value drawn uniformly from ``value_range``, without touching ``rng`` when it is a point.

    Skipping the draw for a fixed value keeps ``sigma=25`` and ``sigma=(25, 25)`` equivalent
    and byte-identical.
    """
    low, high = value_range
    return float(low) if low == high else float(rng.uniform(low, high))


def draw_int(rng: np.random.Generator, value_range: tuple[float, float]) -> int:
    """One integer drawn uniformly from the inclusive integer range ``value_range``."""
    low, high = int(value_range[0]), int(value_range[1])
    return low if low == high else int(rng.integers(low, high + 1))


def line_kernel(length: float, angle_deg: float, width: float = 1.0, *, taper: bool = True) -> np.ndarray:
    """A float32 kernel that smears a point into an anti-aliased line segment.

    The kernel is computed analytically rather than drawn, so fractional lengths and widths
    give smooth (not stair-stepped) streaks. Pixel values are the segment's coverage, up to 1;
    they are NOT normalised to sum 1, so a droplet of brightness ``v`` becomes a streak of
    brightness ``v`` rather than ``v / length``.

    Args:
        length: segment length in pixels (>= 1).
        angle_deg: tilt from vertical in degrees; positive leans the bottom end to the right,
            i.e. rain falling to the right.
        width: segment width in pixels.
        taper: fade the segment towards its ends (an elliptical profile), as a falling drop's
            streak is brightest in the middle of the exposure.
    """
    theta = math.radians(angle_deg)
    along_x, along_y = math.sin(theta), math.cos(theta)
    radius = int(math.ceil((length + width) / 2.0)) + 1
    coords = np.arange(-radius, radius + 1, dtype=np.float32)
    y, x = np.meshgrid(coords, coords, indexing="ij")
    along = x * along_x + y * along_y  # position along the streak
    across = np.abs(-x * along_y + y * along_x)  # distance from its axis
    half_length = length / 2.0
    # Coverage of a pixel by a bar of the given width/length (a one-pixel linear ramp at each edge).
    across_cover = np.clip(width / 2.0 + 0.5 - across, 0.0, 1.0)
    along_cover = np.clip(half_length + 0.5 - np.abs(along), 0.0, 1.0)
    kernel = across_cover * along_cover
    if taper:
        profile = np.sqrt(np.clip(1.0 - (along / (half_length + 0.5)) ** 2, 0.0, 1.0))
        kernel = kernel * profile
    return kernel.astype(np.float32)


def screen(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Screen-blend ``layer`` (values in [0, 1]) over ``base``: ``base + layer * (1 - base)``.

    Light adds to light: the result is never darker than ``base`` and never above 1 when both
    inputs are in [0, 1], which is how rain streaks and snow flakes look over a scene.
    """
    return (base + layer * (1.0 - base)).astype(np.float32)
