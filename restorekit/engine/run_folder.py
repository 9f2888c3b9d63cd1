"""A run folder belongs to one run: one training at a time, and a resume continues the same run.

* :class:`RunLock`: a training holds an OS lock on the folder while it runs, so a second
  training into the same folder fails at once, naming the holder (from ``RUN/.lock``). The
  kernel drops the lock when its process ends in any way (``kill -9`` too), so a ``.lock``
  file a killed run left behind is stale by construction and simply replaced.
* :func:`check_resume`: the run's own config is saved in the folder (``config.yaml``, and
  ``config.resumed-*.yaml`` for each resume); a resume whose config differs from it is refused
  with the differing keys, except for the keys of :data:`SAFE_TO_CHANGE` when the user allows
  changes (``--allow-changes``): those change how long or how visibly the run goes on, not what
  it trains.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import _atomic
from ..errors import TrainingError

__all__ = ["RunLock", "run_config_file", "config_differences", "check_resume", "SAFE_TO_CHANGE"]

LOCK_FILE = ".lock"
_ABSENT = object()  # a key one of two configs does not have

#: Keys a resume may change with ``--allow-changes``; a prefix ending in ``.`` covers a section.
SAFE_TO_CHANGE = (
    "train.iters",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.sample_every",
    "train.tensorboard",
    "eval.",
    "runtime.threads",
    "runtime.device",
    "runtime.work_dir",
    "data.num_workers",
    "data.soft_label_cache",
)


class RunLock:
    """Hold the run folder's lock for the life of a training (a context manager).

    The lock is an OS lock on the folder itself, so taking it changes no file; once the run has
    been let in (:meth:`claim`), ``RUN/.lock`` says who holds it, for the message a second
    training gets.

    Raises:
        TrainingError: another process holds it; the message names that process.
    """

    def __init__(self, work_dir: Path) -> None:
        self.folder = Path(work_dir)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no POSIX locks (Windows): run unlocked rather than not at all
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TrainingError(
                f"run folder {self.folder} is in use by another training ({_describe_holder(self.path)}); wait for "
                "it to finish, or choose another folder with --work-dir. Nothing was touched."
            ) from None
        self._fd = fd
        return self

    def claim(self) -> None:
        """Say in ``RUN/.lock`` who holds the folder (a file a killed run left there is replaced)."""
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        _atomic.write_text(self.path, json.dumps(holder) + "\n")

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"


# --------------------------------------------------------------------------- resuming
def run_config_file(work_dir: Path) -> Path | None:
    """The config the run in ``work_dir`` last trained with (its latest ``config.resumed-*``, else ``config.yaml``)."""
    work_dir = Path(work_dir)
    resumed = sorted(work_dir.glob("config.resumed-*.yaml"))
    if resumed:
        return resumed[-1]
    first = work_dir / "config.yaml"
    return first if first.is_file() else None


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping) and data and not ("type" in data and prefix):
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        # A component spec ({type: ..., ...}) counts as one value: a different type is a different thing.
        yield prefix.rstrip("."), data


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, current value)`` for every key whose value differs, in config order."""
    old, new = dict(_flatten(saved)), dict(_flatten(current))
    keys = list(old) + [k for k in new if k not in old]
    return [(k, old.get(k, _ABSENT), new.get(k, _ABSENT)) for k in keys if old.get(k, _ABSENT) != new.get(k, _ABSENT)]


def _is_safe(key: str) -> bool:
    return any(key == s or (s.endswith(".") and key.startswith(s)) for s in SAFE_TO_CHANGE)


def check_resume(saved: Mapping[str, Any], current: Mapping[str, Any], *, allow_changes: bool, saved_file: Path) -> list[str]:
    """Refuse a resume whose config differs from the run's (see the module docstring).

    Returns the keys that changed (all safe, and allowed); raises :class:`TrainingError` otherwise.
    """
    changes = config_differences(saved, current)
    if not changes:
        return []
    shown = "; ".join(f"{k}: {_show(old)} in the run, {_show(new)} now" for k, old, new in changes[:12])
    more = f"; and {len(changes) - 12} more" if len(changes) > 12 else ""
    unsafe = [k for k, _, _ in changes if not _is_safe(k)]
    if unsafe:
        raise TrainingError(
            f"the config differs from the run's ({saved_file}): {shown}{more}. A resume continues the run in the "
            f"folder, so {', '.join(unsafe[:6])} cannot change; resume with no config (restorekit train --resume "
            f"--work-dir {saved_file.parent}), or start a new run in another folder"
        )
    if not allow_changes:
        raise TrainingError(
            f"the config differs from the run's ({saved_file}): {shown}{more}. These may change on a resume: "
            "pass --allow-changes to continue with them"
        )
    return [k for k, _, _ in changes]


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    if value is None:
        return "null"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
