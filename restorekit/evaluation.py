"""Score restorations of paired data: per-image PSNR/SSIM (Y and RGB), means, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import _atomic
from .data.pairs import PairedSet
from .metrics import ImageScores, score_pair

__all__ = ["EvalResult", "evaluate", "results_table", "METRIC_KEYS"]

METRIC_KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "brightness")


@dataclass
class EvalResult:
    """Scores of one restoration method over a paired set."""

    label: str
    per_image: list[tuple[str, ImageScores]] = field(default_factory=list)

    @property
    def means(self) -> dict[str, float]:
        """Mean of each metric over the images (PSNR of identical pairs, ``inf``, is left out)."""
        out = {}
        for key in METRIC_KEYS:
            values = [getattr(s, key) for _, s in self.per_image if math.isfinite(getattr(s, key))]
            out[key] = float(np.mean(values)) if values else math.inf
        return out

    def write_csv(self, path: str | Path) -> None:
        """Per-image scores, one row per image (written atomically)."""
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(["image", *METRIC_KEYS])
        for name, scores in self.per_image:
            writer.writerow([name, *(f"{v:.6f}" for v in asdict(scores).values())])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic.write_text(path, text.getvalue())

    def write_json(self, path: str | Path) -> None:
        """The mean scores as JSON (written atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic.write_text(path, json.dumps(self.means, indent=2) + "\n")


def evaluate(
    pairs: PairedSet,
    restore: Callable[[np.ndarray], np.ndarray],
    label: str,
    *,
    on_image: Callable[[str, np.ndarray], None] | None = None,
) -> EvalResult:
    """Restore each degraded image with ``restore`` (uint8 RGB → uint8 RGB) and score it against its clean twin."""
    result = EvalResult(label)
    for name, degraded, clean in pairs.pairs:
        restored = restore(degraded)
        if on_image is not None:
            on_image(name, restored)
        result.per_image.append((name, score_pair(restored, clean)))
    return result


def results_table(results: list[EvalResult], title: str):
    """A rich table: one row per method, PSNR/SSIM on Y and RGB, and the brightness error in grey levels."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("method")
    table.add_column("PSNR-Y (dB)", justify="right")
    table.add_column("SSIM-Y", justify="right")
    table.add_column("PSNR-RGB (dB)", justify="right")
    table.add_column("SSIM-RGB", justify="right")
    table.add_column("brightness", justify="right")
    for result in results:
        m = result.means
        table.add_row(
            result.label, f"{m['psnr_y']:.2f}", f"{m['ssim_y']:.4f}", f"{m['psnr_rgb']:.2f}", f"{m['ssim_rgb']:.4f}",
            f"{m['brightness']:+.2f}",
        )
    return table
