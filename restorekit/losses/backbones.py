"""The default losses of RESCAN, SPANet, DID-MDN and UMRL: each sees its network's auxiliary
outputs (through ``ctx["restoration"]``) and, where it needs one, the known rain layer
``ctx["rain"] = degraded - clean`` of a hard (``dt``) or supervised (``sv``) pair.

``rescan``
    ``Σ_s MSE(R_s, rain)`` over RESCAN's stages (its authors' loss).
``spanet``
    ``L1(y, B) + (1 - SSIM(y, B)) + MSE(A, M)``: SPANet's authors' loss, ``A`` the first
    attention map and ``M`` a binary rain mask of the known rain.
``didmdn``
    ``L1(y, B) + w · CE(density logits, density class of the known rain)``.
``umrl``
    UMRL's confidence-guided multi-scale loss: smooth L1 of the confidence-weighted error at
    full, half and quarter scale (weights 1, 0.5, 0.25), minus ``λ`` times the log-confidences.

Departures from the authors' code, all forced or argued in the class docstrings: the
perceptual (VGG-16) terms of DID-MDN and UMRL are left out (they need ImageNet weights, and
restorekit downloads nothing); SPANet's mask marks rain above a threshold, not any change of
one grey level; DID-MDN's density classes come from the rain's coverage.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registries import LOSSES
from .base import Loss
from .ssim import ssim
from .structured import rain_mask_target

__all__ = ["RESCANLoss", "SPANetLoss", "DIDMDNLoss", "UMRLLoss", "density_class", "DENSITY_CLASSES"]

#: DID-MDN's label order, that of the authors' training data (0 heavy, 1 medium, 2 light).
DENSITY_CLASSES = ("heavy", "medium", "light")


def _context(name: str, backbone: str, ctx: dict[str, object], aux_keys: tuple[str, ...], rain: bool) -> tuple:
    """``(aux, rain)`` from ``ctx``, or a ValueError naming what is missing and why."""
    aux = getattr(ctx.get("restoration"), "aux", None)
    known = ctx.get("rain")
    missing = []
    if aux_keys and (not isinstance(aux, dict) or any(k not in aux for k in aux_keys)):
        keys = ", ".join(repr(k) for k in aux_keys)
        missing.append(f"restoration= (the backbone's Restoration, with aux {keys}: use the '{backbone}' backbone)")
    if rain and not isinstance(known, Tensor):
        missing.append("rain= (the known rain layer degraded - clean, N×3×H×W)")
    if missing:
        raise ValueError(
            f"the '{name}' loss needs " + " and ".join(missing) + "; use a pixel loss ('l1') where these are unknown"
        )
    return aux, known


def _check_rain(rain: Tensor, target: Tensor) -> Tensor:
    if rain.shape != target.shape:
        raise ValueError(f"ctx['rain'] must have the target's shape {tuple(target.shape)}, got {tuple(rain.shape)}")
    return rain.float()


@LOSSES.register("rescan")
class RESCANLoss(Loss):
    """RESCAN's loss: the sum over stages of the MSE between each stage's rain layer and the true rain.

    Needs ``ctx["restoration"].aux["stage_rain"]`` (N×S×3×H×W, as the ``rescan`` backbones
    return) and ``ctx["rain"]``. ``pred`` and ``target`` are not used: the last stage's rain
    is ``degraded - pred``, so its term is the MSE of the image.
    """

    aux_keys = ("stage_rain",)

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        aux, rain = _context("rescan", "rescan", ctx, self.aux_keys, rain=True)
        rain = _check_rain(rain, target)
        stages = aux["stage_rain"].float()
        return F.mse_loss(stages, rain[:, None].expand_as(stages), reduction="none").mean(dim=(0, 2, 3, 4)).sum()


@LOSSES.register("spanet")
class SPANetLoss(Loss):
    """SPANet's loss: ``L1(y, B) + (1 - SSIM(y, B)) + MSE(attention, rain mask)``.

    Needs ``ctx["restoration"].aux["attention"]`` (N×1×H×W) and ``ctx["rain"]``. SSIM is the
    11×11, σ = 1.5 Gaussian one with zero padding (the authors' ``cal_ssim``).

    Args:
        mask_threshold: a pixel is rain when the channel mean of the rain exceeds this (as
            for JORDER-E's mask). The authors' mask is ``clip(sum_c (O - B), 0, 1)`` on 8-bit
            arrays, i.e. 1 wherever the rainy and clean photo differ at all; on the hard pairs
            of ``dt`` the distilled rain is a network output, nonzero at the 1/255 level
            almost everywhere, so that rule would mark nearly every pixel as rain.
        mask_weight: weight of the attention term (1 in the authors' loss).
    """

    aux_keys = ("attention",)

    def __init__(self, mask_threshold: float = 0.02, mask_weight: float = 1.0) -> None:
        super().__init__()
        if mask_weight < 0:
            raise ValueError(f"spanet loss mask_weight must be >= 0, got {mask_weight}")
        self.mask_threshold = mask_threshold
        self.mask_weight = mask_weight

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        aux, rain = _context("spanet", "spanet", ctx, self.aux_keys, rain=True)
        rain = _check_rain(rain, target)
        pred, target = pred.float(), target.float()
        mask = rain_mask_target(rain, self.mask_threshold).float()[:, None]
        image = F.l1_loss(pred, target) + (1.0 - ssim(pred, target))
        return image + self.mask_weight * F.mse_loss(aux["attention"].float(), mask)


def density_class(rain: Tensor, bounds: tuple[float, float] = (0.05, 0.15), threshold: float = 0.02) -> Tensor:
    """DID-MDN's density class of each rain layer (N, int64): 0 heavy, 1 medium, 2 light.

    The class is read from the rain's coverage, the fraction of pixels whose channel-mean rain
    exceeds ``threshold``: light below ``bounds[0]``, heavy from ``bounds[1]`` on.
    """
    coverage = rain_mask_target(rain, threshold).float().mean(dim=(1, 2))
    light, heavy = coverage < bounds[0], coverage >= bounds[1]
    return torch.where(heavy, 0, torch.where(light, 2, 1)).long()


@LOSSES.register("didmdn")
class DIDMDNLoss(Loss):
    """DID-MDN's image loss with its density classifier trained alongside.

    ``L1(y, B) + density_weight · CE(density_logits, density_class(rain))``. The authors train
    the network with ``L1`` plus VGG-16 perceptual terms (left out: no ImageNet weights) on
    images in [-1, 1], and their classifier separately with a cross-entropy against the true
    labels; here the classifier shares the network's streams and learns from the class of the
    known rain of each pair (:func:`density_class`), so ``dt`` trains it on the hard pairs,
    whose rain is the rain distilled from the real photos. Without ``density_logits`` (a
    ``didmdn`` built with ``density_classifier=False``) the loss is the L1 alone.

    Args:
        density_weight: weight of the cross-entropy. At the start it is about ln 3 ≈ 1.1, so
            0.01 keeps it near a tenth of the L1 of a rainy input (0.05-0.1), which the
            shared streams are there for.
        bounds: rain coverage separating light from medium and medium from heavy.
        threshold: channel-mean rain above which a pixel counts as covered.
    """

    def __init__(
        self, density_weight: float = 0.01, bounds: tuple[float, float] = (0.05, 0.15), threshold: float = 0.02
    ) -> None:
        super().__init__()
        if density_weight < 0:
            raise ValueError(f"didmdn loss density_weight must be >= 0, got {density_weight}")
        if not 0 <= bounds[0] <= bounds[1] <= 1:
            raise ValueError(f"didmdn loss bounds must be two coverages 0 <= light <= heavy <= 1, got {bounds}")
        self.density_weight = density_weight
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.threshold = threshold

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        loss = F.l1_loss(pred.float(), target.float())
        aux = getattr(ctx.get("restoration"), "aux", None) or {}
        if "density_logits" not in aux or self.density_weight == 0:
            return loss
        _, rain = _context("didmdn", "didmdn", ctx, (), rain=True)
        labels = density_class(_check_rain(rain, target), self.bounds, self.threshold)
        return loss + self.density_weight * F.cross_entropy(aux["density_logits"].float(), labels)


@LOSSES.register("umrl")
class UMRLLoss(Loss):
    """UMRL's confidence-guided loss over its three scales.

    For each scale ``s`` (full, 1/2, 1/4; weights 1, 0.5, 0.25) with image ``y_s``, confidence
    ``c_s`` and target ``B_s`` (the target subsampled by nearest neighbour, as the input is),
    in the authors' [-1, 1] units::

        L = Σ_s w_s · SmoothL1(c_s · y_s + (1 - c_s) · B_s, B_s)
            - λ · Σ_s (4, 2, 1)_s / (H·W) · Σ_pixels log c_s         # per image, H×W the full size

    The log term keeps the confidences from collapsing to 0 (which would zero the first
    term); ``λ`` is the authors' adaptive weight: 0.1, or ``0.009 · (exp(5.4 p) - 0.98)``
    once the log term ``p`` (with ``λ = 1``) falls below 0.25. Their perceptual (VGG-16)
    terms are left out: restorekit has no ImageNet weights. Needs the aux outputs of the
    ``umrl`` backbone; ``pred`` is its full-scale image.

    Args:
        lam: the starting confidence weight ``λ`` (0.1).
        adaptive: apply the authors' rule that lowers ``λ`` as the confidences approach 1.
    """

    SCALES = (("", 1.0, 1.0, 1), ("_half", 0.5, 2.0, 2), ("_quarter", 0.25, 4.0, 4))
    aux_keys = ("restored_half", "restored_quarter", "confidence", "confidence_half", "confidence_quarter")

    def __init__(self, lam: float = 0.1, adaptive: bool = True) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"umrl loss lam must be >= 0, got {lam}")
        self.lam = lam
        self.adaptive = adaptive

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        aux, _ = _context("umrl", "umrl", ctx, self.aux_keys, rain=False)
        images = {"": pred, "_half": aux["restored_half"], "_quarter": aux["restored_quarter"]}
        h, w = target.shape[-2:]
        fit, log_conf = pred.new_zeros((), dtype=torch.float32), pred.new_zeros((), dtype=torch.float32)
        for suffix, weight, log_weight, step in self.SCALES:
            y, c = images[suffix].float(), aux["confidence" + suffix].float()
            t = target.float()[..., ::step, ::step]
            if y.shape != t.shape or c.shape != t.shape:
                raise ValueError(
                    f"umrl loss: the 1/{step}-scale outputs {tuple(y.shape)} do not match the subsampled target {tuple(t.shape)}"
                )
            error = 2.0 * c * (y - t)  # (c·y + (1 - c)·B) - B, in [-1, 1] units
            fit = fit + weight * F.smooth_l1_loss(error, torch.zeros_like(error))
            log_conf = log_conf - log_weight * torch.log(c + 1e-8).sum(dim=(1, 2, 3)).mean() / (h * w)
        lam = self.lam
        if self.adaptive:
            penalty = float(log_conf.detach())
            if penalty < 0.25:
                lam = 0.09 * self.lam * (math.exp(5.4 * penalty) - 0.98)
        return fit + lam * log_conf
