"""A trained model as one Python call: ``restorekit.load(path)(photo)``.

:func:`load` finds the model file (a ``.safetensors`` model file, a run folder or a
checkpoint folder, or the name of a built-in model), rebuilds its network
(:func:`restorekit.model_file.load_model`: no code from the file is executed) and wraps it in a
:class:`restorekit.inference.Restorer`. The :class:`Model` it returns is called with a photo
and gives back the restored photo of the same kind:

* a NumPy ``H×W×3`` ``uint8`` RGB array → the same;
* a PIL image → a PIL image of the same mode (``RGB``; ``RGBA`` keeps its alpha; ``L`` is
  restored in colour and returned grey; other modes come back ``RGB``);
* a float tensor ``3×H×W`` or ``N×3×H×W`` in [0, 1] → the same shape, dtype and device.

Built-in models are names for model files that ship with restorekit or a package (nothing is
downloaded): :data:`BUILTIN_MODELS`, filled by :func:`register_builtin`; restorekit's own are
those of :mod:`restorekit.pretrained`. A name that is neither a path nor a built-in model is an
error that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import CheckpointError, did_you_mean
from .inference import Restorer
from .model_file import LoadedModel, load_model

__all__ = ["Model", "load", "BuiltinModel", "BUILTIN_MODELS", "register_builtin", "builtin_names", "resolve_model"]


@dataclass(frozen=True)
class BuiltinModel:
    """A model that restorekit (or an installed package) ships, known by name.

    Attributes:
        name: what :func:`load` accepts, e.g. ``"real-rain"``.
        description: one line: what it removes, what it was trained on.
        locate: returns the model file on this machine (a package's data file); never downloads.
    """

    name: str
    description: str
    locate: Callable[[], Path]


#: The built-in models by name, restorekit's own (:mod:`restorekit.pretrained`) and any that a
#: package adds with :func:`register_builtin`.
BUILTIN_MODELS: dict[str, BuiltinModel] = {}


def register_builtin(name: str, description: str, locate: Callable[[], Path]) -> BuiltinModel:
    """Make ``restorekit.load(name)`` load the model file ``locate()`` returns."""
    if name in BUILTIN_MODELS:
        raise ValueError(f"a built-in model named {name!r} is already registered")
    entry = BuiltinModel(name, description, locate)
    BUILTIN_MODELS[name] = entry
    return entry


def _register_shipped() -> None:
    from . import pretrained

    for name, (_, description) in pretrained.SHIPPED.items():
        register_builtin(name, description, lambda name=name: pretrained.model_file(name))


_register_shipped()


def builtin_names() -> list[str]:
    """The names :func:`load` accepts besides paths, sorted."""
    return sorted(BUILTIN_MODELS)


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """The model file, run folder or checkpoint folder ``model`` names."""
    if not isinstance(model, str) or Path(model).expanduser().exists():
        return Path(model).expanduser()
    if model in BUILTIN_MODELS:
        path = Path(BUILTIN_MODELS[model].locate())
        if not path.exists():
            raise CheckpointError(f"built-in model {model!r}: its file {path} is missing from this installation")
        return path
    names = builtin_names()
    listed = ", ".join(names) if names else "none yet"
    raise CheckpointError(
        f"{model!r}: no such model file or folder, and not the name of a built-in model "
        f"(built-in models: {listed}).{did_you_mean(str(model), names)} Give a model file (model.safetensors), "
        "a run folder of `restorekit train` or a checkpoint folder."
    )


class Model:
    """A trained network ready to restore photos: call it with a photo, get the restored photo.

    Made by :func:`load`. Its parts stay reachable: ``restorer`` (the
    :class:`restorekit.inference.Restorer`: tiles, precision, the device), :attr:`backbone`
    (the ``nn.Module``), :attr:`spec` and :attr:`info` (what the model file records) and
    :attr:`path`.
    """

    def __init__(self, loaded: LoadedModel, restorer: Restorer) -> None:
        self.loaded = loaded
        self.restorer = restorer

    @property
    def backbone(self) -> torch.nn.Module:
        """The network (in eval mode, on :attr:`device`)."""
        return self.restorer.backbone

    @property
    def spec(self) -> dict[str, Any]:
        """The network's config spec, e.g. ``{"type": "hagg", "channels": 16, ...}``."""
        return self.loaded.spec

    @property
    def info(self) -> dict[str, Any]:
        """What the model file records of how it was made (method, task, config name, iteration)."""
        return self.loaded.info

    @property
    def path(self) -> Path:
        """The model file."""
        return self.loaded.path

    @property
    def device(self) -> torch.device:
        """Where the network computes."""
        return self.restorer.device

    def __repr__(self) -> str:
        tile = f", tile={self.restorer.tile}" if self.restorer.tile else ""
        network = self.spec.get("type", "?")
        return f"Model({network} from {self.path}, device={self.device}, precision={self.restorer.precision}{tile})"

    def __call__(self, image: Any) -> Any:
        """Restore one photo (NumPy uint8 array, PIL image or float tensor); returns the same kind."""
        if isinstance(image, np.ndarray):
            return self._array(image)
        if isinstance(image, torch.Tensor):
            return self._tensor(image)
        if type(image).__module__.startswith("PIL.") and hasattr(image, "convert"):
            return self._pil(image)
        raise TypeError(
            f"expected a NumPy H×W×3 uint8 RGB array, a PIL image or a float tensor (3×H×W or N×3×H×W in [0, 1]), "
            f"got {type(image).__module__}.{type(image).__qualname__}"
        )

    def _array(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H×W×3 uint8 RGB array, got {image.dtype} of shape {image.shape} "
                "(a float tensor in [0, 1] or a PIL image work too)"
            )
        return self.restorer(image)

    def _tensor(self, image: torch.Tensor) -> torch.Tensor:
        if not image.is_floating_point():
            raise ValueError(f"expected a float tensor in [0, 1], got {image.dtype} (a uint8 NumPy array works too)")
        batch = image.unsqueeze(0) if image.dim() == 3 else image
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a tensor of shape 3×H×W or N×3×H×W, got {tuple(image.shape)}")
        restored = self.restorer.restore_tensor(batch.detach().float())
        restored = restored.to(device=image.device, dtype=image.dtype)
        return restored[0] if image.dim() == 3 else restored

    def _pil(self, image: Any) -> Any:
        from PIL import Image

        mode = image.mode
        restored = Image.fromarray(self.restorer(np.array(image.convert("RGB"))), "RGB")
        if mode == "RGBA":
            restored.putalpha(image.getchannel("A"))
            return restored
        if mode == "L":
            return restored.convert("L")
        return restored


def load(
    model: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> Model:
    """Load a trained model for restoring photos from Python.

    Args:
        model: a model file (``model.safetensors``), a run folder of ``restorekit train`` or a
            checkpoint folder; or the name of a built-in model (:data:`BUILTIN_MODELS`).
        device: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32`` (the reference), ``bf16`` autocast, or ``auto`` (bf16 where the
            hardware has it natively).
        tile: restore in tiles of at most this many pixels per side, overlapped by the network's
            receptive field: the same result with bounded memory (None: whole images).
        channels_last: the channels-last memory format (faster convolutions on CPUs).
        compile: ``torch.compile`` the network (the first image of each size is slow).

    Raises:
        CheckpointError: no such model, or not a readable restorekit model file.
        ConfigError: an unknown device.
    """
    where = resolve_device(device)
    loaded = load_model(resolve_model(model), where)
    restorer = Restorer(
        loaded.backbone, where, precision=precision, channels_last=channels_last, compile=compile, tile=tile
    )
    return Model(loaded, restorer)
