"""Load a config: read the YAML, merge its ``_base_`` files, apply overrides, validate.

Each step is a module of its own: :mod:`~restorekit.config.yaml_io` (strict YAML),
:mod:`~restorekit.config.merge` (``_base_`` inheritance and ``key.path=value`` overrides),
:mod:`~restorekit.config.imports` (``imports:``) and :mod:`~restorekit.config.validate` (keys,
types, registry names, arguments and data folders, all before any data is read). This one
puts them in order and says where a problem came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..registry import PLUGINS_ENV, plugins_disabled
from .imports import import_modules, refuse_imports
from .merge import apply_overrides, load_raw
from .schema import Config, to_mapping
from .validate import (
    check_components,
    check_data,
    check_runtime,
    check_seed,
    parse_general,
    parse_sections,
)
from .yaml_io import check_finite, dump_yaml

__all__ = ["ResolvedConfig", "load_config", "ImportPolicy"]


#: What ``load_config`` does with a config's ``imports:``: run them (the user allowed it), skip
#: them (``validate``, ``print-config``: names they would register are not checked), or refuse
#: a config that has any.
ImportPolicy = Literal["run", "skip", "refuse"]


@dataclass
class ResolvedConfig:
    """A validated config, where it came from, and what validation could not check."""

    config: Config
    source: Path | None
    overrides: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run's name, the config file's stem (``dt_hagg``), or ``default`` without a file."""
        return self.source.stem if self.source else "default"

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self.config)

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


def load_config(
    path: str | Path | None,
    overrides: Iterable[str] = (),
    *,
    check_data_folders: bool = True,
    imports: ImportPolicy = "refuse",
) -> ResolvedConfig:
    """Load, merge, override and validate a config; raise :class:`ConfigError` on any problem.

    ``path=None`` starts from the schema defaults. ``check_data_folders=False`` skips what
    depends on this machine (the data folders and the device), for printing a config.
    ``imports`` says what to do with the config's ``imports:`` (:data:`ImportPolicy`); the
    default refuses a config that has any, since importing a module runs its code.
    """
    overrides = tuple(overrides)
    source = Path(path) if path is not None else None
    files: list[Path] = []
    raw = load_raw(source, files=files) if source is not None else {}
    raw = apply_overrides(raw, overrides)
    where = str(source) if source else "defaults"
    notes: list[str] = []
    try:
        check_finite(raw)
        config = parse_general(raw)
        check_seed(config.train.seed)
        unchecked = False
        if config.imports:
            if imports == "refuse":
                raise refuse_imports(config.imports, "add --allow-imports to the command (load_config(..., imports='run'))")
            if imports == "run" and plugins_disabled():
                raise refuse_imports(config.imports, f"not with plugins off ({PLUGINS_ENV} or --no-plugins)")
            if imports == "run":
                # Before the sections: an imported module may register the method they belong to.
                import_modules(config.imports, list(dict.fromkeys(f.parent for f in files)))
            else:
                unchecked = True
                notes.append(
                    f"imports: {', '.join(config.imports)} not run (validate and print-config never run a config's "
                    "code): names they would register were not checked"
                )
        parse_sections(config, raw, unknown=notes if unchecked else None)
        check_components(config, unknown=notes if unchecked else None)
        if check_data_folders:  # and the device: what this machine must have, beside the config itself
            check_runtime(config)
            check_data(config)
    except ConfigError as exc:
        if exc.source is None:
            exc.source = where + (" (with command-line overrides)" if overrides else "")
        raise
    return ResolvedConfig(config=config, source=source, overrides=overrides, notes=notes)
