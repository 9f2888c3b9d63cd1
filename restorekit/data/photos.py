"""Folders of training photos: decoded and checked once, with a soft label per photo when asked.

Bad files are handled in two places. At load, every file is decoded once: an unreadable one
is reported by path and reason and left out (``on_bad_image: skip``) or stops the run
(``stop``), and a crop larger than every image is an error naming ``data.crop_size``. During
training (when photos are re-read from disk, ``in_memory: false``) a file that has become
unreadable is reported and another photo drawn in its place (:meth:`PhotoSet.draw`); since the
replacement is drawn from the same generator, the draws stay a pure function of the iteration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import DataError, ImageReadError
from .io import (
    content_digest,
    decode_image,
    downscale_long_side,
    list_images,
    read_bytes,
    shown_path,
)
from .report import SkipReport, crop_too_large

__all__ = ["Photo", "PhotoSet", "LabelSource", "decode_file"]

log = logging.getLogger("restorekit")


class LabelSource(Protocol):
    """Computes (or recalls) the soft label of a photo from its pixels and the digest of its file."""

    def get(self, image: np.ndarray, digest: str) -> np.ndarray: ...


def decode_file(path: Path, max_side: int | None = None) -> tuple[np.ndarray, str]:
    """A photo's pixels and the digest of its file's bytes (its cache key); with ``max_side``,
    shrunk to that long side first (and keyed so: a shrunk photo has a soft label of its own)."""
    data = read_bytes(path)
    image, digest = decode_image(data, shown_path(path)), content_digest(data)
    if max_side is not None and max(image.shape[:2]) > max_side:
        image, digest = downscale_long_side(image, max_side), f"{digest}-side{max_side}"
    return image, digest


@dataclass
class Photo:
    """One training photo: where it is, its size, and (in memory mode) its pixels and soft label."""

    path: Path
    height: int
    width: int
    image: np.ndarray | None = None
    label: np.ndarray | None = None


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
        label_cache: computes (or recalls) each photo's soft label; ``None`` for clean photos
            (the ``dt`` method passes its soft-label cache).
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
        label_cache: LabelSource | None = None,
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

        def decode(index: int) -> tuple[np.ndarray, str] | None:
            """The file's pixels and digest; a bad file is reported and skipped (or, with ``stop``, raised)."""
            try:
                return decode_file(files[index], max_side)
            except ImageReadError as exc:
                if on_bad_image == "stop":
                    raise
                self.report.add(exc.path, exc.reason)
                return None

        def read(index: int) -> None:
            decoded_file = decode(index)
            if decoded_file is None:
                return
            image, digest = decoded_file
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
            raise crop_too_large(crop_size, self.folder, sizes)

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
                    decoded_file = decode(index)
                    if decoded_file is None:
                        return
                    image, digest = decoded_file
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
        image, digest = decode_file(photo.path, self.max_side)
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
