"""Training data: folders of photos, soft labels, paired folders, and the per-iteration batches.

Batches are a pure function of ``(seed, iteration, rank)``: batch ``t`` draws its photos,
crop positions and flips from a generator seeded with those three numbers. So a resumed run
sees exactly the batches an uninterrupted run would, worker processes need no coordination,
and each rank of a multi-process run draws different data.

Bad files are handled in two places. At load, every file is decoded once: an unreadable one
is reported by path and reason and left out (``on_bad_image: skip``) or stops the run
(``stop``), and a crop larger than every image is a config error. During training (when
photos are re-read from disk, ``in_memory: false``) a file that has become unreadable is
reported and another photo drawn in its place; since the replacement is drawn from the same
generator, the batches stay a pure function of the iteration. What a batch had to skip
travels with the batch (see :func:`unpack_batch`), so it reaches the main process even from a
data-loader worker.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, ImageReadError, RestorekitError
from ..filters.cache import SoftLabelCache, content_digest
from .io import decode_image, downscale_long_side, list_images, read_bytes, shown_path

__all__ = [
    "Photo",
    "PhotoSet",
    "SkipReport",
    "paired_files",
    "PairedSet",
    "UnpairedBatches",
    "PairedBatches",
    "random_crop",
    "unpack_batch",
    "skip_summary",
    "ignore_stop_signals",
]

log = logging.getLogger("restorekit")

RAIN_DIR, GT_DIR = "rain", "gt"

#: Batch key of the notes a batch carries (files skipped while making it, or the error that
#: stopped it); :func:`unpack_batch` removes it before the batch reaches a method.
NOTES_KEY = "_notes"


@dataclass
class SkipReport:
    """Files left out of a data set, with the reason for each."""

    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: object, reason: str) -> None:
        self.skipped.append((shown_path(str(path)), reason))

    def __len__(self) -> int:
        return len(self.skipped)

    def __contains__(self, path: object) -> bool:
        shown = shown_path(str(path))
        return any(p == shown for p, _ in self.skipped)

    def summary(self) -> str:
        return f"{len(self.skipped)} file(s) skipped" + "".join(f"\n  {p}: {r}" for p, r in self.skipped[:20]) + (
            f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
        )


def skip_summary(reports: dict[str, SkipReport]) -> str:
    """One line for the end of a run: how many files were skipped in all, and where."""
    total = sum(len(r) for r in reports.values())
    if not total:
        return "data: no file was skipped"
    parts = ", ".join(f"{name}: {len(r)}" for name, r in reports.items() if len(r))
    return f"data: {total} file(s) skipped in all ({parts}); each is listed above and in train.log"


@dataclass
class Photo:
    """One training photo: where it is, its size, and (in memory mode) its pixels and soft label."""

    path: Path
    height: int
    width: int
    image: np.ndarray | None = None
    label: np.ndarray | None = None


def _decode(path: Path, max_side: int | None = None) -> tuple[np.ndarray, str]:
    """Pixels and cache key of a file; with ``max_side``, shrunk to that long side first (and keyed so)."""
    data = read_bytes(path)
    image, digest = decode_image(data, shown_path(path)), content_digest(data)
    if max_side is not None and max(image.shape[:2]) > max_side:
        image, digest = downscale_long_side(image, max_side), f"{digest}-side{max_side}"
    return image, digest


def _crop_too_large(crop_size: int, folder: Path, sizes: list[tuple[int, int]]) -> ConfigError:
    """The config error for a crop larger than every image (``sizes`` are ``(width, height)``)."""
    width, height = max(sizes, key=lambda wh: min(wh))
    return ConfigError(
        f"{crop_size} is larger than every image in {shown_path(folder)} ({len(sizes)} image(s); the largest "
        f"is {width}×{height}, whose shorter side is {min(width, height)}); set data.crop_size to at most "
        f"{min(width, height)}, or use larger images",
        path="data.crop_size",
    )


class PhotoSet:
    """The usable photos of a folder, decoded once (all files are checked up front).

    Loading runs in two passes: every file is decoded and checked, then (for degraded photos)
    soft labels are computed. So a crop larger than every image fails before the expensive
    filtering starts.

    Args:
        folder: folder searched recursively for images.
        crop_size: crops drawn from these photos; smaller photos are padded or skipped.
        small_images: ``"pad"`` (reflect-pad at crop time) or ``"skip"``.
        on_bad_image: ``"skip"`` reports and leaves out unreadable files; ``"stop"`` raises.
            The same applies to a file that becomes unreadable during training.
        in_memory: keep decoded pixels (and labels); otherwise re-read files per crop.
        label_cache: computes (or recalls) each photo's soft label; ``None`` for clean photos.
        threads: decoding and filtering threads (OpenCV releases the GIL).
        progress: called with ``(stage, done, total)`` while loading; ``stage`` is
            ``"photos"`` (decoding) or ``"soft labels"``.
        max_side: shrink photos whose long side exceeds it to that side (area average) as
            they are decoded, before soft labels and crops, so label and crop stay aligned.

    Raises:
        DataError: no file of the folder is usable.
        ConfigError: ``crop_size`` is larger than every image (key ``data.crop_size``).
        ImageReadError: a bad file, with ``on_bad_image="stop"``.
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
        progress: Callable[[str, int, int], None] | None = None,
        max_side: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.max_side = max_side
        self.crop_size = crop_size
        self.on_bad_image = on_bad_image
        self.in_memory = in_memory
        self.label_cache = label_cache
        self.report = SkipReport()
        #: Indices of photos that became unreadable during training (in this process).
        self.failed: set[int] = set()
        unreadable: list[Path] = []
        files = list_images(self.folder, unreadable=unreadable)
        for blocked in unreadable:
            if on_bad_image == "stop":
                raise DataError(f"{shown_path(blocked)}: cannot list this folder (permission denied)")
            self.report.add(blocked, "folder cannot be listed (permission denied); its photos are left out")
        decoded: list[tuple[np.ndarray | None, str, int, int] | None] = [None] * len(files)

        def read(index: int) -> None:
            try:
                image, digest = _decode(files[index], max_side)
            except ImageReadError as exc:
                if on_bad_image == "stop":
                    raise
                self.report.add(exc.path, exc.reason)
                return
            h, w = image.shape[:2]
            decoded[index] = (image if in_memory else None, digest, h, w)

        self._run(read, len(files), "photos", threads, progress)
        self.report.skipped.sort()  # threads finish in any order; report in path order
        sizes = [(entry[3], entry[2]) for entry in decoded if entry is not None]
        if not sizes:
            raise DataError(
                f"{shown_path(self.folder)}: none of the {len(files)} image file(s) is usable. {self.report.summary()}"
            )
        if all(min(w, h) < crop_size for w, h in sizes):
            raise _crop_too_large(crop_size, self.folder, sizes)

        keep: list[int] = []
        for index, entry in enumerate(decoded):
            if entry is None:
                continue
            h, w = entry[2], entry[3]
            if min(h, w) < crop_size and small_images == "skip":
                reason = f"{w}×{h} is smaller than the {crop_size}-pixel crop (small_images: skip)"
                self.report.add(files[index], reason)
                continue
            keep.append(index)

        photos: dict[int, Photo] = {}

        def label(index: int) -> None:
            image, digest, h, w = decoded[index]  # type: ignore[misc]
            value = None
            if label_cache is not None:
                if image is None:  # not kept in memory: read again (the label is cached for later)
                    try:
                        image, digest = _decode(files[index], max_side)
                    except ImageReadError as exc:
                        if on_bad_image == "stop":
                            raise
                        self.report.add(exc.path, exc.reason)
                        return
                value = label_cache.get(image, digest)
            photos[index] = Photo(files[index], h, w, image if in_memory else None, value if in_memory else None)
            decoded[index] = None  # the Photo holds what is kept

        self._run(label, len(keep), "soft labels" if label_cache is not None else None, threads, progress, keep)
        self.photos = [photos[i] for i in keep if i in photos]
        self.report.skipped.sort()  # threads finish in any order; report in path order
        if not self.photos:
            raise DataError(
                f"{shown_path(self.folder)}: none of the {len(files)} image file(s) is usable. {self.report.summary()}"
            )

    @staticmethod
    def _run(
        work: Callable[[int], None],
        total: int,
        stage: str | None,
        threads: int,
        progress: Callable[[str, int, int], None] | None,
        indices: list[int] | None = None,
    ) -> None:
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for _ in pool.map(work, indices if indices is not None else range(total)):
                done += 1
                if progress is not None and stage is not None:
                    progress(stage, done, total)

    def __len__(self) -> int:
        return len(self.photos)

    def pixels(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The photo's pixels and soft label (read from disk when not kept in memory)."""
        photo = self.photos[index]
        if photo.image is not None:
            return photo.image, photo.label
        image, digest = _decode(photo.path, self.max_side)
        label = self.label_cache.get(image, digest) if self.label_cache is not None else None
        return image, label

    def draw(
        self, rng: np.random.Generator, skipped: list[tuple[str, str]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A random photo's pixels and label; one that has become unreadable is reported (added
        to ``skipped``) and another drawn from the same generator, so the draws stay reproducible.

        Raises:
            ImageReadError: a photo cannot be read and ``on_bad_image`` is ``"stop"``.
            DataError: every photo of the set has become unreadable.
        """
        while True:
            index = int(rng.integers(len(self.photos)))
            if index in self.failed:
                continue  # known bad: the draw is spent exactly as a failed read would spend it
            try:
                return self.pixels(index)
            except ImageReadError as exc:
                if self.on_bad_image == "stop":
                    raise ImageReadError(exc.path, f"{exc.reason} (it was readable when training started)") from None
                self.failed.add(index)
                skipped.append((exc.path, f"unreadable during training: {exc.reason}"))
                log.warning("skipped %s: %s (drawing another photo)", exc.path, exc.reason)
                if len(self.failed) == len(self.photos):
                    raise DataError(
                        f"{shown_path(self.folder)}: all {len(self.photos)} photo(s) have become unreadable during "
                        f"training (the last: {exc}); is the drive still mounted?"
                    ) from None


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
                degraded, _ = _decode(rain_path)
                clean, _ = _decode(gt_path)
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
            raise _crop_too_large(crop_size, self.folder, [(c.shape[1], c.shape[0]) for *_, c in decoded])
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


def _pack_notes(notes: dict) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(notes).encode("utf-8")), dtype=torch.uint8)


def unpack_batch(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """Split a batch from a batch source into its tensors and the files skipped to make it.

    Call it in the main process on each batch the data loader yields. An error that stopped
    the batch (in a worker process too) is raised here, as the error it was, with its message.

    Raises:
        DataError: the batch could not be made (all photos unreadable, or a file turned bad
            with ``on_bad_image: stop``).
    """
    packed = batch.pop(NOTES_KEY, None)
    if packed is None:
        return batch, []
    notes = json.loads(bytes(packed.cpu().numpy()).decode("utf-8"))
    if "error" in notes:
        raise DataError(notes["error"])
    return batch, [(path, reason) for path, reason in notes.get("skipped", [])]


def ignore_stop_signals(worker_id: int = 0) -> None:
    """``worker_init_fn`` for data-loader workers: leave SIGINT and SIGTERM to the main process.

    A Ctrl-C (or a scheduler's SIGTERM) reaches every process of the group. A worker that died
    of it would make the main process fail with a broken pipe instead of finishing its
    iteration and writing a checkpoint; the main process shuts the workers down itself.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _Batches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``t`` is the whole batch of iteration ``t``.

    Subclasses implement ``_batch(t, skipped)``. Items carry notes (see :func:`unpack_batch`)
    rather than raise, since an exception raised in a worker reaches the main process wrapped
    in a traceback.
    """

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

    def _batch(self, t: int, skipped: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, t: int) -> dict[str, torch.Tensor]:
        skipped: list[tuple[str, str]] = []
        try:
            batch = self._batch(t, skipped)
        except RestorekitError as exc:
            return {NOTES_KEY: _pack_notes({"error": str(exc), "skipped": skipped})}
        if skipped:
            batch[NOTES_KEY] = _pack_notes({"skipped": skipped})
        return batch


class UnpairedBatches(_Batches):
    """Batches for distillation: degraded crops with their soft-label crops, and unrelated clean crops."""

    def __init__(self, degraded: PhotoSet, clean: PhotoSet, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.degraded = degraded
        self.clean = clean

    def _batch(self, t: int, skipped: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        rng = self.rng(t)
        xs, labels, cs = [], [], []
        for _ in range(self.batch_size):
            image, label = self.degraded.draw(rng, skipped)
            x, y = random_crop([image, label], self.crop_size, rng, self.flip)
            clean, _ = self.clean.draw(rng, skipped)
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

    def _batch(self, t: int, skipped: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        rng = self.rng(t)
        xs, ys = [], []
        for _ in range(self.batch_size):
            _, degraded, clean = self.pairs.pairs[int(rng.integers(len(self.pairs)))]
            x, y = random_crop([degraded, clean], self.crop_size, rng, self.flip)
            xs.append(x)
            ys.append(y)
        return {"degraded": _stack(xs), "target": _stack(ys)}
