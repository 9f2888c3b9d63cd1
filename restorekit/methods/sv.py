"""Supervised training on paired data (the paper's "Ours-sv" baseline), for any backbone."""

from __future__ import annotations

from torch import Tensor, nn

from ..models.contract import run_backbone
from .base import Method, StepOutput

__all__ = ["Supervised"]


class Supervised(Method):
    """The ``sv`` method: ``loss(f-restored degraded, clean)`` on aligned crops.

    Args:
        backbone: the restoration network.
        loss: the supervised loss (the backbone's default when the config names none).
    """

    def __init__(self, backbone: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss = loss

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        degraded, target = batch["degraded"], batch["target"]
        out = run_backbone(self.backbone, degraded)
        loss = self.loss(out.restored, target, restoration=out, rain=degraded - target)
        images = {}
        if want_images:
            images = {"degraded": degraded, "restored": out.restored, "residual": out.residual, "clean": target}
        return StepOutput(loss, {"loss": loss}, {k: v.detach() for k, v in images.items()})
