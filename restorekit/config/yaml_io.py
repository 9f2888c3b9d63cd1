"""Reading YAML strictly: ``yaml.safe_load`` semantics, and nothing a config could abuse.

* A ``SafeLoader`` subclass: nothing in a YAML file executes. It adds YAML 1.2 floats, so
  ``1e-4`` is a number, not a string, and rejects duplicate keys instead of keeping the last.
* YAML aliases that expand a small file into a huge or self-containing structure are refused
  (:data:`MAX_VALUES`, :data:`MAX_DEPTH`), and so are NaN and infinite numbers anywhere
  (:func:`check_finite`): no option means anything with them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["parse_yaml", "read_yaml", "dump_yaml", "check_finite", "MAX_VALUES", "MAX_DEPTH"]


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-4``) and an error on duplicate keys."""


_StrictSafeLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


#: Most values (mapping entries, list items, scalars) a config may expand to, counting each
#: use of a YAML alias; real configs hold a few hundred values.
MAX_VALUES = 100_000
#: The deepest nesting a config may have.
MAX_DEPTH = 64


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A one-line description of a YAML error, with its line and column."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    text = problem or str(exc).strip().splitlines()[0]
    context = getattr(exc, "context", None)
    if context and problem:
        text = f"{context}, {problem}"
    if mark is not None:
        text += f" (line {mark.line + 1}, column {mark.column + 1})"
    return text


def _check_expansion(data: Any, source: str) -> None:
    """Refuse YAML that aliases expand past :data:`MAX_VALUES` values or :data:`MAX_DEPTH` levels
    (a "billion laughs" file, or a list that contains itself), before anything walks it recursively."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES or depth > MAX_DEPTH:
            what = f"{MAX_VALUES} values" if count > MAX_VALUES else f"{MAX_DEPTH} levels of nesting"
            raise ConfigError(
                f"the YAML expands to more than {what} (aliases that repeat or contain themselves?); "
                "a config is a small mapping of options",
                source=source,
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in node)


def parse_yaml(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_yaml_problem(exc)}", source=source) from None
    except RecursionError:
        raise ConfigError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep", source=source) from None
    _check_expansion(data, source)
    return data


def check_finite(data: Any, path: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere: no option means anything with them."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ConfigError(f"expected a finite number, got {data!r}", path=path or None)
    if isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            check_finite(value, f"{path}[{i}]")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML file as a mapping (no inheritance)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=str(path)) from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config file must hold a mapping at the top, got {type(data).__name__}", source=str(path))
    return data


def dump_yaml(data: Any) -> str:
    """YAML text of plain data, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
