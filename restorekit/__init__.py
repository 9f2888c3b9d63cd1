"""restorekit: learn to remove rain, snow and noise from real photos without paired data.

The two-stage data distillation method of *Rain O'er Me* (Lin et al., IEEE TIP 2020), with
registries that let it wrap any backbone. Importing the package loads only the registries:
networks, filters and plugins are imported when a name is first used.

>>> import restorekit
>>> "hagg" in restorekit.BACKBONES.names()
True
"""

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

__version__ = "0.1.0"

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
    "ConfigError",
    "RestorekitError",
    "UnknownNameError",
    "__version__",
]
