"""Progress reporting: a rich progress bar on a terminal, plain log lines elsewhere (CI, files)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["TrainingProgress", "format_logs", "file_logger"]


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.1234 soft 0.2 ...`` with sensible precision per key."""
    parts = []
    for key, value in logs.items():
        if key == "lr":
            parts.append(f"lr {value:.2e}")
        elif key in ("alpha", "beta"):
            parts.append(f"{key} {value:.3g}")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


def file_logger(path: Path) -> logging.Logger:
    """A logger that appends timestamped lines to ``path`` (the run's ``train.log``)."""
    logger = logging.getLogger(f"restorekit.run.{path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


class TrainingProgress:
    """Shows iteration, it/s, losses, alpha, beta, lr and ETA; also writes them to the run's log.

    Args:
        console: where to draw.
        total: last iteration.
        start: iteration already done (when resuming).
        log: the run's file logger.
    """

    def __init__(self, console: Console, total: int, start: int, log: logging.Logger) -> None:
        self.console = console
        self.total = total
        self.log = log
        self._last_t = start
        self._last_time = time.perf_counter()
        self.interactive = console.is_terminal
        self._progress: Progress | None = None
        if self.interactive:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task("train", total=total, completed=start, speed="", stats="")

    def __enter__(self) -> TrainingProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, t: int) -> None:
        """Move the bar (cheap: no logging, no device sync)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=t)

    def report(self, t: int, logs: dict[str, float]) -> float:
        """Record the logged values of iteration ``t``; returns the speed since the last report (it/s)."""
        now = time.perf_counter()
        speed = (t - self._last_t) / max(now - self._last_time, 1e-9)
        self._last_t, self._last_time = t, now
        stats = format_logs(logs)
        line = f"iter {t}/{self.total}  {speed:.2f} it/s  {stats}"
        self.log.info(line)
        if self._progress is not None:
            self._progress.update(self._task, completed=t, speed=f"{speed:.2f} it/s", stats=stats)
        else:
            eta = (self.total - t) / speed if speed > 0 else float("nan")
            self.console.print(f"{line}  eta {eta / 60:.1f} min")
        return speed

    def message(self, text: str) -> None:
        """A one-off line (checkpoint written, evaluation result)."""
        self.log.info(text)
        self.console.print(text)
