"""Paired folders: ``rain/`` (degraded) and ``gt/`` (clean) with matching file names.

They hold the held-out pairs that every run is scored on, and the training pairs of the
supervised method. Names present on one side only, two files sharing a name on one side,
unreadable files and pairs of different sizes are all reported, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, ImageReadError
from .io import list_images, shown_path
from .photos import decode_file
from .report import SkipReport, crop_too_large

__all__ = ["RAIN_DIR", "GT_DIR", "paired_files", "PairedSet"]

RAIN_DIR, GT_DIR = "rain", "gt"


def paired_files(folder: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, degraded_path, clean_path)`` for a paired folder with ``rain/`` and ``gt/`` subfolders.

    Files are matched by their path relative to each subfolder, without the extension. Names
    present on one side only are all listed in one error, as are names that two files of one
    side share (``a.png`` and ``a.jpg``: which one is meant?).
    """
    root = Path(folder).expanduser()
    shown = shown_path(root)
    rain_dir, gt_dir = root / RAIN_DIR, root / GT_DIR
    missing = [d.name + "/" for d in (rain_dir, gt_dir) if not d.is_dir()]
    if missing:
        raise DataError(
            f"{shown}: a paired folder needs '{RAIN_DIR}/' (degraded) and '{GT_DIR}/' (clean) subfolders "
            f"with matching file names; missing: {', '.join(missing)}"
        )

    problems: list[str] = []

    def by_name(d: Path) -> dict[str, Path]:
        named: dict[str, list[Path]] = {}
        unreadable: list[Path] = []
        for p in list_images(d, unreadable=unreadable):
            named.setdefault(shown_path(p.relative_to(d).with_suffix("").as_posix()), []).append(p)
        clashes = sorted(name for name, paths in named.items() if len(paths) > 1)
        if clashes:
            problems.append(
                f"in {d.name}/, several files share a name ({len(clashes)}): "
                + ", ".join(f"{n} ({', '.join(p.suffix for p in named[n])})" for n in clashes[:30])
            )
        if unreadable:
            problems.append(
                f"in {d.name}/, {len(unreadable)} subfolder(s) cannot be listed (permission denied): "
                + ", ".join(shown_path(b) for b in unreadable[:10])
            )
        return {name: paths[0] for name, paths in named.items()}

    rain, gt = by_name(rain_dir), by_name(gt_dir)
    only_rain, only_gt = sorted(rain.keys() - gt.keys()), sorted(gt.keys() - rain.keys())
    if only_rain:
        more = f" ... and {len(only_rain) - 30} more" if len(only_rain) > 30 else ""
        problems.append(f"only in {RAIN_DIR}/ ({len(only_rain)}): " + ", ".join(only_rain[:30]) + more)
    if only_gt:
        more = f" ... and {len(only_gt) - 30} more" if len(only_gt) > 30 else ""
        problems.append(f"only in {GT_DIR}/ ({len(only_gt)}): " + ", ".join(only_gt[:30]) + more)
    if problems:
        raise DataError(f"{shown}: unmatched file names; " + "; ".join(problems))
    return [(name, rain[name], gt[name]) for name in sorted(rain)]


class PairedSet:
    """Decoded (degraded, clean) pairs of a paired folder; bad or mismatched pairs are reported.

    Args:
        folder: folder with ``rain/`` and ``gt/``.
        on_bad_image: ``"skip"`` or ``"stop"``.
        crop_size: when given, pairs smaller than it are padded at crop time or skipped.
        small_images: ``"pad"`` or ``"skip"``.
        limit: keep at most this many pairs (in name order).

    Raises:
        DataError: the folder's layout or names do not match, or no pair is usable.
        ConfigError: ``crop_size`` is larger than every pair (key ``data.crop_size``).
        ImageReadError: a bad file, with ``on_bad_image="stop"``.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        on_bad_image: str = "skip",
        crop_size: int | None = None,
        small_images: str = "pad",
        limit: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.report = SkipReport()
        decoded: list[tuple[str, Path, np.ndarray, np.ndarray]] = []
        for name, rain_path, gt_path in paired_files(folder)[:limit]:
            try:
                degraded, _ = decode_file(rain_path)
                clean, _ = decode_file(gt_path)
            except ImageReadError as exc:
                if on_bad_image == "stop":
                    raise
                self.report.add(exc.path, exc.reason)
                continue
            if degraded.shape != clean.shape:
                reason = (
                    f"degraded {degraded.shape[1]}×{degraded.shape[0]} and clean "
                    f"{clean.shape[1]}×{clean.shape[0]} ({shown_path(gt_path)}) differ in size"
                )
                if on_bad_image == "stop":
                    raise DataError(f"{shown_path(rain_path)}: {reason}")
                self.report.add(rain_path, reason)
                continue
            decoded.append((name, rain_path, degraded, clean))
        if crop_size is not None and decoded and all(min(c.shape[:2]) < crop_size for *_, c in decoded):
            raise crop_too_large(crop_size, self.folder, [(c.shape[1], c.shape[0]) for *_, c in decoded])
        self.pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
        for name, rain_path, degraded, clean in decoded:
            if crop_size is not None and min(clean.shape[:2]) < crop_size and small_images == "skip":
                h, w = clean.shape[:2]
                self.report.add(rain_path, f"{w}×{h} is smaller than the {crop_size}-pixel crop (small_images: skip)")
                continue
            self.pairs.append((name, degraded, clean))
        if not self.pairs:
            raise DataError(f"{shown_path(self.folder)}: no usable pair. {self.report.summary()}")

    def __len__(self) -> int:
        return len(self.pairs)
