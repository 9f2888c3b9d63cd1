"""Helpers for tests (restorekit's own and plugins'): tiny synthetic photos and data folders.

Nothing here reads the network or bundled photos: textures are drawn from a seeded generator,
so tests are fast, offline and deterministic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .data.io import write_image

__all__ = ["make_photo", "make_unpaired_folders", "make_paired_folder", "write_tiny_config"]


def make_photo(seed: int, height: int = 48, width: int = 48) -> np.ndarray:
    """A smooth, colourful H×W×3 uint8 image with some edges (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    # A few hard-edged rectangles: detail that a blurring filter destroys.
    for _ in range(3):
        y0, x0 = int(rng.integers(0, height - 4)), int(rng.integers(0, width - 4))
        y1, x1 = y0 + int(rng.integers(3, max(4, height // 3))), x0 + int(rng.integers(3, max(4, width // 3)))
        image[y0:y1, x0:x1] = rng.uniform(0, 255, size=3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _rain(image: np.ndarray, seed: int) -> np.ndarray:
    from .registries import SYNTHESIZERS

    return SYNTHESIZERS.build({"type": "rain"})(image, seed)


def make_unpaired_folders(root: str | Path, n_rainy: int = 4, n_clean: int = 4, size: int = 48) -> tuple[Path, Path]:
    """``root/rainy`` (rain rendered on synthetic photos) and ``root/clean`` (other photos)."""
    root = Path(root)
    for i in range(n_rainy):
        write_image(root / "rainy" / f"r{i:03d}.png", _rain(make_photo(100 + i, size, size), seed=i))
    for i in range(n_clean):
        write_image(root / "clean" / f"c{i:03d}.png", make_photo(200 + i, size, size))
    return root / "rainy", root / "clean"


def make_paired_folder(root: str | Path, n: int = 3, size: int = 48) -> Path:
    """``root/rain`` and ``root/gt`` with matching names, rain rendered on synthetic photos."""
    root = Path(root)
    for i in range(n):
        clean = make_photo(300 + i, size, size)
        write_image(root / "gt" / f"p{i:03d}.png", clean)
        write_image(root / "rain" / f"p{i:03d}.png", _rain(clean, seed=50 + i))
    return root


def write_tiny_config(path: str | Path, rainy: str | Path, clean: str | Path, *, eval: str = "{data: null}",
                      **train: object) -> Path:
    """A dt config of a 2-block, 4-channel hagg on 32² crops that trains in seconds on a CPU.

    ``train`` overrides the train section (default: 6 iterations, a checkpoint every 2, a log
    line every iteration, no sample grids); ``eval`` is the eval section as flow YAML.
    """
    settings = {"iters": 6, "checkpoint_every": 2, "log_every": 1, "sample_every": 0, **train}
    path = Path(path)
    path.write_text(
        "method: dt\n"
        "backbone: {type: hagg, channels: 4, num_blocks: 2}\n"
        "dt: {soft_label: {type: median, kernel_size: 3}}\n"
        f"data: {{rainy: '{rainy}', clean: '{clean}', crop_size: 32, batch_size: 2}}\n"
        "train: {" + ", ".join(f"{k}: {v}" for k, v in settings.items()) + "}\n"
        f"eval: {eval}\n"
        "runtime: {device: cpu, threads: 1}\n",
        encoding="utf-8",
    )
    return path
