"""Restore whole photos with a trained backbone: fast modes, tiles for large images, folders.

Speed options (all off by default: fp32 eager on contiguous NCHW tensors is the reference
every other mode is compared against):

* ``channels_last``: NHWC tensors, the layout oneDNN's CPU convolutions are fastest in.
* ``precision="bf16"``: bfloat16 autocast (convolutions in bf16; the input, the final
  ``x - residual`` and anything the autocast policy keeps in fp32 stay fp32). Fast on CPUs
  with AVX-512 BF16 or AMX and on recent GPUs; elsewhere it is emulated and slow
  (:func:`restorekit.device.bf16_is_fast` tells).
* ``compile``: ``torch.compile`` with weight freezing, which lets Inductor fold the weights
  into constants, pre-pack them for oneDNN and fuse ReLU, additions and the like into the
  convolutions. The first image of each size pays the compilation (seconds to a minute); the
  compiled network is a snapshot of the weights at that moment.

Tiles (``tile=N``): the image is cut into cores of at most N×N pixels, each read with a margin
of the backbone's receptive radius (:mod:`restorekit.receptive_field`) on every side that is
not the image border; only the core of each restored window is kept. A kept pixel never sees
a window edge, so tiled and whole-image restoration agree to rounding, while memory holds one
window's activations instead of the whole image's. Windows are moved inwards at the image
border rather than shrunk, so every window of an image has the same shape (one compiled graph).
A tiled restore of a large photo holds the photo and its result as uint8 and one window's
activations, never a full-size float copy; ``tools/benchmark.py --only tiled`` measures the
peak memory on a machine.
"""

from __future__ import annotations

import collections
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .device import autocast, bf16_is_fast, compile_for_inference, resolve_precision
from .errors import TrainingError
from .models.contract import run_backbone

__all__ = ["NonFiniteOutputError", "Restorer", "to_tensor", "to_uint8", "plan_axis", "Window", "restore_files", "FileResult"]


class NonFiniteOutputError(TrainingError):
    """The network produced NaN or Inf values: what it returned is no image (a failure, exit status 1)."""


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 RGB → 1×3×H×W float in [0, 1].

    The result has channels-last strides (it is a view of the H×W×3 pixels); callers that
    want NCHW make it contiguous.
    """
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """1×3×H×W (or 3×H×W) float in [0, 1] → H×W×3 uint8 RGB, rounded."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    return tensor.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


# --------------------------------------------------------------------------- tiling
@dataclass(frozen=True)
class Window:
    """One tile along one axis: the core ``[start, stop)`` that is kept, read from ``[read_start, read_stop)``."""

    start: int
    stop: int
    read_start: int
    read_stop: int

    @property
    def core(self) -> slice:
        """The kept core, relative to the window that was read."""
        return slice(self.start - self.read_start, self.stop - self.read_start)


