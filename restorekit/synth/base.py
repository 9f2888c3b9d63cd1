"""The interface of degradation synthesizers."""

from __future__ import annotations

import numpy as np

__all__ = ["Synthesizer", "as_generator"]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy generator from a seed (or the generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class Synthesizer:
    """Turns a clean photo into a degraded one; together they form a (degraded, clean) pair.

    Subclasses implement :meth:`degrade_float`. The same seed gives the same degradation.
    """

    def degrade_float(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade ``clean`` (H×W×3 float32 in [0, 1]); return float32, not necessarily clipped."""
        raise NotImplementedError

    def __call__(self, clean: np.ndarray, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """Degrade an H×W×3 uint8 RGB photo; return the degraded photo as uint8 RGB."""
        if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {clean.dtype} {clean.shape}")
        out = self.degrade_float(clean.astype(np.float32) / 255.0, as_generator(seed))
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)

    def pair(self, clean: np.ndarray, seed: int | np.random.Generator | None = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(degraded, clean)`` for a clean uint8 RGB photo."""
        return self(clean, seed), clean
