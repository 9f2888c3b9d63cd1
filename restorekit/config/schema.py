"""The config schema: every key restorekit reads, its type, default and meaning.

Each section is a dataclass; ``field(metadata=...)`` carries the documentation (``doc``), the
bounds (``min``/``max``) and, for component specs like ``{type: hagg, num_blocks: 6}``, the
registry the name must come from (``registry``) and, for schedules, the role they must play
(``role``). The docs' config reference is generated from these classes, so it cannot drift
from the code.

A method's own options are a section named like the method (``dt:``, ``sv:``), whose dataclass
the method declares (:attr:`restorekit.methods.base.Method.options`); they are kept in
:attr:`Config.sections` and read as attributes (``config.dt.soft_label``). This module knows
no method by name: :mod:`restorekit.config.validate` asks the methods registry.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._types import check_value, describe
from ..errors import ConfigError, did_you_mean

__all__ = [
    "Config",
    "DataConfig",
    "TrainConfig",
    "EvalConfig",
    "RuntimeConfig",
    "from_mapping",
    "to_mapping",
    "iter_fields",
    "user_keys",
    "opt",
    "spec",
    "Spec",
]

Spec = dict[str, Any]


def spec(default: Spec | None, registry: str, doc: str, *, optional: bool = False, role: str | None = None) -> Any:
    """A component spec ``{type: name, **kwargs}`` whose name must be in ``registry``.

    ``role``: for schedules, the kind the built object must be (``lr`` or ``loss_weights``).
    """
    value = None if default is None else dict(default)
    return field(
        default_factory=(lambda: None if value is None else dict(value)),
        metadata={"doc": doc, "registry": registry, "optional": optional, "role": role},
    )


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None) -> Any:
    """A plain option with documentation and optional numeric bounds."""
    meta = {"doc": doc, "min": min, "max": max}
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where the training photos come from and how crops are drawn."""

    rainy: str | None = opt(
        "demo:rain/rainy",
        "Folder of real degraded training photos (rainy, snowy or noisy), searched recursively; "
        "no ground truth needed. `demo:<task>/rainy` names the built-in demo data.",
    )
    clean: str | None = opt(
        "demo:rain/clean",
        "Folder of clean photos unrelated to the degraded ones: the backgrounds C of the hard pairs (dt).",
    )
    paired: str | None = opt(
        None,
        "Paired folder with `rain/` and `gt/` subfolders of matching file names, for supervised (sv) training "
        "(not read when `sv.synthesize` degrades the photos of `data.clean` instead).",
    )
    crop_size: int = opt(128, "Side of the square training crops, in pixels.", min=8)
    max_side: int | None = opt(
        None,
        "Working resolution of the training photos (rainy and clean): a photo whose long side exceeds it is shrunk "
        "to it (area average) before its soft label and crops are made, so that rain, crop and filter kernel keep "
        "one scale whatever the camera (null: photos as they are).",
        min=8,
    )
    batch_size: int = opt(8, "Crops per batch (M in the paper).", min=1)
    flip: bool = opt(True, "Random horizontal and vertical flips (applied alike to a crop and its label).")
    small_images: Literal["pad", "skip"] = opt(
        "pad",
        "What to do with an image smaller than the crop: `pad` it by reflection to the crop size, or `skip` it.",
    )
    on_bad_image: Literal["skip", "stop"] = opt(
        "skip",
        "An unreadable image is reported by path and reason and then skipped (`skip`) or stops the run (`stop`).",
    )
    in_memory: bool = opt(
        True,
        "Decode every training image (and its soft label) once and keep it in memory; "
        "false reads each crop's file on demand (large datasets).",
    )
    num_workers: int = opt(0, "Data loader worker processes (0 loads in the training process).", min=0)
    soft_label_cache: str | None = opt(
        "auto",
        "Folder where soft labels are kept between runs, keyed by file content and filter settings "
        "(`auto`: <cache>/soft_labels, the cache being $RESTOREKIT_CACHE or ~/.cache/restorekit; null: not kept).",
    )