def plan_axis(size: int, tile: int, margin: int) -> list[Window]:
    """Cut ``[0, size)`` into cores of at most ``tile`` pixels, each read with ``margin`` pixels around it.

    Every window has the same length ``min(size, tile + 2 * margin)``: a window that would cross
    the image border is moved inwards, which only widens its margin on the other side. When
    one window would span the whole axis anyway, the axis is not cut.
    """
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    length = min(size, tile + 2 * margin)
    if length == size:
        return [Window(0, size, 0, size)]
    count = -(-size // tile)
    bounds = [round(i * size / count) for i in range(count + 1)]  # near-equal cores, none above tile
    windows = []
    for start, stop in itertools.pairwise(bounds):
        read_start = min(max(start - margin, 0), size - length)
        windows.append(Window(start, stop, read_start, read_start + length))
    return windows


class Restorer:
    """Apply a backbone to photos: ``restored = x - residual``, clamped and rounded.

    Args:
        backbone: a trained backbone (put in eval mode, and in channels-last format if asked).
        device: where to compute.
        precision: ``"fp32"`` (the reference), ``"bf16"`` autocast, or ``"auto"`` (bf16 where native).
        channels_last: use the channels-last memory format.
        compile: compile the backbone (with frozen weights) on first use.
        tile: restore in cores of at most this many pixels per side (``None``: whole images).
        margin: overlap of the tiles; default the backbone's measured receptive radius, which
            makes tiled output equal to whole-image output. A smaller margin trades exactness
            for speed.
    """

    def __init__(
        self,
        backbone: nn.Module,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        channels_last: bool = False,
        *,
        compile: bool = False,
        tile: int | None = None,
        margin: int | None = None,
    ) -> None:
        if tile is not None and tile < 1:
            raise ValueError(f"tile must be a positive number of pixels, got {tile}")
        self.device = torch.device(device)
        precision = resolve_precision(precision, self.device)
        self.precision = precision
        self.channels_last = channels_last
        self.tile = tile
        self._margin = margin
        if precision == "bf16" and not bf16_is_fast(self.device):
            warnings.warn(
                f"bf16 requested on {self.device}, which has no native bfloat16 arithmetic: it will be emulated "
                "and likely slower than fp32",
                stacklevel=2,
            )
        self.backbone = backbone.to(self.device).eval()
        if channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)
        self._network: Callable[[torch.Tensor], Any] = (
            compile_for_inference(self.backbone) if compile else self.backbone
        )

    @property
    def margin(self) -> int:
        """Overlap of the tiles in pixels (the receptive radius unless given), measured on first use."""
        if self._margin is None:
            from .receptive_field import receptive_radius

            self._margin = receptive_radius(self.backbone)
        return self._margin

    # ------------------------------------------------------------------ the network
    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pass over a whole N×3×H×W float batch → restored fp32, clamped to [0, 1]."""
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with autocast(self.device, self.precision):
            residual = run_backbone(self._network, x).residual
        if not torch.isfinite(residual).all():  # one check per pass: NaN would become black pixels
            raise NonFiniteOutputError(
                f"the network's output holds NaN or Inf values ({self.precision} on {self.device}, a "
                f"{x.shape[-1]}×{x.shape[-2]} image): its weights overflow here; try --precision fp32, or another model"
            )
        # The subtraction in fp32: a bf16 input would round the restored image to ~2 grey levels.
        return (x - residual.float()).clamp_(0.0, 1.0)

    def _plan(self, height: int, width: int) -> tuple[list[Window], list[Window]] | None:
        if self.tile is None or (height <= self.tile and width <= self.tile):
            return None
        margin = self.margin
        return plan_axis(height, self.tile, margin), plan_axis(width, self.tile, margin)

    @torch.inference_mode()
    def restore_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float in [0, 1] → restored float in [0, 1] (fp32), tile by tile if ``tile`` is set."""
        plan = self._plan(*x.shape[-2:])
        if plan is None:
            return self._forward(x.to(self.device))
        rows, cols = plan
        out = torch.empty(x.shape, dtype=torch.float32, device=self.device)
        for r in rows:
            for c in cols:
                window = x[..., r.read_start : r.read_stop, c.read_start : c.read_stop].to(self.device)
                out[..., r.start : r.stop, c.start : c.stop] = self._forward(window)[..., r.core, c.core]
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Restore one H×W×3 uint8 RGB photo.

        With tiles, only one window at a time is ever in floating point: a 4000×3000 photo
        costs its two uint8 copies (input and output) plus one window's activations.
        """
        plan = self._plan(*image.shape[:2])
        if plan is None:
            return to_uint8(self._forward(to_tensor(image, self.device)))
        rows, cols = plan
        out = np.empty_like(image)
        for r in rows:
            for c in cols:
                window = to_tensor(image[r.read_start : r.read_stop, c.read_start : c.read_stop], self.device)
                out[r.start : r.stop, c.start : c.stop] = to_uint8(self._forward(window)[..., r.core, c.core])
        return out


# --------------------------------------------------------------------------- folders
@dataclass
class FileResult:
    """What became of one file of a folder restore: its output path, or the error that stopped it."""

    source: Path
    target: Path
    error: Exception | None = None


def restore_files(
    restorer: Callable[[np.ndarray], np.ndarray],
    jobs: Iterable[tuple[Path, Path]],
    *,
    read: Callable[[Path], np.ndarray],
    write: Callable[[Path, np.ndarray], None],
    skip: tuple[type[Exception], ...] = (),
    lookahead: int = 2,
    on_image: Callable[[Path, np.ndarray, np.ndarray], None] | None = None,
) -> Iterator[FileResult]:
    """Restore ``(source, target)`` pairs with reading, computing and writing overlapped.

    A reader thread decodes up to ``lookahead`` images ahead of the network and a writer thread
    encodes finished ones behind it (OpenCV releases the GIL while it decodes and encodes), so
    the network waits for neither. At most ``lookahead`` images wait on either side, so memory
    stays bounded whatever the folder's size.

    Args:
        restorer: uint8 RGB → uint8 RGB (a :class:`Restorer`).
        jobs: source files and where their results go.
        read: reads a file as uint8 RGB.
        write: writes a uint8 RGB image.
        skip: exceptions of ``read`` that skip the file (reported in its result) instead of stopping.
        lookahead: images decoded ahead, and results waiting to be written, at most.
        on_image: called with each source path, its pixels and their restoration (a results
            report collects them: :class:`restorekit.report.RestoreReport`).

    Yields:
        One result per job, in order, once its output is written (or it was skipped).
    """
    jobs = list(jobs)
    with ThreadPoolExecutor(1, thread_name_prefix="restore-read") as readers, ThreadPoolExecutor(
        1, thread_name_prefix="restore-write"
    ) as writers:
        reads: collections.deque[Future[np.ndarray]] = collections.deque()
        writes: collections.deque[tuple[FileResult, Future[None] | None]] = collections.deque()
        upcoming = iter(jobs)

        def read_ahead() -> None:
            while len(reads) < lookahead:
                job = next(upcoming, None)
                if job is None:
                    return
                reads.append(readers.submit(read, job[0]))

        def finished(keep: int) -> Iterator[FileResult]:
            """Results whose writes are done, waiting for the oldest while more than ``keep`` are pending."""
            while writes and (len(writes) > keep or writes[0][1] is None or writes[0][1].done()):
                result, pending = writes.popleft()
                if pending is not None:
                    pending.result()  # a write error (disk full...) stops the run
                yield result

        read_ahead()
        for source, target in jobs:
            pending_read = reads.popleft()
            read_ahead()
            try:
                image = pending_read.result()
            except skip as exc:
                writes.append((FileResult(source, target, exc), None))
            else:
                restored = restorer(image)
                if on_image is not None:
                    on_image(source, image, restored)
                del image
                writes.append((FileResult(source, target), writers.submit(write, target, restored)))
            yield from finished(keep=lookahead)
        yield from finished(keep=0)
