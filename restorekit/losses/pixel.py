"""Pixel losses: L1 and MSE (DDN's default)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..registries import LOSSES
from .base import Loss

__all__ = ["L1Loss", "MSELoss"]


@LOSSES.register("l1")
class L1Loss(Loss):
    """Mean absolute error."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        return F.l1_loss(pred.float(), target.float())


@LOSSES.register("mse")
class MSELoss(Loss):
    """Mean squared error (DDN's training loss)."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        return F.mse_loss(pred.float(), target.float())
