"""Configs: YAML files with ``_base_`` inheritance, dotted overrides and a strict schema."""

from .loader import ResolvedConfig, load_config
from .merge import apply_overrides, load_raw, parse_override
from .schema import Config, from_mapping, iter_fields, to_mapping
from .validate import parse_config
from .yaml_io import dump_yaml, read_yaml

__all__ = [
    "Config",
    "ResolvedConfig",
    "load_config",
    "load_raw",
    "apply_overrides",
    "parse_override",
    "parse_config",
    "dump_yaml",
    "read_yaml",
    "from_mapping",
    "to_mapping",
    "iter_fields",
]
