"""The registry instances and the static tables of built-in entries.

Each built-in is declared here by import path, so ``restorekit list backbones`` imports no
network code and ``BACKBONES.get("hagg")`` imports only :mod:`restorekit.models.hagg`. The
modules also carry the registration decorator next to each class, which is what a reader sees;
a test checks that this table and the decorators agree.
"""

from __future__ import annotations

import inspect
from typing import Any

from .registry import Registry

__all__ = [
    "METHODS",
    "BACKBONES",
    "DETAIL_BLOCKS",
    "FILTERS",
    "LOSSES",
    "SCHEDULERS",
    "SYNTHESIZERS",
    "REGISTRIES",
    "get_registry",
]


def _callable_contract(obj: Any) -> str | None:
    return None if callable(obj) else "is not callable"


def _is_module(instance: Any) -> str | None:
    import torch.nn as nn

    return None if isinstance(instance, nn.Module) else f"{type(instance).__name__}, not a torch.nn.Module"


def _is_filter(instance: Any) -> str | None:
    from .filters.base import SoftLabelFilter

    if isinstance(instance, SoftLabelFilter):
        return None
    return f"{type(instance).__name__}, not a restorekit.filters.SoftLabelFilter"


def _is_schedule(instance: Any) -> str | None:
    from .schedulers.base import LossWeightSchedule, LRSchedule

    if isinstance(instance, (LossWeightSchedule, LRSchedule)):
        return None
    return f"{type(instance).__name__}, not a LossWeightSchedule or LRSchedule"


def _is_synthesizer(instance: Any) -> str | None:
    from .synth.base import Synthesizer

    return None if isinstance(instance, Synthesizer) else f"{type(instance).__name__}, not a Synthesizer"


def _class_contract(base_path: str):
    """Registered classes must subclass the kind's base class; factories are checked when built."""

    def check(obj: Any) -> str | None:
        if not callable(obj):
            return "is not callable"
        if inspect.isclass(obj):
            module_name, attr = base_path.split(":")
            import importlib

            base = getattr(importlib.import_module(module_name), attr)
            if not issubclass(obj, base):
                return f"is a class but not a subclass of {attr}"
        return None

    return check


METHODS = Registry(
    "method", group="restorekit.methods", contract=_class_contract("restorekit.methods.base:Method")
)
BACKBONES = Registry(
    "backbone", group="restorekit.backbones", contract=_class_contract("torch.nn:Module"), instance_check=_is_module
)
DETAIL_BLOCKS = Registry(
    "detail_block",
    group="restorekit.detail_blocks",
    contract=_class_contract("torch.nn:Module"),
    instance_check=_is_module,
)
FILTERS = Registry(
    "filter",
    group="restorekit.filters",
    contract=_class_contract("restorekit.filters.base:SoftLabelFilter"),
    instance_check=_is_filter,
)
LOSSES = Registry(
    "loss", group="restorekit.losses", contract=_class_contract("torch.nn:Module"), instance_check=_is_module
)
SCHEDULERS = Registry(
    "scheduler", group="restorekit.schedulers", contract=_callable_contract, instance_check=_is_schedule
)
SYNTHESIZERS = Registry(
    "synthesizer",
    group="restorekit.synthesizers",
    contract=_class_contract("restorekit.synth.base:Synthesizer"),
    instance_check=_is_synthesizer,
)

#: Registries by plural name, as the command line and the docs address them.
REGISTRIES: dict[str, Registry] = {
    "methods": METHODS,
    "backbones": BACKBONES,
    "detail_blocks": DETAIL_BLOCKS,
    "filters": FILTERS,
    "losses": LOSSES,
    "schedulers": SCHEDULERS,
    "synthesizers": SYNTHESIZERS,
}


def get_registry(kind: str) -> Registry:
    """The registry for ``kind`` (plural or singular: ``backbones`` or ``backbone``)."""
    from .errors import UnknownNameError, did_you_mean

    key = kind if kind in REGISTRIES else kind + "s"
    if key not in REGISTRIES:
        raise UnknownNameError(
            f"unknown registry '{kind}'.{did_you_mean(kind, REGISTRIES)} Known: {', '.join(REGISTRIES)}"
        )
    return REGISTRIES[key]


# --------------------------------------------------------------------------- built-in tables
_BUILTINS: dict[Registry, dict[str, str]] = {
    METHODS: {
        "dt": "restorekit.methods.dt:Distillation",
        "sv": "restorekit.methods.sv:Supervised",
    },
    BACKBONES: {
        "hagg": "restorekit.models.hagg:HAgg",
        "ddn": "restorekit.models.ddn:DDN",
        "prenet": "restorekit.models.prenet:prenet",
        "prn": "restorekit.models.prenet:prn",
        "prenet_r": "restorekit.models.prenet:prenet_r",
        "prn_r": "restorekit.models.prenet:prn_r",
        "jordere": "restorekit.models.jordere:JORDERE",
        "rescan": "restorekit.models.rescan:rescan",
        "rescan_rnn": "restorekit.models.rescan:rescan_rnn",
        "rescan_lstm": "restorekit.models.rescan:rescan_lstm",
        "spanet": "restorekit.models.spanet:SPANet",
        "didmdn": "restorekit.models.didmdn:DIDMDN",
        "umrl": "restorekit.models.umrl:UMRL",
        "dncnn": "restorekit.models.dncnn:DnCNN",
        "dncnn_s": "restorekit.models.dncnn:dncnn_s",
        "cdncnn_b": "restorekit.models.dncnn:cdncnn_b",
    },
    DETAIL_BLOCKS: {
        "deb": "restorekit.models.deb:DetailEnhancementBlock",
        "deb_did": "restorekit.models.deb:DetailEnhancementBlockDID",
    },
    FILTERS: {
        "median": "restorekit.filters.classic:MedianFilter",
        "gaussian": "restorekit.filters.classic:GaussianFilter",
        "mean": "restorekit.filters.classic:MeanFilter",
        "bilateral": "restorekit.filters.classic:BilateralFilter",
        "nlm": "restorekit.filters.classic:NonLocalMeansFilter",
    },
    LOSSES: {
        "ssim": "restorekit.losses.ssim:SSIMLoss",
        "l1": "restorekit.losses.pixel:L1Loss",
        "mse": "restorekit.losses.pixel:MSELoss",
        "lowpass": "restorekit.losses.lowpass:LowPassL1Loss",
        "jordere": "restorekit.losses.structured:JORDERELoss",
        "rescan": "restorekit.losses.backbones:RESCANLoss",
        "spanet": "restorekit.losses.backbones:SPANetLoss",
        "didmdn": "restorekit.losses.backbones:DIDMDNLoss",
        "umrl": "restorekit.losses.backbones:UMRLLoss",
    },
    SCHEDULERS: {
        "dynamic": "restorekit.schedulers.loss_weights:DynamicWeights",
        "fixed": "restorekit.schedulers.loss_weights:FixedWeights",
        "constant_then_linear": "restorekit.schedulers.lr:ConstantThenLinear",
        "multistep": "restorekit.schedulers.lr:MultiStep",
    },
    SYNTHESIZERS: {
        "rain": "restorekit.synth.rain:RainSynthesizer",
        "snow": "restorekit.synth.snow:SnowSynthesizer",
        "gaussian_noise": "restorekit.synth.noise:GaussianNoise",
        "poisson_gaussian_noise": "restorekit.synth.noise:PoissonGaussianNoise",
    },
}

for _registry, _table in _BUILTINS.items():
    for _name, _target in _table.items():
        _registry.add_lazy(_name, _target)
