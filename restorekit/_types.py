"""Check config values against Python type annotations.

Used by the config schema and by ``Registry.build`` so that ``num_blocks: "6"`` or
``lr: [1]`` fails at load time with the key path and the expected type, before any work.
Only the annotation forms that configs need are supported; anything else is accepted as is.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from .errors import ConfigError

__all__ = ["check_value", "describe"]


def describe(annotation: Any) -> str:
    """A short human name for an annotation: ``int``, ``float or null``, ``one of 'a', 'b'``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return "any value"
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin in (list, Sequence, typing.Sequence) or annotation in (list, Sequence):
        inner = describe(args[0]) if args else "values"
        return f"a list of {inner}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe(args[0])}"
        return "a list of " + str(len(args)) + " values (" + ", ".join(describe(a) for a in args) + ")"
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def _fail(value: Any, annotation: Any, path: str) -> ConfigError:
    return ConfigError(
        f"expected {describe(annotation)}, got {value!r} ({type(value).__name__})", path=path
    )


def check_value(value: Any, annotation: Any, path: str) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise ConfigError."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if isinstance(annotation, str):  # an unresolved forward reference: nothing to check against
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if annotation is type(None) or annotation is None:
        if value is None:
            return None
        raise _fail(value, annotation, path)
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and True not in args and False not in args):
            return value
        raise _fail(value, annotation, path)
    if origin in (Union, types.UnionType):
        # Try the exact-type members first so that 3 stays an int in ``int | float``.
        for member in args:
            try:
                return check_value(value, member, path)
            except ConfigError:
                continue
        raise _fail(value, annotation, path)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _fail(value, annotation, path)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(value, annotation, path)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(value, annotation, path)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _fail(value, annotation, path)
    if origin in (list, Sequence) or annotation in (list, Sequence) or origin is typing.Sequence:
        if not isinstance(value, (list, tuple)):
            raise _fail(value, annotation, path)
        inner = args[0] if args else Any
        return [check_value(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(value, annotation, path)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(value, annotation, path)
        return tuple(check_value(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _fail(value, annotation, path)
        vt = args[1] if len(args) == 2 else Any
        return {k: check_value(v, vt, f"{path}.{k}") for k, v in value.items()}
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _fail(value, annotation, path)
    return value