@dataclass
class TrainConfig:
    """The optimisation schedule."""

    iters: int = opt(300_000, "Training iterations (the paper: 150K constant + 150K decaying).", min=1)
    optimizer: Literal["adam", "sgd"] = opt("adam", "`adam` (the paper, PReNet, JORDER-E) or `sgd` with momentum (DDN).")
    lr: float = opt(1e-4, "Base learning rate.", min=0.0)
    betas: tuple[float, float] = opt((0.5, 0.999), "Adam betas (the authors' code: 0.5, 0.999).")
    momentum: float = opt(0.9, "SGD momentum.", min=0.0, max=1.0)
    weight_decay: float = opt(0.0, "Weight decay (L2).", min=0.0)
    lr_schedule: Spec = spec(
        {"type": "constant_then_linear"}, "schedulers", "Learning-rate schedule over the iterations.", role="lr"
    )
    ema: float | None = opt(
        None,
        "Decay of an exponential moving average of the backbone's weights (e.g. 0.995: about the last 200 steps), "
        "which is then what is evaluated and saved as the model (null: the last weights). Bias-corrected, so an "
        "early checkpoint averages the steps taken so far rather than keeping the untrained network's weights.",
        min=0.0,
        max=0.9999,
    )
    grad_clip: float | None = opt(None, "Clip the gradient norm to this value (null: no clipping).", min=0.0)
    seed: int = opt(0, "Seed of the network initialisation and of every random draw of the data.")
    on_collapse: Literal["warn", "stop", "restart"] = opt(
        "warn",
        "When distillation stops removing anything (its residual and hard loss stay near zero for 100 iterations): "
        "`warn` in the log and progress output, `stop` the run, or `restart` from the last healthy checkpoint with "
        "the method's rescue (docs: 'When the network learns to do nothing').",
    )
    log_every: int = opt(50, "Log losses every N iterations.", min=1)
    checkpoint_every: int = opt(5000, "Write a resumable checkpoint every N iterations (and at the end).", min=1)
    keep_checkpoints: int = opt(3, "How many recent checkpoints to keep (the final one is always kept).", min=1)
    sample_every: int = opt(
        1000,
        "Every N iterations write a PNG grid: input | soft label | restored | residual | hard pair (0: never).",
        min=0,
    )
    tensorboard: bool = opt(
        False,
        "Also write TensorBoard event files (in <run>/tensorboard/): the scalars of metrics.jsonl and the sample "
        "grids as images. Needs the tensorboard package: pip install 'restorekit[tensorboard]'.",
    )


@dataclass
class EvalConfig:
    """Evaluation on paired held-out data during and after training."""

    data: str | None = opt(
        "demo:rain/test",
        "Paired folder (`rain/` + `gt/`) to evaluate on; null disables evaluation.",
    )
    extra: list[str] = opt(
        [],
        "More paired folders (or `demo:` names) scored at the end of training, each in its own table of input, "
        "filter and network, collected in eval_extra.json (e.g. denoising at the literature's sigma = 15, 25, 50).",
    )
    every: int = opt(0, "Evaluate every N iterations (0: only at the end).", min=0)
    max_images: int | None = opt(None, "Evaluate on at most this many pairs (null: all).", min=1)
    tile: int | None = opt(
        None,
        "Restore evaluation images in tiles of at most this many pixels per side, overlapped by the network's "
        "receptive field: the same result with bounded memory (null: whole images).",
        min=1,
    )


@dataclass
class RuntimeConfig:
    """Where and how the computation runs."""

    device: str = opt("auto", "`auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`.")
    precision: Literal["fp32", "bf16", "auto"] = opt(
        "fp32",
        "Compute precision: `bf16` autocasts convolutions to bfloat16 (fast on CPUs with AVX-512 BF16 or AMX and on "
        "recent GPUs, emulated and ~10× slower elsewhere); `auto` picks bf16 where it is native, else fp32.",
    )
    channels_last: bool = opt(False, "Use the channels-last memory format (faster convolutions on CPU).")
    compile: bool = opt(
        False,
        "`torch.compile` the backbone and detail block for training (Inductor fuses elementwise work; on CPUs "
        "it was slower than eager channels-last bf16 for hagg, so it is off by default).",
    )
    threads: int | None = opt(None, "torch intra-op threads, and OpenCV's for the soft labels (null: their defaults).", min=1)
    work_dir: str | None = opt(None, "Run folder for checkpoints, logs and samples (null: runs/<config name>).")


