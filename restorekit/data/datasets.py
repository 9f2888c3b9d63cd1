"""Training data: folders of photos, soft labels, paired folders, and the per-iteration batches.

Batches are a pure function of ``(seed, iteration, rank)``: batch ``t`` draws its photos,
crop positions and flips from a generator seeded with those three numbers. So a resumed run
sees exactly the batches an uninterrupted run would, worker processes need no coordination,
and each rank of a multi-process run draws different data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, ImageReadError
from ..filters.cache import SoftLabelCache, content_digest
from .io import decode_image, list_images, read_bytes

__all__ = [
    "Photo",
    "PhotoSet",
    "SkipReport",
    "paired_files",
    "PairedSet",
    "UnpairedBatches",
    "PairedBatches",
    "random_crop",
]

log = logging.getLogger("restorekit")

RAIN_DIR, GT_DIR = "rain", "gt"


@dataclass
class SkipReport:
    """Files left out of a data set, with the reason for each."""

    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: object, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        return f"{len(self.skipped)} file(s) skipped" + "".join(f"\n  {p}: {r}" for p, r in self.skipped[:20]) + (
            f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
        )


@dataclass
class Photo:
    """One training photo: where it is, its size, and (in memory mode) its pixels and soft label."""

    path: Path
    height: int
    width: int
    image: np.ndarray | None = None
    label: np.ndarray | None = None


def _decode(path: Path) -> tuple[np.ndarray, str]:
    data = read_bytes(path)
    return decode_image(data, path), content_digest(data)


class PhotoSet:
    """The usable photos of a folder, decoded once (all files are checked up front).

    Args:
        folder: folder searched recursively for images.
        crop_size: crops drawn from these photos; smaller photos are padded or skipped.
        small_images: ``"pad"`` (reflect-pad at crop time) or ``"skip"``.
        on_bad_image: ``"skip"`` reports and leaves out unreadable files; ``"stop"`` raises.
        in_memory: keep decoded pixels (and labels); otherwise re-read files per crop.
        label_cache: computes (or recalls) each photo's soft label; ``None`` for clean photos.
        threads: decoding and filtering threads (OpenCV releases the GIL).
        progress: called with ``(done, total)`` while loading.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        crop_size: int,
        small_images: str = "pad",
        on_bad_image: str = "skip",
        in_memory: bool = True,
        label_cache: SoftLabelCache | None = None,
        threads: int = 2,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.crop_size = crop_size
        self.in_memory = in_memory
        self.label_cache = label_cache
        self.report = SkipReport()
        files = list_images(self.folder)
        photos: list[Photo | None] = [None] * len(files)

        def load(index: int) -> None:
            path = files[index]
            try:
                image, digest = _decode(path)
            except ImageReadError as exc:
                if on_bad_image == "stop":
                    raise
                self.report.add(path, exc.reason)
                return
            h, w = image.shape[:2]
            if min(h, w) < crop_size and small_images == "skip":
                self.report.add(path, f"{w}×{h} is smaller than the {crop_size}-pixel crop (small_images: skip)")
                return
            label = label_cache.get(image, digest) if label_cache is not None else None
            photos[index] = Photo(path, h, w, image if in_memory else None, label if in_memory else None)

        done = 0
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for _ in pool.map(load, range(len(files))):
                done += 1
                if progress is not None:
                    progress(done, len(files))
        self.photos = [p for p in photos if p is not None]
        if not self.photos:
            raise DataError(f"{self.folder}: none of the {len(files)} image file(s) is usable. {self.report.summary()}")

    def __len__(self) -> int:
        return len(self.photos)

    def pixels(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The photo's pixels and soft label (read from disk when not kept in memory)."""
        photo = self.photos[index]
        if photo.image is not None:
            return photo.image, photo.label
        image, digest = _decode(photo.path)
        label = self.label_cache.get(image, digest) if self.label_cache is not None else None
        return image, label


def paired_files(folder: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, degraded_path, clean_path)`` for a paired folder with ``rain/`` and ``gt/`` subfolders.

    Files are matched by their path relative to each subfolder, without the extension. Names
    present on one side only are all listed in one error.
    """
    root = Path(folder).expanduser()
    rain_dir, gt_dir = root / RAIN_DIR, root / GT_DIR
    missing = [d.name + "/" for d in (rain_dir, gt_dir) if not d.is_dir()]
    if missing:
        raise DataError(
            f"{root}: a paired folder needs '{RAIN_DIR}/' (degraded) and '{GT_DIR}/' (clean) subfolders "
            f"with matching file names; missing: {', '.join(missing)}"
        )

    def by_name(d: Path) -> dict[str, Path]:
        return {p.relative_to(d).with_suffix("").as_posix(): p for p in list_images(d)}

    rain, gt = by_name(rain_dir), by_name(gt_dir)
    only_rain, only_gt = sorted(rain.keys() - gt.keys()), sorted(gt.keys() - rain.keys())
    if only_rain or only_gt:
        lines = []
        if only_rain:
            lines.append(f"only in {RAIN_DIR}/ ({len(only_rain)}): " + ", ".join(only_rain[:30]))
        if only_gt:
            lines.append(f"only in {GT_DIR}/ ({len(only_gt)}): " + ", ".join(only_gt[:30]))
        raise DataError(f"{root}: unmatched file names; " + "; ".join(lines))
    return [(name, rain[name], gt[name]) for name in sorted(rain)]


class PairedSet:
    """Decoded (degraded, clean) pairs of a paired folder; bad or mismatched pairs are reported.

    Args:
        folder: folder with ``rain/`` and ``gt/``.
        on_bad_image: ``"skip"`` or ``"stop"``.
        crop_size: when given, pairs smaller than it are padded at crop time or skipped.
        small_images: ``"pad"`` or ``"skip"``.
        limit: keep at most this many pairs (in name order).
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
        self.pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
        for name, rain_path, gt_path in paired_files(folder)[:limit]:
            try:
                degraded, _ = _decode(rain_path)
                clean, _ = _decode(gt_path)
            except ImageReadError as exc:
                if on_bad_image == "stop":
                    raise
                self.report.add(exc.path, exc.reason)
                continue
            if degraded.shape != clean.shape:
                reason = f"degraded {degraded.shape[1]}×{degraded.shape[0]} and clean {clean.shape[1]}×{clean.shape[0]} differ in size"
                if on_bad_image == "stop":
                    raise DataError(f"{rain_path}: {reason}")
                self.report.add(rain_path, reason)
                continue
            if crop_size is not None and min(clean.shape[:2]) < crop_size and small_images == "skip":
                self.report.add(rain_path, f"smaller than the {crop_size}-pixel crop (small_images: skip)")
                continue
            self.pairs.append((name, degraded, clean))
        if not self.pairs:
            raise DataError(f"{self.folder}: no usable pair. {self.report.summary()}")

    def __len__(self) -> int:
        return len(self.pairs)


def random_crop(
    images: Sequence[np.ndarray | None], size: int, rng: np.random.Generator, flip: bool
) -> list[np.ndarray | None]:
    """The same random ``size``×``size`` crop (and flips) of each same-sized image; ``None`` passes through.

    Images smaller than the crop are first padded by symmetric reflection.
    """
    ref = next(im for im in images if im is not None)
    h, w = ref.shape[:2]
    pad_h, pad_w = max(0, size - h), max(0, size - w)
    top = int(rng.integers(0, max(h, size) - size + 1))
    left = int(rng.integers(0, max(w, size) - size + 1))
    flip_v = bool(flip and rng.random() < 0.5)
    flip_h = bool(flip and rng.random() < 0.5)
    out: list[np.ndarray | None] = []
    for im in images:
        if im is None:
            out.append(None)
            continue
        if pad_h or pad_w:
            im = np.pad(im, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
        crop = im[top : top + size, left : left + size]
        if flip_v:
            crop = crop[::-1]
        if flip_h:
            crop = crop[:, ::-1]
        out.append(crop)
    return out


def _stack(crops: list[np.ndarray]) -> torch.Tensor:
    """N×3×H×W uint8 tensor (converted to float on the training device, 4× less to copy)."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops))).permute(0, 3, 1, 2)


class _Batches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``t`` is the whole batch of iteration ``t``."""

    def __init__(self, crop_size: int, batch_size: int, flip: bool, seed: int, rank: int = 0) -> None:
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.flip = flip
        self.seed = seed
        self.rank = rank

    def rng(self, t: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, t, self.rank])

    def __len__(self) -> int:  # batches are indexed by iteration; the sampler bounds them
        return 2**62


class UnpairedBatches(_Batches):
    """Batches for distillation: degraded crops with their soft-label crops, and unrelated clean crops."""

    def __init__(self, degraded: PhotoSet, clean: PhotoSet, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.degraded = degraded
        self.clean = clean

    def __getitem__(self, t: int) -> dict[str, torch.Tensor]:
        rng = self.rng(t)
        xs, labels, cs = [], [], []
        for _ in range(self.batch_size):
            image, label = self.degraded.pixels(int(rng.integers(len(self.degraded))))
            x, y = random_crop([image, label], self.crop_size, rng, self.flip)
            clean, _ = self.clean.pixels(int(rng.integers(len(self.clean))))
            (c,) = random_crop([clean], self.crop_size, rng, self.flip)
            xs.append(x)
            labels.append(y)
            cs.append(c)
        return {"degraded": _stack(xs), "soft_label": _stack(labels), "clean": _stack(cs)}


class PairedBatches(_Batches):
    """Batches for supervised training: aligned crops of degraded and clean images."""

    def __init__(self, pairs: PairedSet, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pairs = pairs

    def __getitem__(self, t: int) -> dict[str, torch.Tensor]:
        rng = self.rng(t)
        xs, ys = [], []
        for _ in range(self.batch_size):
            _, degraded, clean = self.pairs.pairs[int(rng.integers(len(self.pairs)))]
            x, y = random_crop([degraded, clean], self.crop_size, rng, self.flip)
            xs.append(x)
            ys.append(y)
        return {"degraded": _stack(xs), "target": _stack(ys)}
