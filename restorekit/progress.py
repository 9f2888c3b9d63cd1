"""Progress of the long steps outside the training loop: counts, rate and time left.

Restoring or testing a folder, computing the soft labels of a large training folder, running
the reproduction studies: each shows a rich progress bar on a terminal (the count done, the
rate and the time left) and, where output is not a terminal (a log file, CI, a pipe), plain
lines at every tenth of the work, so a log says how far a step got without a bar's redraws.
The training loop has its own bar with the losses (:mod:`restorekit.engine.progress`).

:class:`TaskProgress` follows one count (images restored, rows run); :class:`StageProgress`
is the ``(stage, done, total)`` callback that folder loading reports through
(:class:`restorekit.data.photos.PhotoSet`), one bar per stage.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["TaskProgress", "StageProgress", "plain_line", "format_duration"]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 01m``; ``?`` when unknown."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def plain_line(label: str, done: int, total: int, elapsed: float, unit: str) -> str:
    """``restore: 40/400 images (10%), 3.1 images/s, 1m 56s left``."""
    share = f" ({100 * done / total:.0f}%)" if total else ""
    rate = done / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 else float("nan")
    tail = f"done in {format_duration(elapsed)}" if done >= total else f"{format_duration(left)} left"
    # Slow items (a training run per row) read better as time per item than as a tiny rate.
    speed = f"{rate:.3g} {unit}/s" if rate >= 1 or rate == 0 else f"{format_duration(1 / rate)} per {unit.rstrip('s')}"
    return f"{label}: {done}/{total} {unit}{share}, {speed}, {tail}"


def _bar_columns() -> list:
    return [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]


class _PlainCounter:
    """When to print a plain line: at every ``every`` items and at the end."""

    def __init__(self, total: int, every: int | None) -> None:
        self.total = total
        # Small counts print only their end (a 4-image test needs no 1/4, 2/4, ... lines).
        self.every = every if every is not None else (max(1, total // 10) if total >= 50 else max(total, 1))
        self.shown = 0
        self.started = time.perf_counter()

    def due(self, done: int) -> bool:
        if done >= self.total or done - self.shown >= self.every:
            self.shown = done
            return True
        return False


class _Bars:
    """The rich bars of a progress display, drawn on a terminal only, started and stopped with it."""

    _bar: Progress | None

    def __enter__(self):
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


class TaskProgress(_Bars):
    """One count of work: a rich bar on a terminal, plain lines elsewhere.

    Args:
        console: where to draw (its ``is_terminal`` chooses the bar or the lines).
        label: what is counted, shown before the count (``restore``, ``test rain_test``).
        total: how many items the step has.
        unit: the items' name (``images``, ``rows``).
        every: print a plain line every this many items (default: every tenth of ``total``
            for 50 items or more, else only at the end).

    Used as a context manager; :meth:`advance` after each item, :meth:`print` for a line above
    the bar (a skipped file, a finished row).
    """

    def __init__(
        self, console: Console, label: str, total: int, *, unit: str = "images", every: int | None = None
    ) -> None:
        self.console = console
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._plain = _PlainCounter(total, every)
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if console.is_terminal and not console.quiet:
            self._bar = Progress(*_bar_columns(), console=console, transient=False)
            self._task = self._bar.add_task(label, total=total, unit=unit)

    def advance(self, n: int = 1) -> None:
        """``n`` more items are done."""
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
        elif self._plain.due(self.done):
            elapsed = time.perf_counter() - self._plain.started
            self.console.print(plain_line(self.label, self.done, self.total, elapsed, self.unit))

    def print(self, text: str, **kwargs: object) -> None:
        """A line above the bar (or among the plain lines)."""
        self.console.print(text, **kwargs)  # type: ignore[arg-type]


class StageProgress(_Bars):
    """The ``(stage, done, total)`` progress callback of folder loading, one bar per stage.

    Passed as ``progress=`` to :class:`restorekit.data.photos.PhotoSet` (and to a method's
    ``training_batches``, which names each folder's stages: ``rainy photos``, ``rainy soft
    labels``, ``clean photos``). Each stage gets its own bar on a terminal; elsewhere plain
    lines at every tenth of a stage of 50 items or more, and at its end.

    Args:
        console: where to draw.
        prefix: put before each stage's name (``loading``).
    """

    def __init__(self, console: Console, prefix: str = "loading") -> None:
        self.console = console
        self.prefix = prefix
        self._bar: Progress | None = None
        if console.is_terminal and not console.quiet:
            self._bar = Progress(*_bar_columns(), console=console, transient=False)
        self._tasks: dict[str, TaskID] = {}
        self._plain: dict[str, _PlainCounter] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        label = f"{self.prefix} {stage}".strip()
        unit = "labels" if stage.endswith("labels") else "images"
        if self._bar is not None:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(label, total=total, unit=unit)
            self._bar.update(self._tasks[stage], completed=done, total=total)
            return
        counter = self._plain.setdefault(stage, _PlainCounter(total, None))
        if counter.due(done):
            elapsed = time.perf_counter() - counter.started
            self.console.print(f"  {plain_line(label, done, total, elapsed, unit)}")
