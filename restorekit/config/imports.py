"""``imports:``: local Python modules a config names, to register components without packaging.

Importing a module runs its code, so restorekit never does it on a config's say-so alone: the
user allows it on the command line for that run (``restorekit train ... --allow-imports``), and
``validate`` and ``print-config`` never do it. A ``.py`` path is relative to the config file
that names it (a ``_base_`` file too); a module name is imported from ``sys.path`` and the
folders of the config's files. A module that fails to import stops the run with its error: a
config that needs it cannot run without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

__all__ = ["import_modules", "refuse_imports"]


def refuse_imports(names: list[str], why: str) -> ConfigError:
    """The error for a config whose ``imports:`` may not run (``why``: what would allow it)."""
    return ConfigError(
        f"the config names Python code to run ({', '.join(names)}); restorekit runs no code a config names "
        f"unless you allow it for this run: {why}",
        path="imports",
    )


def import_modules(names: list[str], config_dirs: Sequence[Path] = ()) -> None:
    """Import the modules listed under ``imports:`` (fails hard: a config that needs them cannot run).

    Relative ``.py`` paths (from a command-line override) are relative to the last of
    ``config_dirs``, the folder of the config file named on the command line.
    """
    for i, name in enumerate(names):
        path = f"imports[{i}]"
        try:
            if name.endswith(".py"):
                candidate = Path(name) if Path(name).is_absolute() or not config_dirs else config_dirs[-1] / name
                if not candidate.is_file():
                    looked = "" if str(candidate) == name else f" (looked for {candidate})"
                    raise ConfigError(f"module file {name!r} not found{looked}", path=path)
                module_name = f"restorekit_local_{candidate.stem}"
                if module_name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(module_name, candidate)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]  # a later attempt must run it again, not find half of it
                    raise
            else:
                for folder in config_dirs:
                    if str(folder) not in sys.path:
                        sys.path.insert(0, str(folder))
                importlib.import_module(name)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"cannot import {name!r}: {type(exc).__name__}: {exc}", path=path) from exc
