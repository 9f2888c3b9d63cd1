"""Losses that supervise a backbone's auxiliary outputs as well as its image.

``jordere``: JORDER-E's joint detection-and-removal objective (Yang et al., TPAMI 2020)::

    L = L1(x2, B) + L1(x1, B)
        + w_mask  · CE(mask_logits, rain_mask)      # per-pixel 2-class cross-entropy, mean
        + w_level · L1(level, B - O)                # rain level regression

where ``x2`` is the final image (``pred``), ``x1`` the first stage's image, ``B`` the clean
target and ``O - B`` the known rain layer, passed as ``ctx["rain"]``. For data distillation's
hard pairs the rain is known exactly (``D - C``), and for supervised pairs it is the
difference of the pair, so the loss works for both ``dt`` and ``sv``.

Targets and how they differ from the official code
--------------------------------------------------
* **Mask.** A pixel is rain when the channel-mean of the rain layer exceeds
  ``mask_threshold`` (default 0.02, about 5 grey levels). The official trainer uses
  ``(B - O)[:, 0] > 0``, i.e. the clean image brighter than the rainy one in the red channel:
  with additive rain (``O = B + R``, ``R >= 0``) that marks almost no pixel, and never a
  rain streak, so its mask head learns "no rain" everywhere. We use the intended meaning,
  rain present, on all channels (rain streaks are nearly grey) with a threshold that ignores
  quantisation noise.
* **Level.** Kept as in the official code: the level map regresses ``B - O = -rain``, the
  signed layer that the image needs added. Its sign only fixes a convention for the head.
* **Scale.** The official code works in 0–255 pixel units, where the L1 terms are 255×
  larger and the cross-entropy is not; here images are in [0, 1], so at the same weights the
  mask term counts relatively more. The cross-entropy is the per-pixel mean. Both weights
  are arguments.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..registries import LOSSES
from .base import Loss

__all__ = ["JORDERELoss", "rain_mask_target"]


def rain_mask_target(rain: Tensor, threshold: float = 0.02) -> Tensor:
    """Per-pixel class index (N×H×W, int64): 1 where the channel-mean rain exceeds ``threshold``."""
    return (rain.float().mean(dim=1) > threshold).long()


@LOSSES.register("jordere")
class JORDERELoss(Loss):
    """JORDER-E's loss: L1 on both stages + mask cross-entropy + level L1.

    Needs ``ctx["restoration"]`` (a :class:`~restorekit.models.Restoration` whose ``aux``
    holds ``"stage1"``, ``"mask_logits"`` and ``"level"``, as the ``jordere`` backbone
    returns) and ``ctx["rain"]`` (``degraded - clean``, N×3×H×W).

    Args:
        mask_weight: weight of the mask cross-entropy (1e-3 in the paper's code).
        level_weight: weight of the level L1 (1e-2 in the paper's code).
        mask_threshold: channel-mean rain above which a pixel counts as rain.
    """

    aux_keys = ("stage1", "mask_logits", "level")

    def __init__(self, mask_weight: float = 1e-3, level_weight: float = 1e-2, mask_threshold: float = 0.02) -> None:
        super().__init__()
        if mask_weight < 0 or level_weight < 0:
            raise ValueError(f"jordere loss weights must be >= 0, got {mask_weight} and {level_weight}")
        self.mask_weight = mask_weight
        self.level_weight = level_weight
        self.mask_threshold = mask_threshold

    def _needed(self, ctx: dict[str, object]) -> tuple[dict[str, Tensor], Tensor]:
        restoration = ctx.get("restoration")
        rain = ctx.get("rain")
        aux = getattr(restoration, "aux", None)
        missing = []
        if not isinstance(aux, dict) or any(k not in aux for k in self.aux_keys):
            missing.append(
                "restoration= (the backbone's Restoration, with aux "
                + ", ".join(repr(k) for k in self.aux_keys)
                + ": use the 'jordere' backbone)"
            )
        if not isinstance(rain, Tensor):
            missing.append("rain= (the known rain layer degraded - clean, N×3×H×W)")
        if missing:
            raise ValueError(
                "the 'jordere' loss supervises the stage-1 image, the rain mask and the rain level, "
                "so it needs " + " and ".join(missing) + "; use a pixel loss ('l1') where these are unknown"
            )
        return aux, rain  # type: ignore[return-value]

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        aux, rain = self._needed(ctx)
        if rain.shape != target.shape:
            raise ValueError(f"ctx['rain'] must have the target's shape {tuple(target.shape)}, got {tuple(rain.shape)}")
        target = target.float()
        rain = rain.float()
        image_loss = F.l1_loss(pred.float(), target) + F.l1_loss(aux["stage1"].float(), target)
        mask_loss = F.cross_entropy(aux["mask_logits"].float(), rain_mask_target(rain, self.mask_threshold))
        level_loss = F.l1_loss(aux["level"].float(), -rain)
        return image_loss + self.mask_weight * mask_loss + self.level_weight * level_loss
