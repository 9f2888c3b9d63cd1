"""Name-to-object registries: one small class, one instance per kind of component.

A registry maps a lowercase name (``"hagg"``) to a class or factory. Entries come from three
places, and a name may come from only one of them:

* built-ins, declared in a static table (``add_lazy("hagg", "restorekit.models.hagg:HAgg")``)
  so that listing names imports nothing and ``get`` imports only the module it needs;
* runtime registration with the decorator (``@BACKBONES.register("my_net")``), from any module
  the user imports (or names under ``imports:`` in a config);
* third-party packages, through the entry-point group ``restorekit.<kind>s`` read with the
  standard library's :mod:`importlib.metadata`. Discovery reads metadata only, once per
  process, on first need; a plugin's code is imported only when its own name is requested.

Misses raise :class:`~restorekit.errors.UnknownNameError` with the known names and a
did-you-mean; duplicates and plugin clashes are errors that name both definitions.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import re
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ._types import check_value
from .errors import (
    ConfigError,
    PluginLoadError,
    RegistryError,
    RestorekitError,
    UnknownNameError,
    did_you_mean,
)

__all__ = ["Registry", "EntryInfo", "PluginInfo", "PLUGINS_ENV", "plugins_disabled"]

#: Set this environment variable to 1 to turn third-party plugin discovery off.
PLUGINS_ENV = "RESTOREKIT_DISABLE_PLUGINS"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def plugins_disabled() -> bool:
    """True when ``RESTOREKIT_DISABLE_PLUGINS`` is set to a true value."""
    return os.environ.get(PLUGINS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _plugin_source(ep: metadata.EntryPoint) -> str:
    dist, version = _dist_of(ep)
    return f"plugin:{dist}=={version}"


def _dist_of(ep: metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    try:
        return dist.metadata["Name"], dist.version
    except Exception:  # a malformed distribution: still report what we can
        return getattr(dist, "name", None), None


@dataclass(frozen=True)
class EntryInfo:
    """What ``Registry.info`` reports about one name."""

    kind: str
    name: str
    source: str  # "builtin", "runtime" or "plugin:<dist>==<version>"
    target: str  # "module:qualname"
    signature: str
    doc: str
    file: str | None
    line: int | None


@dataclass(frozen=True)
class PluginInfo:
    """One entry point found for a registry, and whether it loads."""

    kind: str
    name: str
    group: str
    value: str
    dist: str | None
    version: str | None
    status: str  # "found", "loaded", or "error: ..."


class Registry:
    """A registry of one kind of component (backbones, filters, losses, schedulers...).

    Args:
        kind: singular noun used in messages, e.g. ``"backbone"``.
        group: entry-point group for plugins, e.g. ``"restorekit.backbones"``.
        contract: called with each object when it is registered or loaded; raises
            :class:`RegistryError` (or returns a message) when the object breaks the rules.
        instance_check: called with each object ``build`` makes; returns an error message or None.
    """

    def __init__(
        self,
        kind: str,
        *,
        group: str | None = None,
        contract: Callable[[Any], str | None] | None = None,
        instance_check: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self._contract = contract
        self._instance_check = instance_check
        self._objects: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}
        self._source: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._plugins: dict[str, list[metadata.EntryPoint]] | None = None
        self._plugin_status: dict[str, str] = {}

    # ------------------------------------------------------------------ registration
    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self.names())} names)"

    @property
    def plural(self) -> str:
        return self.kind + "es" if self.kind.endswith("s") else self.kind + "s"

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise RegistryError(
                f"invalid {self.kind} name {name!r}: use lowercase letters, digits, '_', '.', '-'"
            )

    def _check_contract(self, name: str, obj: Any) -> None:
        if self._contract is None:
            return
        problem = self._contract(obj)
        if problem:
            raise RegistryError(f"{self.kind} '{name}' ({_qualname(obj)}) {problem}")

    def add_lazy(self, name: str, target: str) -> None:
        """Declare a built-in entry by its import path ``"package.module:attr"``, without importing it."""
        self._check_name(name)
        if ":" not in target:
            raise RegistryError(f"lazy target for {self.kind} '{name}' must be 'module:attr', got {target!r}")
        if name in self._lazy or name in self._objects:
            raise RegistryError(f"{self.kind} '{name}' is declared twice")
        self._lazy[name] = target
        self._source[name] = "builtin"

    def register(
        self,
        name: str | Callable[..., Any] | None = None,
        obj: Any = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        replace: bool = False,
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        ``@REG.register("name")``, ``@REG.register()`` (name from ``obj.__name__``, lowercased)
        and ``REG.register("name", obj)`` all work. Registering a different object under a
        taken name is an error unless ``replace=True``; registering the same object is a no-op.
        """
        if callable(name) and obj is None:  # bare @REG.register
            return self.register(None, name, aliases=aliases, replace=replace)

        def decorate(target: Any) -> Any:
            key = name if isinstance(name, str) else target.__name__.lower()
            self._add(key, target, source=None, replace=replace)
            for alias in aliases:
                self._check_name(alias)
                if alias in self._aliases or alias in self._objects or alias in self._lazy:
                    raise RegistryError(f"{self.kind} alias '{alias}' is taken")
                self._aliases[alias] = key
            return target

        return decorate(obj) if obj is not None else decorate

    def _add(self, name: str, obj: Any, *, source: str | None, replace: bool) -> None:
        self._check_name(name)
        current = self._objects.get(name)
        if current is obj:
            return
        if current is not None and not replace:
            raise RegistryError(
                f"{self.kind} '{name}' is already registered by {_qualname(current)}; "
                f"{_qualname(obj)} cannot take the same name (pass replace=True to override)"
            )
        lazy = self._lazy.get(name)
        if lazy is not None and not replace and lazy != _qualname(obj):
            raise RegistryError(
                f"{self.kind} '{name}' is a built-in ({lazy}); {_qualname(obj)} cannot take the same name"
            )
        self._check_contract(name, obj)
        self._objects[name] = obj
        if source is None:
            source = "builtin" if lazy is not None and lazy == _qualname(obj) else "runtime"
        self._source[name] = source

    # ------------------------------------------------------------------ plugins
    def _discover(self) -> dict[str, list[metadata.EntryPoint]]:
        """Read the entry points of this registry's group (metadata only; cached)."""
        if self._plugins is None:
            found: dict[str, list[metadata.EntryPoint]] = {}
            if self.group and not plugins_disabled():
                for ep in metadata.entry_points(group=self.group):
                    found.setdefault(ep.name, []).append(ep)
            self._plugins = found
        return self._plugins

    def refresh(self) -> None:
        """Forget discovered plugins (after installing one in a running process, or in tests)."""
        for name, source in list(self._source.items()):
            if source.startswith("plugin:"):
                self._objects.pop(name, None)
                del self._source[name]
        self._plugins = None
        self._plugin_status.clear()

    def _clash(self, name: str) -> str | None:
        eps = self._discover().get(name, [])
        if not eps:
            return None
        described = [self._describe_ep(ep) for ep in eps]
        if len(eps) > 1:
            return (
                f"{self.kind} '{name}' is provided by more than one plugin: " + " and ".join(described) + "; "
                f"uninstall all but one, or set {PLUGINS_ENV}=1 to run without plugins"
            )
        source = self._source.get(name)
        if source == "runtime" and self._is_target_of(eps[0], self._objects.get(name)):
            # The plugin's own module registered the object with the decorator when it was
            # imported: one definition reached by two routes, not a clash.
            self._source[name] = _plugin_source(eps[0])
            return None
        if source is not None and not source.startswith("plugin:"):
            owner = self._lazy.get(name) or _qualname(self._objects.get(name))
            return (
                f"{self.kind} '{name}' from plugin {described[0]} clashes with the "
                f"{source} {self.kind} {owner}; rename the plugin's entry point, or set "
                f"{PLUGINS_ENV}=1 to run without plugins"
            )
        return None

    @staticmethod
    def _is_target_of(ep: metadata.EntryPoint, obj: Any) -> bool:
        """Whether ``obj`` is what ``ep`` points to, judged without importing anything new.

        Only an already imported module can have registered ``obj``, and loading an entry
        point of an imported module is an attribute lookup, so no plugin code runs here.
        """
        if obj is None or ep.module not in sys.modules:
            return False
        try:
            return ep.load() is obj
        except Exception:  # a broken plugin: report the clash rather than the breakage
            return False

    @staticmethod
    def _describe_ep(ep: metadata.EntryPoint) -> str:
        dist, version = _dist_of(ep)
        where = f"{dist}=={version}" if dist else "an unknown distribution"
        return f"{where} (entry point '{ep.name} = {ep.value}' in group '{ep.group}')"

    def _load_plugin(self, name: str) -> Any:
        (ep,) = self._discover()[name]
        dist = _dist_of(ep)[0]
        try:
            obj = ep.load()
        except Exception as exc:
            self._plugin_status[name] = f"error: {type(exc).__name__}: {exc}"
            raise PluginLoadError(
                f"cannot load {self.kind} '{name}' from plugin {self._describe_ep(ep)}: "
                f"{type(exc).__name__}: {exc}. {self._plugin_advice(dist)}"
            ) from exc
        try:
            self._add(name, obj, source=_plugin_source(ep), replace=False)
        except RegistryError as exc:
            self._plugin_status[name] = f"error: {exc}"
            raise PluginLoadError(
                f"plugin {self._describe_ep(ep)} is invalid: {exc}. {self._plugin_advice(dist)}"
            ) from exc
        # _add keeps the "runtime" source when the module registered itself while importing.
        self._source[name] = _plugin_source(ep)
        self._plugin_status[name] = "loaded"
        return obj

    @staticmethod
    def _plugin_advice(dist: str | None) -> str:
        fix = f"Fix or uninstall it (`pip uninstall {dist}`)" if dist else "Fix or uninstall it"
        return f"{fix}, or set {PLUGINS_ENV}=1 to run without plugins"

    def plugins(self, *, load: bool = False) -> list[PluginInfo]:
        """The entry points found for this registry; with ``load=True`` each is imported to check it."""
        infos = []
        for name, eps in sorted(self._discover().items()):
            for ep in eps:
                status = self._plugin_status.get(name, "found")
                clash = self._clash(name)
                if clash:
                    status = f"error: {clash}"
                elif load and status == "found":
                    try:
                        self._load_plugin(name)
                        status = "loaded"
                    except PluginLoadError as exc:  # _load_plugin recorded what went wrong
                        status = self._plugin_status.get(name, f"error: {exc}")
                dist, version = _dist_of(ep)
                infos.append(PluginInfo(self.kind, name, ep.group, ep.value, dist, version, status))
        return infos

    # ------------------------------------------------------------------ lookup
    def names(self, pattern: str | None = None) -> list[str]:
        """All names (built-in, runtime and plugin), naturally sorted; ``pattern`` is an fnmatch wildcard."""
        all_names = set(self._objects) | set(self._lazy) | set(self._discover())
        if pattern:
            all_names = {n for n in all_names if fnmatch.fnmatchcase(n, pattern)}
        return sorted(all_names, key=_natural_key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.names() or name in self._aliases)

    def get(self, name: str) -> Any:
        """The class or factory registered as ``name``; imports it on first use."""
        if not isinstance(name, str):
            raise UnknownNameError(f"{self.kind} name must be a string, got {name!r}")
        name = self._aliases.get(name, name)
        clash = self._clash(name)
        if clash:
            raise RegistryError(clash)
        if name in self._objects:
            return self._objects[name]
        if name in self._lazy:
            module_name, attr = self._lazy[name].split(":", 1)
            module = importlib.import_module(module_name)
            obj = module
            for part in attr.split("."):
                obj = getattr(obj, part)
            if name not in self._objects:  # the module did not register it itself
                self._add(name, obj, source="builtin", replace=False)
            elif self._objects[name] is not obj:
                raise RegistryError(
                    f"built-in table says {self.kind} '{name}' is {self._lazy[name]}, but its module "
                    f"registered {_qualname(self._objects[name])}"
                )
            return obj
        if name in self._discover():
            return self._load_plugin(name)
        raise UnknownNameError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        head = ", ".join(known[:30]) + (" ..." if len(known) > 30 else "")
        hint = did_you_mean(name, known + list(self._aliases))
        disabled = f" (plugins are off: {PLUGINS_ENV} is set)" if plugins_disabled() else ""
        return (
            f"unknown {self.kind} '{name}'.{hint} Known {self.plural} ({len(known)}): {head}{disabled}. "
            f"Run `restorekit list {self.plural}` to see them all."
        )

    # ------------------------------------------------------------------ building
    def _split_spec(self, spec: Any, path: str) -> tuple[str, dict[str, Any]]:
        if isinstance(spec, str):
            return spec, {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"expected a {self.kind} name or a mapping with 'type', got {spec!r}", path=path)
        kwargs = dict(spec)
        name = kwargs.pop("type", None)
        if not isinstance(name, str):
            raise ConfigError(
                f"a {self.kind} needs 'type: <name>' (one of: {', '.join(self.names())})", path=path
            )
        return name, kwargs

    def resolve(self, spec: Any, *, path: str = "") -> tuple[Any, dict[str, Any]]:
        """Look up ``spec['type']`` and check the other keys against its signature.

        Returns the object and the checked keyword arguments. Raises :class:`ConfigError`
        naming ``path`` for unknown names, unknown arguments and values of the wrong type.
        """
        name, kwargs = self._split_spec(spec, path)
        try:
            obj = self.get(name)
        except UnknownNameError as exc:
            raise ConfigError(str(exc), path=f"{path}.type" if path else "type") from None
        return obj, self.check_arguments(name, obj, kwargs, path=path)

    def check_arguments(self, name: str, obj: Any, kwargs: Mapping[str, Any], *, path: str = "") -> dict[str, Any]:
        """Bind ``kwargs`` to ``obj``'s signature and check each value against its annotation."""
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            return dict(kwargs)
        try:
            hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
        except Exception:
            hints = {}
        params = sig.parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        accepted = [
            p.name
            for p in params.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        checked: dict[str, Any] = {}
        for key, value in kwargs.items():
            key_path = f"{path}.{key}" if path else key
            if key not in accepted and not takes_any:
                raise ConfigError(
                    f"{self.kind} '{name}' has no argument '{key}'.{did_you_mean(key, accepted)} "
                    f"It takes: {', '.join(accepted) or 'no arguments'}",
                    path=key_path,
                )
            checked[key] = check_value(value, hints.get(key, inspect.Parameter.empty), key_path)
        missing = [
            p.name
            for p in params.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in checked
        ]
        if missing:
            raise ConfigError(f"{self.kind} '{name}' needs argument(s): {', '.join(missing)}", path=path)
        return checked

    def build(self, spec: Any, *, path: str = "", **defaults: Any) -> Any:
        """Make an object from ``{"type": name, **kwargs}`` (or a bare name).

        ``defaults`` fill arguments the spec does not give, e.g. ``in_channels=3``. A
        constructor that refuses its arguments (``ValueError`` or ``TypeError``: an even median
        kernel, a negative width) fails as a :class:`ConfigError` naming ``path``.
        """
        name, kwargs = self._split_spec(spec, path)
        obj, checked = self.resolve({"type": name, **{**defaults, **kwargs}}, path=path)
        try:
            instance = obj(**checked)
        except RestorekitError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc), path=path or None) from exc
        if self._instance_check is not None:
            problem = self._instance_check(instance)
            if problem:
                name = self._aliases.get(name, name)
                if self._source.get(name, "").startswith("plugin:"):
                    (ep,) = self._discover()[name]
                    raise PluginLoadError(
                        f"{self.kind} '{name}' from plugin {self._describe_ep(ep)} built {problem}. "
                        f"{self._plugin_advice(_dist_of(ep)[0])}"
                    )
                raise RegistryError(f"{self.kind} '{name}' ({_qualname(obj)}) built {problem}")
        return instance

    # ------------------------------------------------------------------ introspection
    def info(self, name: str) -> EntryInfo:
        """Where ``name`` comes from, its signature and docstring."""
        obj = self.get(name)
        name = self._aliases.get(name, name)
        try:
            # eval_str: modules with ``from __future__ import annotations`` would show 'int'.
            signature = str(inspect.signature(obj, eval_str=True))
        except Exception:  # an annotation that does not evaluate: show it as written
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):
                signature = "(...)"
        try:
            file = inspect.getsourcefile(obj)
            line = inspect.getsourcelines(obj)[1]
        except (TypeError, OSError):
            file, line = None, None
        return EntryInfo(
            kind=self.kind,
            name=name,
            source=self._source.get(name, "runtime"),
            target=_qualname(obj),
            signature=signature,
            doc=inspect.getdoc(obj) or "",
            file=file,
            line=line,
        )

    def builtin_table(self) -> dict[str, str]:
        """The static table of built-in names and their import paths."""
        return dict(self._lazy)

    @contextmanager
    def scoped(self) -> Iterator[Registry]:
        """Snapshot the registry and restore it on exit (for tests that register things)."""
        saved = (
            dict(self._objects),
            dict(self._lazy),
            dict(self._source),
            dict(self._aliases),
            self._plugins,
            dict(self._plugin_status),
        )
        try:
            yield self
        finally:
            (
                self._objects,
                self._lazy,
                self._source,
                self._aliases,
                self._plugins,
                self._plugin_status,
            ) = saved