@dataclass
class Config:
    """A whole run: the method, the network, the data, the schedule and the runtime."""

    method: str = opt(
        "dt",
        "The training method, a name of the methods registry (`restorekit list methods`): `dt`, two-stage data "
        "distillation on unpaired data; `sv`, supervised on pairs. Its options are the section named like it.",
    )
    task: Literal["derain", "desnow", "denoise"] = opt(
        "derain", "What is removed; labels logs and selects the demo data, never the algorithm."
    )
    backbone: Spec = spec({"type": "hagg"}, "backbones", "The restoration network f.")
    #: The methods' option sections by method name (``dt:``, ``sv:``, a plugin method's), each an
    #: instance of that method's ``options`` dataclass. Not a key of its own: each section is a
    #: top-level key named like its method, written after ``backbone``.
    sections: dict[str, Any] = field(default_factory=dict, metadata={"sections": True})
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": DataConfig.__doc__})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": TrainConfig.__doc__})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"doc": EvalConfig.__doc__})
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig, metadata={"doc": RuntimeConfig.__doc__})
    imports: list[str] = opt(
        [],
        "Python modules to import before the registries are used (names, or .py files relative to the config file "
        "that names them), so that a local module can register components without being packaged. Importing runs "
        "their code, so `train` does it only with `--allow-imports`; `validate` and `print-config` never do.",
    )

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a method's section (``config.dt``).
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute or method section {name!r}")


# --------------------------------------------------------------------------- conversion
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_items(annotation: Any) -> type | None:
    """``T`` when ``annotation`` is ``list[T]`` of a dataclass ``T``, else None."""
    if typing.get_origin(annotation) is list:
        (arg,) = typing.get_args(annotation) or (None,)
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg
    return None


def user_keys(cls: type) -> list[str]:
    """The keys a YAML mapping of ``cls`` may hold (for :class:`Config`, besides the methods' sections)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and not f.metadata.get("sections")]


def iter_fields(cls: type, prefix: str = ""):
    """Yield ``(dotted_key, annotation, default, metadata)`` for every leaf option of ``cls``
    (not the methods' sections: iterate each method's ``options`` for those)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("sections"):
            continue
        key = f"{prefix}{f.name}"
        ann = hints[f.name]
        if dataclasses.is_dataclass(ann):
            yield from iter_fields(ann, key + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        yield key, ann, default, dict(f.metadata)


def from_mapping(cls: type, data: Any, *, path: str = "") -> Any:
    """Build the dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types.

    For :class:`Config`, the methods' sections are parsed apart (they depend on the methods
    registry): see :func:`restorekit.config.validate.parse_config`.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of options, got {data!r}", path=path or None)
    hints = _hints(cls)
    # A field the constructor does not take (init=False), or the methods' sections, is not a key.
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("sections")}
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(
                f"unknown key '{key}'.{did_you_mean(str(key), fields)} Valid keys here: {', '.join(fields)}",
                path=where,
            )
    values = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        ann = hints[name]
        if name not in data:
            continue
        raw = data[name]
        if dataclasses.is_dataclass(ann):
            values[name] = from_mapping(ann, raw, path=key_path)
            continue
        item = _dataclass_items(ann)
        if item is not None:  # a list of sections, e.g. the rows of a study file
            if not isinstance(raw, list):
                raise ConfigError(f"expected a list of mappings, got {raw!r}", path=key_path)
            values[name] = [from_mapping(item, v, path=f"{key_path}[{i}]") for i, v in enumerate(raw)]
            continue
        if "registry" in f.metadata:
            if raw is None and not f.metadata.get("optional"):
                raise ConfigError("a component spec is required here (a mapping with 'type')", path=key_path)
            if raw is not None and not isinstance(raw, (Mapping, str)):
                raise ConfigError(f"expected a mapping with 'type', got {raw!r}", path=key_path)
            values[name] = {"type": raw} if isinstance(raw, str) else (None if raw is None else dict(raw))
            continue
        value = check_value(raw, ann, key_path)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if lo is not None and value < lo:
                raise ConfigError(f"must be >= {lo}, got {value!r}", path=key_path)
            if hi is not None and value > hi:
                raise ConfigError(f"must be <= {hi}, got {value!r}", path=key_path)
        values[name] = value
    return cls(**values)


def to_mapping(obj: Any) -> Any:
    """The plain-data (YAML-ready) form of a config dataclass; method sections become top-level keys."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("sections"):
                out.update((name, to_mapping(section)) for name, section in value.items())
            else:
                out[f.name] = to_mapping(value)
        return out
    if isinstance(obj, tuple):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def type_name(annotation: Any) -> str:
    """Human name of a field's type, for the generated reference."""
    return describe(annotation)
