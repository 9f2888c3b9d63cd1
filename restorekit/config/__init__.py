"""Configs: YAML files with ``_base_`` inheritance, dotted overrides and a strict schema."""

from .loader import ResolvedConfig, apply_overrides, dump_yaml, load_config, load_raw, parse_override
from .schema import Config, from_mapping, iter_fields, to_mapping

__all__ = [
    "Config",
    "ResolvedConfig",
    "load_config",
    "load_raw",
    "apply_overrides",
    "parse_override",
    "dump_yaml",
    "from_mapping",
    "to_mapping",
    "iter_fields",
]
