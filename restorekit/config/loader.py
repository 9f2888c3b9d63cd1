"""Load a YAML config: ``_base_`` inheritance, dotted command-line overrides, strict validation.

* YAML is read with ``yaml.safe_load`` semantics (a ``SafeLoader`` subclass): nothing in a
  config executes. The subclass adds YAML 1.2 floats, so ``1e-4`` is a number, not a string,
  and rejects duplicate keys instead of silently keeping the last.
* ``_base_: path`` or ``_base_: [a.yaml, b.yaml]`` (relative to the file) is merged first,
  later bases over earlier ones, the file itself last. Mappings merge key by key, lists and
  scalars replace. A component spec whose ``type`` changes is replaced as a whole, since the
  other keys belong to the old type; ``_replace_: true`` in any mapping also replaces it whole.
* Overrides ``key.path=value`` are applied after merging; values are YAML scalars or flow
  collections (``train.iters=20000``, ``train.betas=[0.9,0.999]``, ``backbone={type: ddn}``).
* Validation checks every key, type, bound and registry name, and binds each component's
  arguments to its signature, before any data is read. NaN and infinite numbers are refused
  anywhere; YAML aliases that expand a small file into a huge or self-containing structure
  are refused too. Data folders must exist and hold images (paired ones, matching names).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, RestorekitError
from .schema import Config, from_mapping, iter_fields, to_mapping

__all__ = ["ResolvedConfig", "load_config", "load_raw", "apply_overrides", "parse_override", "read_yaml", "dump_yaml"]

BASE_KEY = "_base_"
REPLACE_KEY = "_replace_"


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
#: use of a YAML alias, and the deepest nesting; real configs hold a few hundred values.
MAX_VALUES = 100_000
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


def _parse_yaml(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_yaml_problem(exc)}", source=source) from None
    except RecursionError:
        raise ConfigError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep", source=source) from None
    _check_expansion(data, source)
    return data


def _check_finite(data: Any, path: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere: no option means anything with them."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ConfigError(f"expected a finite number, got {data!r}", path=path or None)
    if isinstance(data, dict):
        for key, value in data.items():
            _check_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            _check_finite(value, f"{path}[{i}]")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML file as a mapping (no inheritance)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=str(path)) from None
    data = _parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config file must hold a mapping at the top, got {type(data).__name__}", source=str(path))
    return data


def dump_yaml(data: Any) -> str:
    """YAML text of plain data, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


def _merge(base: Any, update: Any) -> Any:
    """Deep-merge ``update`` over ``base`` (see the module docstring for the rules)."""
    if not isinstance(base, dict) or not isinstance(update, dict):
        return update
    if update.get(REPLACE_KEY):
        return {k: v for k, v in update.items() if k != REPLACE_KEY}
    if "type" in base and "type" in update and base["type"] != update["type"]:
        return dict(update)
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


def _strip_markers(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_markers(v) for k, v in data.items() if k != REPLACE_KEY}
    return data


def load_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged mapping of ``path`` and all its ``_base_`` files, not yet validated."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"_base_ inheritance has a cycle: {cycle}", source=str(path))
    data = read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError("_base_ must be a path or a list of paths", source=str(path))
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            chain = " -> ".join(str(p) for p in (*_chain, path))
            raise ConfigError(f"_base_ file {base!r} not found (looked for {base_path}; chain: {chain})", source=str(path))
        merged = _merge(merged, load_raw(base_path, (*_chain, path)))
    return _strip_markers(_merge(merged, data))


