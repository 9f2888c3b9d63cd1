"""Putting a config together: ``_base_`` inheritance, then dotted command-line overrides.

* ``_base_: path`` or ``_base_: [a.yaml, b.yaml]`` (relative to the file) is merged first,
  later bases over earlier ones, the file itself last. Mappings merge key by key, lists and
  scalars replace. A component spec whose ``type`` changes is replaced as a whole, since the
  other keys belong to the old type; ``_replace_: true`` in any mapping also replaces it whole.
  Cycles and missing files are errors that show the chain.
* Overrides ``key.path=value`` are applied after merging; values are YAML scalars or flow
  collections (``train.iters=20000``, ``train.betas=[0.9,0.999]``, ``backbone={type: ddn}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .yaml_io import parse_yaml, read_yaml

__all__ = ["BASE_KEY", "REPLACE_KEY", "load_raw", "parse_override", "apply_overrides"]

BASE_KEY = "_base_"
REPLACE_KEY = "_replace_"


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


def _resolve_imports(data: dict[str, Any], folder: Path) -> None:
    """A ``.py`` file named under ``imports:`` is relative to the config file that names it (a
    ``_base_`` file too): make it absolute before the files are merged. Module names stay names."""
    names = data.get("imports")
    if isinstance(names, list):
        data["imports"] = [
            str((folder / n).resolve()) if isinstance(n, str) and n.endswith(".py") and not Path(n).is_absolute() else n
            for n in names
        ]


def load_raw(path: str | Path, _chain: tuple[Path, ...] = (), *, files: list[Path] | None = None) -> dict[str, Any]:
    """The merged mapping of ``path`` and all its ``_base_`` files, not yet validated.

    ``files``, when given, receives every file of the inheritance, the bases first.
    """
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"_base_ inheritance has a cycle: {cycle}", source=str(path))
    data = read_yaml(path)
    _resolve_imports(data, path.parent)
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
            what = "is a folder, not a config file" if base_path.is_dir() else "not found"
            raise ConfigError(f"_base_ file {base!r} {what} (looked for {base_path}; chain: {chain})", source=str(path))
        merged = _merge(merged, load_raw(base_path, (*_chain, path), files=files))
    if files is not None:
        files.append(path)
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
        value = parse_yaml(raw, "command line") if raw.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"override {shown!r}: {exc.message}", path=key, source="command line") from None
    if _comment_dropped(raw, value):
        # YAML read ' #...' as a comment and dropped it: a value on the command line is taken
        # whole (a folder named "my rain #2"), or, when it is not text, refused.
        if value is None or isinstance(value, str):
            value = raw.strip()
        else:
            raise ConfigError(
                f"override {shown!r}: the value holds ' #', which YAML reads as the start of a comment, so "
                f"only {raw[: _comment_start(raw)].strip()!r} would be used; quote the value or remove the '#'",
                path=key,
                source="command line",
            )
    return key.split("."), value


_COMMENT_RE = re.compile(r"(?:^|\s)#")


def _comment_start(raw: str) -> int:
    match = _COMMENT_RE.search(raw)
    return -1 if match is None else match.start()


def _comment_dropped(raw: str, value: Any) -> bool:
    """Whether YAML parsed ``raw`` as a value followed by a comment (a '#' inside quotes is no comment)."""
    start = _comment_start(raw)
    if start < 0:
        return False
    try:
        before = parse_yaml(raw[:start], "command line") if raw[:start].strip() else None
    except ConfigError:
        return False  # the text before the '#' is no value of its own: the '#' was inside it
    return before == value


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
