"""Validating a merged config before any work starts: keys, types, names, arguments, data folders.

Validation asks the registries and the methods, and knows no name itself:

* the top-level keys are the schema's (:class:`~restorekit.config.schema.Config`) plus one
  section per registered method, parsed with that method's ``options`` dataclass;
* every component spec (``{type: name, ...}``) of the schema and of the run's own method
  section is built once, so a bad name, argument or value (an even median kernel, a negative
  cap) fails now with its key path; a schedule must play the role its key asks for;
* the data folders are those of ``eval`` and those the method says it reads
  (:meth:`~restorekit.methods.base.Method.data_folders`): each must exist and hold images
  (paired ones: ``rain/`` and ``gt/`` with matching names). Built-in ``demo:`` names are
  checked by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RestorekitError, UnknownNameError, did_you_mean
from .schema import Config, from_mapping, iter_fields, user_keys

__all__ = [
    "parse_config",
    "parse_general",
    "parse_sections",
    "check_seed",
    "check_components",
    "check_runtime",
    "check_data",
]


# --------------------------------------------------------------------------- parsing
def parse_general(raw: Mapping[str, Any]) -> Config:
    """The schema's own keys of ``raw`` as a :class:`Config` (its method sections not parsed yet)."""
    keys = set(user_keys(Config))
    return from_mapping(Config, {k: v for k, v in raw.items() if k in keys})


def _method_options(name: str, path: str) -> type | None:
    from ..registries import METHODS

    try:
        return METHODS.get(name).options
    except UnknownNameError as exc:
        raise ConfigError(str(exc), path=path) from None


def parse_sections(config: Config, raw: Mapping[str, Any], *, unknown: list[str] | None = None) -> Config:
    """Parse every method section of ``raw`` into ``config.sections`` (the run's method gets its
    defaults when the file has no section for it); any other unknown key fails with a did-you-mean.

    ``unknown``: when given (the config's ``imports:`` were not run, and might register a method),
    a method name that is not registered is noted there instead of failing.
    """
    from ..registries import METHODS

    general = user_keys(Config)
    sections: dict[str, Any] = {}
    if unknown is not None and config.method not in METHODS:
        unknown.append(f"method '{config.method}' not checked (not registered without the imports)")
        config.sections = {}
        return config
    for key, value in raw.items():
        if key in general:
            continue
        if key not in METHODS and unknown is not None:
            unknown.append(f"section '{key}' not checked (no method of that name without the imports)")
            continue
        if key not in METHODS:
            methods = METHODS.names()
            raise ConfigError(
                f"unknown key '{key}'.{did_you_mean(str(key), [*general, *methods])} Valid keys here: "
                f"{', '.join(general)}, and a section per method: {', '.join(methods)}",
                path=str(key),
            )
        options = _method_options(key, key)
        if options is None:
            if value:
                raise ConfigError(f"method '{key}' takes no options", path=key)
            continue
        sections[key] = from_mapping(options, value, path=key)
    options = _method_options(config.method, "method")
    if options is not None and config.method not in sections:
        sections[config.method] = options()
    config.sections = sections
    return config


def parse_config(raw: Mapping[str, Any]) -> Config:
    """A merged config mapping as a :class:`Config`: keys and types checked, nothing built or imported."""
    return parse_sections(parse_general(raw), raw)


def check_seed(seed: int) -> None:
    """The seed feeds torch, NumPy and the per-iteration data generators: all take 0 <= seed < 2**63."""
    if not 0 <= seed < 2**63:
        raise ConfigError(f"must be between 0 and 2**63 - 1, got {seed}", path="train.seed")


# --------------------------------------------------------------------------- components
def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _component_specs(config: Config) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """``(key, spec, field metadata)`` of every component spec of the schema and of the run's method section."""
    for key, _, _, meta in iter_fields(Config):
        if "registry" in meta:
            yield key, _get(config, key), meta
    section = config.sections.get(config.method)
    if section is not None:
        for key, _, _, meta in iter_fields(type(section)):
            if "registry" in meta:
                yield f"{config.method}.{key}", _get(section, key), meta


