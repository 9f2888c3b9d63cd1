"""The method contract: everything that differs between training methods, so one engine trains them all.

A training method (``dt``, ``sv``, or a plugin's) is a :class:`Method` registered in
:data:`restorekit.METHODS`. A config names it (``method: dt``) and gives its options in a
section named like it (``dt:``), parsed with the method's :attr:`Method.options` dataclass.
The method owns what only it knows:

* how it is built from a config (:meth:`Method.from_config`), with its backbone and losses;
* which training folders it reads and what each must hold (:meth:`Method.data_folders`),
  checked before any work starts;
* the batches it trains on (:meth:`Method.training_batches`): distillation's degraded photos
  with soft labels and unrelated clean photos, supervised training's aligned pairs;
* the loss of one batch (:meth:`Method.training_step`);
* the classic restorations scored beside the trained network (:meth:`Method.baselines`).

The engine (:mod:`restorekit.engine.trainer`) owns everything else: the loop, checkpoints,
evaluation, the runtime. A new method is one file: a subclass of :class:`Method` with
``@METHODS.register("name")``, and, for a plugin, an entry point in the group
``restorekit.methods`` (the docs' plugin page shows one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..config.schema import Config
    from ..data.batches import IterationBatches
    from ..data.photos import LabelSource, PhotoSet
    from ..data.report import SkipReport

__all__ = ["Method", "StepOutput", "Baseline", "FolderKind", "Progress", "build_method", "training_photos"]

# What a training folder must hold: images ("photos") or a paired folder ("pairs": rain/ + gt/).
FolderKind = Literal["photos", "pairs"]
# Called with (stage, done, total) while data loads, e.g. ("rainy soft labels", 40, 61).
Progress = Callable[[str, int, int], None]


def training_photos(
    config: Config, key: str, progress: Progress | None = None, label_cache: LabelSource | None = None
) -> PhotoSet:
    """The photos of the training folder ``data.<key>``, decoded with the config's crop and image options.

    ``progress`` sees each loading stage named after the folder ("rainy photos", "clean soft labels").
    """
    from ..data.demo import resolve_folder
    from ..data.photos import PhotoSet

    data = config.data
    folder = getattr(data, key)
    assert folder is not None  # validation checked the method's data_folders()
    report = None if progress is None else (lambda stage, done, total: progress(f"{key} {stage}", done, total))
    return PhotoSet(
        resolve_folder(folder), crop_size=data.crop_size, small_images=data.small_images,
        on_bad_image=data.on_bad_image, in_memory=data.in_memory, max_side=data.max_side,
        label_cache=label_cache, progress=report,
    )


@dataclass
class StepOutput:
    """One training step: the loss to minimise, scalars to log, and images for the sample grid."""

    loss: Tensor
    logs: dict[str, Tensor | float]
    images: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A classic restoration scored beside the trained network (the soft-label filter alone, for ``dt``)."""

    label: str
    restore: Callable[[np.ndarray], np.ndarray]


class Method(nn.Module):
    """A training method: owns the backbone (and any training-only modules) and computes the loss.

    ``batch`` holds float N×3×H×W tensors in [0, 1] under the keys the method's own batch
    source makes. Only ``backbone`` is needed at test time.
    """

    #: The dataclass of the method's config section (named like the method), or None when it has no options.
    options: ClassVar[type | None] = None

    backbone: nn.Module

    @classmethod
    def from_config(cls, config: Config, options: Any) -> Method:
        """The method a validated config describes; ``options`` is its own section (None without one)."""
        raise NotImplementedError

    @classmethod
    def data_folders(cls, config: Config, options: Any) -> dict[str, FolderKind]:
        """The config keys of the training folders this method reads, and what each must hold.

        Validation checks each before any work starts (a missing value fails as a missing folder).
        """
        raise NotImplementedError

    def training_batches(
        self, config: Config, *, rank: int = 0, progress: Progress | None = None
    ) -> tuple[IterationBatches, dict[str, SkipReport]]:
        """The batch source of iteration ``t`` → batch, and what was skipped while loading each folder."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        """The loss of iteration ``t`` (1-based) on ``batch``, with its logs and, if asked, sample images."""
        raise NotImplementedError

    def baselines(self) -> list[Baseline]:
        """Restorations to score beside the degraded input and the network at the end of a run."""
        return []

    def rescue(self, attempt: int) -> str:
        """What ``train.on_collapse: restart`` changes before going back to a healthy state
        (attempt 1, 2, ...); returns what it did. A method that can collapse to the identity logs
        ``removed`` and ``hard`` for the guard (:mod:`restorekit.engine.collapse`) and says here
        how it gets out."""
        return "nothing changed (this method has no rescue)"

    def training_modules(self) -> dict[str, nn.Module]:
        """Modules saved in checkpoints, by name (``backbone`` first)."""
        return {"backbone": self.backbone}

    def module_specs(self) -> dict[str, dict[str, Any]]:
        """The config spec of each of :meth:`training_modules`, recorded in model files to rebuild them."""
        raise NotImplementedError


def build_method(config: Config) -> Method:
    """The method a validated config names, with its backbone, losses and schedules built."""
    from ..registries import METHODS

    return METHODS.get(config.method).from_config(config, config.sections.get(config.method))
