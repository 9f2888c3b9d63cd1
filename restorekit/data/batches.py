"""Per-iteration batches: crops drawn by a generator seeded with ``(seed, iteration, rank)``.

Batch ``t`` draws its photos, crop positions and flips from a generator seeded with those three
numbers. So a resumed run sees exactly the batches an uninterrupted run would, data-loader
worker processes need no coordination, and each rank of a multi-process run draws different
data. What a batch had to skip travels with the batch (see :func:`unpack_batch`), so it
reaches the main process even from a worker.

:class:`IterationBatches` is the base of every batch source; the built-in ones are
:class:`UnpairedBatches` (degraded crops with their soft labels, and unrelated clean crops: what
distillation trains on), :class:`PairedBatches` (aligned crops of pairs: supervised training) and
:class:`SynthesizedPairBatches` (crops of clean photos degraded afresh each batch: supervised
training on a degradation model, as DnCNN is trained).
A method chooses the batch source it needs (see :mod:`restorekit.methods.base`).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import DataError, RestorekitError
from ..synth.base import Synthesizer
from .pairs import PairedSet
from .photos import PhotoSet

__all__ = [
    "IterationBatches",
    "UnpairedBatches",
    "PairedBatches",
    "SynthesizedPairBatches",
    "random_crop",
    "stack_crops",
    "unpack_batch",
    "ignore_stop_signals",
    "NOTES_KEY",
]

#: Batch key of the notes a batch carries (files skipped while making it, or the error that
#: stopped it); :func:`unpack_batch` removes it before the batch reaches a method.
NOTES_KEY = "_notes"


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


def stack_crops(crops: list[np.ndarray]) -> torch.Tensor:
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


class IterationBatches(torch.utils.data.Dataset):
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


class UnpairedBatches(IterationBatches):
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
        return {"degraded": stack_crops(xs), "soft_label": stack_crops(labels), "clean": stack_crops(cs)}


class PairedBatches(IterationBatches):
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
        return {"degraded": stack_crops(xs), "target": stack_crops(ys)}


class SynthesizedPairBatches(IterationBatches):
    """Batches for supervised training on a degradation model: clean crops, each degraded afresh.

    Every crop gets a new draw of the degradation (noise, and its strength when the
    synthesizer takes a range), from the batch's own generator: a fixed set of noisy pairs
    would be learnt noise pixel by noise pixel after a few dozen passes, fresh draws never
    repeat, and a resumed run still sees the batches an uninterrupted one would. The
    synthesizer degrades the crop, not the photo, so its scale is the crop's (right for
    pixel-wise noise; a rain synthesizer would draw streaks at crop scale).
    """

    def __init__(self, clean: PhotoSet, synthesizer: Synthesizer, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clean = clean
        self.synthesizer = synthesizer

    def _batch(self, t: int, skipped: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        rng = self.rng(t)
        xs, ys = [], []
        for _ in range(self.batch_size):
            clean, _ = self.clean.draw(rng, skipped)
            (y,) = random_crop([clean], self.crop_size, rng, self.flip)
            xs.append(self.synthesizer(y, rng))
            ys.append(y)
        return {"degraded": stack_crops(xs), "target": stack_crops(ys)}
