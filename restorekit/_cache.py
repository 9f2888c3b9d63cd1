"""Where restorekit keeps data it can rebuild: demo datasets and soft labels."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root"]

#: Environment variable that moves the cache folder.
CACHE_ENV = "RESTOREKIT_CACHE"


def cache_root() -> Path:
    """``$RESTOREKIT_CACHE`` if set, else ``~/.cache/restorekit``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "restorekit"
