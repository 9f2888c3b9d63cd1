"""Two-stage data distillation (paper Algorithm 1; DESIGN §2).

Per iteration ``t``, for rainy crops ``X`` with soft labels ``Y_s`` and unrelated clean crops ``C``:

1. ``R = f(X)``, ``R_e = g(R)``, ``Y_e = X - R_e``                 (rain distilled from X)
2. ``D = clamp(C + R_e.detach(), 0, 1)``                             (the hard pair: rain on a sharp image)
3. ``C_hat = D - f(D)``                                             (same network, shared weights)
4. ``L = alpha(t) · L_H(C_hat, C) + beta(t) · L_S(Y_e, Y_s)``

The soft label supervises the detail block's output ``Y_e`` of the *final* residual (for
multi-stage backbones, the last stage); the hard objective supervises the backbone's own output
on the hard pair, through its default loss when it has one, and sees every auxiliary output
(PReNet's stages, JORDER-E's mask and level, whose targets come from the known rain ``D - C``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..models.contract import run_backbone
from ..schedulers.base import LossWeightSchedule
from .base import Method, StepOutput

__all__ = ["Distillation", "residual_stats"]


def residual_stats(rainy: Tensor, soft_label: Tensor, rain_residual: Tensor) -> dict[str, Tensor]:
    """What the network still removes, for the log and the collapse guard (no gradient, no sync).

    ``removed``: RMS of the distilled residual ``g(R)`` over RMS of the soft residual
    ``X - Y_s`` (everything the filter takes away: rain and detail). A healthy run keeps it
    well above zero; when it falls towards 0 the hard pair ``D`` approaches ``C`` and the
    network is becoming the identity. ``offset``: mean of ``X - g(R)`` minus mean of ``Y_s``, in
    grey levels (0-255): the soft output's brightness against the label's, which is rain-free in
    its low frequencies.
    """
    with torch.no_grad():
        r = rain_residual.detach().float()
        soft = (rainy - soft_label).float()
        removed = r.pow(2).mean().sqrt() / soft.pow(2).mean().sqrt().clamp_min(1e-6)
        offset = (soft - r).mean() * 255.0
    return {"removed": removed, "offset": offset}


class Distillation(Method):
    """The ``dt`` method.

    Args:
        backbone: the restoration network f.
        detail_block: the detail enhancement block g (training only).
        soft_loss: L_S, between ``X - g(R)`` and the soft label.
        hard_loss: L_H, between the restored hard pair and its clean image.
        weights: the ``alpha(t), beta(t)`` schedule.
        detach_residual: stop gradients through ``g(R)`` into the hard pair (the authors' code).
        clamp_hard_pair: clamp ``D`` to [0, 1] (the authors' code).
        hard_pair_gain: optional ``(low, high)``: scale ``g(R)`` by a random factor per sample.
        hard_pair_gain_after: iteration from which the gain applies.
        seed: seeds the gain draws (a pure function of seed and iteration, so resume is exact).
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        detail_block: nn.Module,
        soft_loss: nn.Module,
        hard_loss: nn.Module,
        weights: LossWeightSchedule,
        detach_residual: bool = True,
        clamp_hard_pair: bool = True,
        hard_pair_gain: tuple[float, float] | None = None,
        hard_pair_gain_after: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.detail_block = detail_block
        self.soft_loss = soft_loss
        self.hard_loss = hard_loss
        self.weights = weights
        self.detach_residual = detach_residual
        self.clamp_hard_pair = clamp_hard_pair
        self.hard_pair_gain = hard_pair_gain
        self.hard_pair_gain_after = hard_pair_gain_after
        self.seed = seed

    def training_modules(self) -> dict[str, nn.Module]:
        return {"backbone": self.backbone, "detail_block": self.detail_block}

    def _gain(self, t: int, like: Tensor) -> Tensor | None:
        if self.hard_pair_gain is None or t < self.hard_pair_gain_after:
            return None
        low, high = self.hard_pair_gain
        draws = np.random.default_rng([self.seed, t, 0xD1D]).uniform(low, high, size=like.shape[0])
        return torch.as_tensor(draws, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        rainy, soft_label, clean = batch["degraded"], batch["soft_label"], batch["clean"]

        first = run_backbone(self.backbone, rainy)
        rain_residual = self.detail_block(first.residual)
        soft_restored = rainy - rain_residual

        distilled_rain = rain_residual.detach() if self.detach_residual else rain_residual
        gain = self._gain(t, distilled_rain)
        if gain is not None:
            distilled_rain = distilled_rain * gain
        hard_pair = clean + distilled_rain
        if self.clamp_hard_pair:
            hard_pair = hard_pair.clamp(0.0, 1.0)

        second = run_backbone(self.backbone, hard_pair)
        hard_restored = second.restored

        loss_soft = self.soft_loss(soft_restored, soft_label)
        loss_hard = self.hard_loss(hard_restored, clean, restoration=second, rain=hard_pair - clean)
        alpha, beta = self.weights(t)
        loss = alpha * loss_hard + beta * loss_soft

        images = {}
        if want_images:
            images = {
                "rainy": rainy,
                "soft label": soft_label,
                "restored": first.restored,
                "rain residual": first.residual,
                "hard pair": hard_pair,
                "hard restored": hard_restored,
            }
        logs = {"loss": loss, "soft": loss_soft, "hard": loss_hard, "alpha": alpha, "beta": beta}
        logs.update(residual_stats(rainy, soft_label, rain_residual))
        return StepOutput(loss, logs, {k: v.detach() for k, v in images.items()})
