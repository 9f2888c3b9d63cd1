"""restorekit: learn to remove rain, snow and noise from real photos without paired data.

The two-stage data distillation method of *Rain O'er Me* (Lin et al., IEEE TIP 2020), with
registries that let it wrap any backbone. Importing the package loads only the registries:
networks, filters and plugins are imported when a name is first used.

>>> import restorekit
>>> "hagg" in restorekit.BACKBONES.names()
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError, RestorekitError, UnknownNameError
from .registries import (
    BACKBONES,
    DETAIL_BLOCKS,
    FILTERS,
    LOSSES,
    METHODS,
    REGISTRIES,
    SCHEDULERS,
    SYNTHESIZERS,
    get_registry,
)
from .registry import Registry

if TYPE_CHECKING:
    import os

    from .deploy import Model

__version__ = "0.1.0"


def load(model: str | os.PathLike[str], **options: Any) -> Model:
    """A trained model as a callable: ``restorekit.load("runs/dt_hagg_cpu")(photo)``.

    ``photo`` is a NumPy H×W×3 uint8 RGB array, a PIL image or a float tensor in [0, 1]
    (3×H×W or N×3×H×W); the restored photo comes back as the same kind. ``model`` is a model
    file, a run folder or a checkpoint folder, or a built-in model's name. ``options``
    (``device``, ``precision``, ``tile``, ...) are those of :func:`restorekit.deploy.load`, which
    this calls: torch is imported only now, so that ``import restorekit`` stays light.
    """
    from .deploy import load as load_model

    return load_model(model, **options)


__all__ = [
    "METHODS",
    "BACKBONES",
    "DETAIL_BLOCKS",
    "FILTERS",
    "LOSSES",
    "SCHEDULERS",
    "SYNTHESIZERS",
    "REGISTRIES",
    "Registry",
    "get_registry",
    "load",
    "ConfigError",
    "RestorekitError",
    "UnknownNameError",
    "__version__",
]
