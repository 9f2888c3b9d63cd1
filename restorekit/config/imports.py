"""``imports:``: local Python modules a config needs imported, so they can register components.

A module named there is imported before the registries are used; a ``.py`` path is relative to
the config file's folder. A module that fails to import stops the run with its error: a config
that needs it cannot run without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import ConfigError

__all__ = ["import_modules"]


def import_modules(names: list[str], config_dir: Path | None) -> None:
    """Import the modules listed under ``imports:`` (fails hard: a config that needs them cannot run)."""
    for i, name in enumerate(names):
        path = f"imports[{i}]"
        candidate = (config_dir / name) if config_dir else Path(name)
        try:
            if name.endswith(".py"):
                if not candidate.is_file():
                    raise ConfigError(f"module file {name!r} not found (looked for {candidate})", path=path)
                module_name = f"restorekit_local_{candidate.stem}"
                if module_name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(module_name, candidate)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            else:
                if config_dir and str(config_dir) not in sys.path:
                    sys.path.insert(0, str(config_dir))
                importlib.import_module(name)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"cannot import {name!r}: {type(exc).__name__}: {exc}", path=path) from exc
