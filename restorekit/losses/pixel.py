"""Pixel losses: L1 and MSE (DDN's default)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import LOSSES

__all__ = ["L1Loss", "MSELoss"]


@LOSSES.register("l1")
class L1Loss(nn.Module):
    """Mean absolute error."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        return F.l1_loss(pred.float(), target.float())


@LOSSES.register("mse")
class MSELoss(nn.Module):
    """Mean squared error (DDN's training loss)."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        return F.mse_loss(pred.float(), target.float())
