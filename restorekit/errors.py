"""Exceptions that restorekit raises on bad input.

Every error a user can cause (a typo in a config, a missing folder, a broken plugin) is one of
these, so the command line can print the message without a traceback and exit with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "RestorekitError",
    "ConfigError",
    "UnknownNameError",
    "RegistryError",
    "PluginLoadError",
    "ImageReadError",
    "DataError",
    "CheckpointError",
    "CheckpointWriteError",
    "TrainingError",
    "did_you_mean",
]


class RestorekitError(Exception):
    """Base class of the errors a user can cause and fix."""


class ConfigError(RestorekitError, ValueError):
    """A config file, key, value or command-line override is invalid.

    Args:
        message: what is wrong and what was expected.
        path: the dotted key path, e.g. ``"train.iters"``.
        source: the config file the value came from, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, source: str | None = None):
        self.message = message
        self.path = path
        self.source = source
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(str(self.source))
        if self.path:
            where.append(f"key '{self.path}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class UnknownNameError(RestorekitError, KeyError):
    """A registry has no entry of that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class RegistryError(RestorekitError):
    """A registration is invalid: a duplicate name, a bad name, an object breaking the contract."""


class PluginLoadError(RestorekitError):
    """A third-party entry point could not be loaded (import error, wrong object type)."""


class ImageReadError(RestorekitError):
    """An image file cannot be read or decoded."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DataError(RestorekitError):
    """A data folder is missing, empty or inconsistent."""


class CheckpointError(RestorekitError):
    """A checkpoint is missing, unreadable or of an unknown layout."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choices, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class TrainingError(RestorekitError):
    """A run cannot go on (a NaN loss, an existing run folder); the message says what to do."""


class CheckpointWriteError(CheckpointError, TrainingError):
    """A model file or checkpoint could not be written (a full disk, a read-only folder).

    It is a :class:`TrainingError` too: the run failed, the input was fine (exit status 1).
    """
