"""What the engine needs from a method, and how a config becomes one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import Tensor, nn

if TYPE_CHECKING:
    from ..config.schema import Config

__all__ = ["Method", "StepOutput", "build_method", "default_loss_spec"]


@dataclass
class StepOutput:
    """One training step: the loss to minimise, scalars to log, and images for the sample grid."""

    loss: Tensor
    logs: dict[str, Tensor | float]
    images: dict[str, Tensor] = field(default_factory=dict)


class Method(nn.Module):
    """A training method owns the backbone (and any training-only modules) and computes the loss.

    Subclasses implement :meth:`training_step`; ``batch`` holds float N×3×H×W tensors in [0, 1].
    Only ``backbone`` is needed at test time.
    """

    backbone: nn.Module

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        """The loss of iteration ``t`` (1-based) on ``batch``, with its logs and, if asked, sample images."""
        raise NotImplementedError

    def training_modules(self) -> dict[str, nn.Module]:
        """Modules saved in checkpoints, by name (``backbone`` first)."""
        return {"backbone": self.backbone}


def default_loss_spec(backbone: nn.Module) -> dict:
    """The backbone's own training loss (the paper: "we use their default loss function"), else SSIM."""
    return {"type": getattr(backbone, "default_loss", None) or "ssim"}


def build_method(config: Config) -> Method:
    """The method a validated config names, with its backbone, losses and schedules built."""
    from ..registries import BACKBONES, DETAIL_BLOCKS, LOSSES, SCHEDULERS
    from .dt import Distillation
    from .sv import Supervised

    backbone = BACKBONES.build(config.backbone, path="backbone")
    if config.method == "sv":
        loss = LOSSES.build(config.sv.loss or default_loss_spec(backbone), path="sv.loss")
        return Supervised(backbone, loss)
    dt = config.dt
    return Distillation(
        backbone,
        detail_block=DETAIL_BLOCKS.build(dt.detail_block, path="dt.detail_block"),
        soft_loss=LOSSES.build(dt.soft_loss, path="dt.soft_loss"),
        hard_loss=LOSSES.build(dt.hard_loss or default_loss_spec(backbone), path="dt.hard_loss"),
        weights=SCHEDULERS.build(dt.weights, path="dt.weights"),
        detach_residual=dt.detach_residual,
        clamp_hard_pair=dt.clamp_hard_pair,
        hard_pair_gain=dt.hard_pair_gain,
        hard_pair_gain_after=dt.hard_pair_gain_after,
        seed=config.train.seed,
        anchor_loss=LOSSES.build(dt.anchor_loss, path="dt.anchor_loss") if dt.anchor_loss else None,
        anchor_weight=dt.anchor_weight,
        hard_pair_floor=dt.hard_pair_floor,
        hard_pair_max_gain=dt.hard_pair_max_gain,
    )
