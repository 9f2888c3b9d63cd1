"""Supervised training (the paper's "Ours-sv" baseline), for any backbone.

On a paired folder (``data.paired``), or on clean photos (``data.clean``) degraded afresh each
batch by a synthesizer (``sv.synthesize``), the way DnCNN and its successors are trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..config.schema import Config, Spec, spec
from ..data.batches import IterationBatches, PairedBatches, SynthesizedPairBatches
from ..data.demo import resolve_folder
from ..data.pairs import PairedSet
from ..models.contract import default_loss_spec, run_backbone
from ..registries import BACKBONES, LOSSES, METHODS, SYNTHESIZERS
from ..synth.base import Synthesizer
from .base import FolderKind, Method, Progress, StepOutput, training_photos

__all__ = ["Supervised", "SupervisedOptions"]


@dataclass
class SupervisedOptions:
    """Options of supervised training (``method: sv``, the paper's "Ours-sv")."""

    loss: Spec | None = spec(None, "losses", "Supervised loss; null uses the backbone's default loss.", optional=True)
    synthesize: Spec | None = spec(
        None,
        "synthesizers",
        "Degradation drawn afresh for each crop of the clean photos of `data.clean` (for example "
        "`{type: gaussian_noise, sigma: [5, 55]}`), instead of reading the pairs of `data.paired`; "
        "null: train on `data.paired`.",
        optional=True,
    )


@METHODS.register("sv")
class Supervised(Method):
    """Supervised training (``method: sv``): ``loss(f-restored degraded, clean)`` on aligned crops.

    Args:
        backbone: the restoration network.
        loss: the supervised loss (the backbone's default when the config names none).
        backbone_spec: the backbone's config spec (recorded in model files).
        synthesizer: when given, training degrades crops of clean photos with it, afresh
            each batch, instead of reading pairs.
    """

    options = SupervisedOptions

    def __init__(
        self,
        backbone: nn.Module,
        loss: nn.Module,
        backbone_spec: dict[str, Any] | None = None,
        synthesizer: Synthesizer | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss = loss
        self.backbone_spec = backbone_spec or {}
        self.synthesizer = synthesizer

    @classmethod
    def from_config(cls, config: Config, options: SupervisedOptions) -> Supervised:
        backbone = BACKBONES.build(config.backbone, path="backbone")
        loss = LOSSES.build(options.loss or default_loss_spec(backbone), path="sv.loss")
        synthesizer = None
        if options.synthesize is not None:
            synthesizer = SYNTHESIZERS.build(options.synthesize, path="sv.synthesize")
        return cls(backbone, loss, config.backbone, synthesizer)

    @classmethod
    def data_folders(cls, config: Config, options: SupervisedOptions) -> dict[str, FolderKind]:
        if options.synthesize is not None:
            return {"data.clean": "photos"}
        return {"data.paired": "pairs"}

    def training_batches(
        self, config: Config, *, rank: int = 0, progress: Progress | None = None
    ) -> tuple[IterationBatches, dict[str, Any]]:
        """Aligned random crops of the pairs of ``data.paired``, or of ``data.clean`` degraded by the synthesizer."""
        data = config.data
        if self.synthesizer is not None:
            clean = training_photos(config, "clean", progress)
            batches: IterationBatches = SynthesizedPairBatches(
                clean, self.synthesizer, crop_size=data.crop_size, batch_size=data.batch_size, flip=data.flip,
                seed=config.train.seed, rank=rank,
            )
            return batches, {"clean": clean.report}
        assert data.paired is not None  # validation checked data_folders()
        pairs = PairedSet(
            resolve_folder(data.paired), on_bad_image=data.on_bad_image, crop_size=data.crop_size,
            small_images=data.small_images,
        )
        batches = PairedBatches(
            pairs, crop_size=data.crop_size, batch_size=data.batch_size, flip=data.flip, seed=config.train.seed,
            rank=rank,
        )
        return batches, {"paired": pairs.report}

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        degraded, target = batch["degraded"], batch["target"]
        out = run_backbone(self.backbone, degraded)
        loss = self.loss(out.restored, target, restoration=out, rain=degraded - target)
        images = {}
        if want_images:
            images = {"degraded": degraded, "restored": out.restored, "residual": out.residual, "clean": target}
        return StepOutput(loss, {"loss": loss}, {k: v.detach() for k, v in images.items()})

    def module_specs(self) -> dict[str, dict[str, Any]]:
        return {"backbone": self.backbone_spec}