def check_components(config: Config, *, unknown: list[str] | None = None) -> None:
    """Build every component spec once, so bad names, arguments and values fail now with the key path.

    Sections of methods other than the run's are checked for keys and types only (a config may
    carry a ``dt:`` section and train with ``sv``). ``unknown``: when given (the config's
    ``imports:`` were not run), a name no registry knows is noted there instead of failing.
    """
    from ..models.contract import default_loss_spec
    from ..registries import get_registry

    for key, value, meta in _component_specs(config):
        if value is None:
            continue
        registry = get_registry(meta["registry"])
        if unknown is not None and isinstance(value, Mapping) and value.get("type") not in registry:
            unknown.append(f"{key}: {registry.kind} '{value.get('type')}' not checked (not registered without the imports)")
            continue
        try:
            instance = registry.build(value, path=key)
        except RestorekitError:
            raise
        except Exception as exc:  # a component refusing its arguments in some other way than ValueError
            raise ConfigError(f"{type(exc).__name__}: {exc}", path=key) from None
        if meta["registry"] == "backbones":
            get_registry("losses").resolve(default_loss_spec(instance), path=f"{key}.type (its default loss)")
            _check_restores(instance, value, key)
        role = meta.get("role")
        if role is not None and getattr(instance, "role", None) != role:
            raise ConfigError(
                f"scheduler '{value['type']}' is a {getattr(instance, 'role', None)} schedule; "
                f"this key needs a {role} schedule",
                path=key,
            )


def _check_restores(backbone: Any, spec: Any, key: str) -> None:
    """Run the built backbone once on a small image: arguments that build but cannot work
    (a channel count of 0, a depth the input cannot carry) fail now, not in the first step."""
    import torch

    from ..models.contract import run_backbone

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = run_backbone(backbone.eval(), x)
    except Exception as exc:  # whatever the network raises, the config made it
        raise ConfigError(f"backbone '{spec['type']}' cannot restore a 1×3×32×32 image: {type(exc).__name__}: {exc}",
                          path=key) from None
    if out.residual.shape != x.shape or not torch.isfinite(out.residual).all():
        raise ConfigError(
            f"backbone '{spec['type']}' turns a 1×3×32×32 image into a residual of shape "
            f"{tuple(out.residual.shape)}{'' if torch.isfinite(out.residual).all() else ' with NaN or Inf values'}",
            path=key,
        )


def check_runtime(config: Config) -> None:
    """The device must exist here (``cuda`` without a GPU fails now, not after the data is loaded)."""
    from ..device import resolve_device

    resolve_device(config.runtime.device)


# --------------------------------------------------------------------------- data folders
def check_data(config: Config) -> None:
    """Fail now for data folders that do not exist, hold no image, or (paired folders) lack
    ``rain/``/``gt/`` or matching names."""
    from ..data.demo import check_demo_name, is_demo
    from ..data.io import list_images
    from ..data.pairs import paired_files
    from ..errors import DataError
    from ..registries import METHODS

    wanted: list[tuple[str, Any, str]] = [("eval.data", config.eval.data, "pairs")]
    wanted += [(f"eval.extra[{i}]", v, "pairs") for i, v in enumerate(config.eval.extra)]
    if config.method in METHODS:  # else a method of imports that were not run: its folders are unknown
        folders = METHODS.get(config.method).data_folders(config, config.sections.get(config.method))
        wanted += [(key, _get(config, key), kind) for key, kind in folders.items()]
    for key, value, kind in wanted:
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
            if kind == "pairs":
                paired_files(folder)
            else:
                list_images(folder)
        except DataError as exc:
            raise ConfigError(str(exc), path=key) from None