_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into its key path and the value parsed as YAML."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    if "=" not in text:
        raise ConfigError(f"override {shown!r} must look like key.path=value", source="command line")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not _KEY_RE.match(key):
        raise ConfigError(
            f"override {shown!r}: {key[:60]!r} is not a dotted key path like train.iters", source="command line"
        )
    try:
        value = _parse_yaml(raw, "command line") if raw.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"override {shown!r}: {exc.message}", path=key, source="command line") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in order to a merged config mapping (returns a new mapping)."""
    result = _copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(
                    f"override {text!r}: '{where}' is {child!r}, not a mapping, so it has no key '{keys[depth + 1]}'",
                    source="command line",
                )
            node = child
        last = keys[-1]
        if last == "type" and node.get("type") not in (None, value):
            node.clear()  # a new component type: the old type's arguments no longer apply
        node[last] = value
    return result


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


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


def _import_modules(names: list[str], config_dir: Path | None) -> None:
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


def _spec_fields() -> list[tuple[str, str, bool]]:
    return [
        (key, meta["registry"], bool(meta.get("optional")))
        for key, _, _, meta in iter_fields(Config)
        if "registry" in meta
    ]


def _get(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_components(config: Config) -> None:
    """Resolve every component spec in its registry and build it once, so bad names, arguments
    and values (an even median kernel, a negative cap) fail now with the key path."""
    from ..registries import get_registry

    for key, registry_name, _optional in _spec_fields():
        if config.method == "sv" and key.startswith("dt."):
            continue
        if config.method == "dt" and key.startswith("sv."):
            continue
        value = _get(config, key)
        if value is None:
            continue
        registry = get_registry(registry_name)
        try:
            instance = registry.build(value, path=key)
        except (RestorekitError, ConfigError):
            raise
        except Exception as exc:  # a component refusing its arguments, in whatever way it does
            message = str(exc) if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"
            raise ConfigError(message, path=key) from None
        if registry_name == "backbones":
            default = getattr(instance, "default_loss", None) or "ssim"
            get_registry("losses").resolve({"type": default}, path=f"{key}.type (its default loss)")
        if registry_name == "schedulers":
            expected = "lr" if key == "train.lr_schedule" else "loss_weights"
            role = getattr(instance, "role", None)
            if role != expected:
                raise ConfigError(
                    f"scheduler '{value['type']}' is a {role} schedule; this key needs a {expected} schedule",
                    path=key,
                )


def _check_seed(seed: int) -> None:
    """The seed feeds torch, NumPy and the per-iteration data generators: all take 0 <= seed < 2**63.
    (A bound the schema could carry as ``min``/``max``; kept here until it does.)"""
    if not 0 <= seed < 2**63:
        raise ConfigError(f"must be between 0 and 2**63 - 1, got {seed}", path="train.seed")


def check_data(config: Config) -> None:
    """Fail now for data folders that do not exist, hold no image, or (paired folders) lack
    ``rain/``/``gt/`` or matching names. Built-in ``demo:`` names are checked by name."""
    from ..data.datasets import paired_files
    from ..data.demo import check_demo_name, is_demo
    from ..data.io import list_images
    from ..errors import DataError

    wanted = [("eval.data", config.eval.data), *((f"eval.extra[{i}]", v) for i, v in enumerate(config.eval.extra))]
    if config.method == "dt":
        wanted += [("data.rainy", config.data.rainy), ("data.clean", config.data.clean)]
    else:
        wanted += [("data.paired", config.data.paired)]
    for key, value in wanted:
        if value is None:
            if key == "eval.data":
                continue
            raise ConfigError(f"method '{config.method}' needs a data folder here", path=key)
        if is_demo(value):
            try:
                check_demo_name(value)
            except ValueError as exc:
                raise ConfigError(str(exc), path=key) from None
            continue
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"data folder {value!r} does not exist or is not a folder", path=key)
        try:
            if key in ("data.paired", "eval.data") or key.startswith("eval.extra"):
                paired_files(folder)
            else:
                list_images(folder)
        except DataError as exc:
            raise ConfigError(str(exc), path=key) from None


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
        _check_finite(raw)
        config = from_mapping(Config, raw)
        _check_seed(config.train.seed)
        _import_modules(config.imports, source.parent.resolve() if source else None)
        check_components(config)
        if check_data_folders:
            check_data(config)
    except ConfigError as exc:
        if exc.source is None:
            exc.source = where + (" (with command-line overrides)" if overrides else "")
        raise
    return ResolvedConfig(config=config, source=source, overrides=overrides)


def defaults_mapping() -> Mapping[str, Any]:
    """The schema defaults as plain data."""
    return to_mapping(Config())
