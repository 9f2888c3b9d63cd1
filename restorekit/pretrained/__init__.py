"""The models restorekit ships: weights only, inside the package, never downloaded.

Each entry names a model file in this folder. :mod:`restorekit.deploy` registers them as
built-in models, so ``restorekit.load("real-rain")``, ``restorekit restore --model real-rain``
and ``restorekit list models`` know them; the model card of each (training data, command,
scores, limits) is in the docs, *Built-in models*.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SHIPPED", "DEFAULT_MODEL", "model_file"]

#: name -> (model file in this folder, one line on what it is)
SHIPPED: dict[str, tuple[str, str]] = {
    "real-rain": (
        "real_rain_hagg.safetensors",
        (
            "rain streaks in real photos: the paper's network (hagg, 16 channels, 6 blocks) distilled on CPU from "
            "61 real rainy photos without ground truth and 48 unrelated clean photos"
        ),
    ),
}

#: What `restorekit restore` uses when neither --checkpoint nor --model is given.
DEFAULT_MODEL = "real-rain"


def model_file(name: str) -> Path:
    """The installed file of the shipped model ``name`` (it may be missing from a broken install)."""
    return Path(str(resources.files(__name__).joinpath(SHIPPED[name][0])))
