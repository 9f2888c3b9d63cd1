"""Load a config: read the YAML, merge its ``_base_`` files, apply overrides, validate.

Each step is a module of its own: :mod:`~restorekit.config.yaml_io` (strict YAML),
:mod:`~restorekit.config.merge` (``_base_`` inheritance and ``key.path=value`` overrides),
:mod:`~restorekit.config.imports` (``imports:``) and :mod:`~restorekit.config.validate` (keys,
types, registry names, arguments and data folders, all before any data is read). This one
puts them in order and says where a problem came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .imports import import_modules
from .merge import apply_overrides, load_raw
from .schema import Config, to_mapping
from .validate import (
    check_components,
    check_data,
    check_seed,
    parse_general,
    parse_sections,
)
from .yaml_io import check_finite, dump_yaml

__all__ = ["ResolvedConfig", "load_config"]


@dataclass
class ResolvedConfig:
    """A validated config and where it came from."""

    config: Config
    source: Path | None
    overrides: tuple[str, ...]

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
) -> ResolvedConfig:
    """Load, merge, override and validate a config; raise :class:`ConfigError` on any problem.

    ``path=None`` starts from the schema defaults.
    """
    overrides = tuple(overrides)
    source = Path(path) if path is not None else None
    raw = load_raw(source) if source is not None else {}
    raw = apply_overrides(raw, overrides)
    where = str(source) if source else "defaults"
    try:
        check_finite(raw)
        config = parse_general(raw)
        check_seed(config.train.seed)
        # Before the sections: an imported module may register the method they belong to.
        import_modules(config.imports, source.parent.resolve() if source else None)
        parse_sections(config, raw)
        check_components(config)
        if check_data_folders:
            check_data(config)
    except ConfigError as exc:
        if exc.source is None:
            exc.source = where + (" (with command-line overrides)" if overrides else "")
        raise
    return ResolvedConfig(config=config, source=source, overrides=overrides)
