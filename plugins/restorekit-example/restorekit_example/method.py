"""A training method as a plugin: learn from soft labels alone (distillation's first stage, no hard pairs).

``method: example_soft_only`` trains the network so that ``X - f(X)`` matches the soft label of
each degraded photo, and nothing else. It needs only the degraded photos (no clean ones) and
shows what the hard pairs of ``dt`` add: without them the network learns the filter's blur as
well as the removal of the degradation. It is also the smallest complete method: options, data,
batches, loss and a baseline, each a few lines over restorekit's building blocks.

Its options are the config section named like it::

    method: example_soft_only
    example_soft_only:
      soft_label: {type: median, kernel_size: 15}
      loss: {type: ssim}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from restorekit.config.schema import Config, Spec, spec
from restorekit.data.batches import IterationBatches, random_crop, stack_crops
from restorekit.data.demo import resolve_folder
from restorekit.data.photos import PhotoSet
from restorekit.methods.base import Baseline, FolderKind, Method, Progress, StepOutput
from restorekit.methods.soft_labels import SoftLabelCache, label_cache_folder
from restorekit.models.contract import run_backbone
from restorekit.registries import BACKBONES, FILTERS, LOSSES

__all__ = ["SoftOnly", "SoftOnlyOptions", "SoftLabelBatches"]


@dataclass
class SoftOnlyOptions:
    """Options of learning from soft labels alone (``method: example_soft_only``)."""

    soft_label: Spec = spec({"type": "median", "kernel_size": 15}, "filters", "Filter that makes each photo's soft label.")
    loss: Spec = spec({"type": "ssim"}, "losses", "Loss between the restored photo X - f(X) and its soft label.")


class SoftLabelBatches(IterationBatches):
    """Crops of degraded photos with the same crops of their soft labels."""

    def __init__(self, photos: PhotoSet, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.photos = photos

    def _batch(self, t: int, skipped: list[tuple[str, str]]) -> dict[str, Tensor]:
        rng = self.rng(t)  # a pure function of (seed, t, rank): resumed runs see the same batches
        crops, labels = [], []
        for _ in range(self.batch_size):
            image, label = self.photos.draw(rng, skipped)
            x, y = random_crop([image, label], self.crop_size, rng, self.flip)
            crops.append(x)
            labels.append(y)
        return {"degraded": stack_crops(crops), "soft_label": stack_crops(labels)}


class SoftOnly(Method):
    """Learn ``X - f(X) ≈ soft label`` on degraded photos only (no clean photos, no hard pairs).

    Args:
        backbone: the restoration network f.
        loss: the loss against the soft label.
        soft_label_filter: makes each photo's soft label (scored as a baseline too).
        specs: the config spec of the backbone (recorded in model files).
    """

    options = SoftOnlyOptions

    def __init__(self, backbone: nn.Module, loss: nn.Module, soft_label_filter: Any, specs: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss = loss
        self.soft_label_filter = soft_label_filter
        self.specs = specs

    @classmethod
    def from_config(cls, config: Config, options: SoftOnlyOptions) -> SoftOnly:
        return cls(
            BACKBONES.build(config.backbone, path="backbone"),
            LOSSES.build(options.loss, path="example_soft_only.loss"),
            FILTERS.build(options.soft_label, path="example_soft_only.soft_label"),
            {"backbone": config.backbone},
        )

    @classmethod
    def data_folders(cls, config: Config, options: SoftOnlyOptions) -> dict[str, FolderKind]:
        return {"data.rainy": "photos"}

    def training_batches(
        self, config: Config, *, rank: int = 0, progress: Progress | None = None
    ) -> tuple[SoftLabelBatches, dict[str, Any]]:
        data = config.data
        labels = SoftLabelCache(self.soft_label_filter, label_cache_folder(data.soft_label_cache))
        photos = PhotoSet(
            resolve_folder(data.rainy), crop_size=data.crop_size, small_images=data.small_images,
            on_bad_image=data.on_bad_image, in_memory=data.in_memory, label_cache=labels,
        )
        batches = SoftLabelBatches(
            photos, crop_size=data.crop_size, batch_size=data.batch_size, flip=data.flip, seed=config.train.seed,
            rank=rank,
        )
        return batches, {"rainy": photos.report}

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        out = run_backbone(self.backbone, batch["degraded"])
        loss = self.loss(out.restored, batch["soft_label"])
        images = {}
        if want_images:
            images = {"degraded": batch["degraded"], "soft label": batch["soft_label"], "restored": out.restored}
        return StepOutput(loss, {"loss": loss}, {k: v.detach() for k, v in images.items()})

    def baselines(self) -> list[Baseline]:
        return [Baseline("soft-label filter alone", self.soft_label_filter)]

    def module_specs(self) -> dict[str, dict[str, Any]]:
        return dict(self.specs)
