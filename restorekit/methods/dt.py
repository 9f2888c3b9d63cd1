"""Two-stage data distillation (Rain O'er Me, Lin et al., TIP 2020: Algorithm 1 and its released code).

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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config.schema import Config, Spec, opt, spec
from ..data.batches import UnpairedBatches
from ..filters.base import SoftLabelFilter
from ..models.contract import default_loss_spec, run_backbone
from ..registries import BACKBONES, DETAIL_BLOCKS, FILTERS, LOSSES, METHODS, SCHEDULERS
from ..schedulers.base import LossWeightSchedule
from .base import Baseline, FolderKind, Method, Progress, StepOutput, training_photos
from .soft_labels import SoftLabelCache, label_cache_folder

__all__ = ["Distillation", "DistillationOptions", "residual_stats"]


class _BetaFloor(LossWeightSchedule):
    """A schedule's weights with ``beta`` held at or above ``share × alpha`` (what a collapse restart sets).

    Relative, not absolute: Adam's steps do not depend on the loss's overall scale, only on the
    ratio of the two objectives, so a floor of 0.25 under a hard weight of 100 would change nothing.
    """

    def __init__(self, inner: LossWeightSchedule, share: float) -> None:
        self.inner = getattr(inner, "inner", inner)  # a second rescue replaces the first floor
        self.share = share

    def __call__(self, t: int) -> tuple[float, float]:
        alpha, beta = self.inner(t)
        return alpha, max(beta, self.share * alpha)


def residual_stats(rainy: Tensor, soft_label: Tensor, rain_residual: Tensor) -> dict[str, Tensor]:
    """What the network still removes, for the log and the collapse guard (no gradient, no sync).

    ``removed``: RMS of the distilled residual ``g(R)`` over RMS of the soft residual
    ``X - Y_s`` (everything the filter takes away: rain and detail), each without its mean per
    crop and channel, so that a brightness offset does not pass for removed rain. A healthy run
    keeps it well above zero; when it falls towards 0 the hard pair ``D`` approaches ``C`` and
    the network is becoming the identity. ``offset``: mean of ``X - g(R)`` minus mean of
    ``Y_s``, in grey levels (0-255): the soft output's brightness against the label's.
    """
    with torch.no_grad():
        r = rain_residual.detach().float()
        soft = (rainy - soft_label).float()
        offset = (soft - r).mean() * 255.0
        r = r - r.mean(dim=(2, 3), keepdim=True)
        soft = soft - soft.mean(dim=(2, 3), keepdim=True)
        removed = r.pow(2).mean().sqrt() / soft.pow(2).mean().sqrt().clamp_min(1e-6)
    return {"removed": removed, "offset": offset}


@dataclass
class DistillationOptions:
    """Options of the two-stage data distillation method (``method: dt``)."""

    detail_block: Spec = spec({"type": "deb"}, "detail_blocks", "Detail enhancement block g applied to the residual.")
    soft_label: Spec = spec(
        {"type": "median", "kernel_size": 31},
        "filters",
        "Filter that makes the blurred, degradation-free soft label Y_s of each training photo (computed once, cached).",
    )
    soft_loss: Spec = spec({"type": "ssim"}, "losses", "Soft objective L_S between X - g(R) and the soft label.")
    hard_loss: Spec | None = spec(
        None,
        "losses",
        "Hard objective L_H between the restored hard pair and its clean image; null uses the backbone's default loss.",
        optional=True,
    )
    weights: Spec = spec(
        {"type": "dynamic"},
        "schedulers",
        "Loss-weight schedule giving alpha(t) for L_H and beta(t) for L_S.",
        role="loss_weights",
    )
    detach_residual: bool = opt(True, "Detach g(R) before adding it to the clean image (as the authors' code does).")
    clamp_hard_pair: bool = opt(True, "Clamp the synthesized hard pair D = C + g(R) to [0, 1] (as the authors' code does).")
    hard_pair_gain: tuple[float, float] | None = opt(
        None,
        "Scale g(R) by a random factor in [low, high] before adding it (the authors' DID-data variant used [0.5, 2.0]).",
    )
    hard_pair_gain_after: int = opt(5000, "Iteration from which `hard_pair_gain` applies.", min=0)
    anchor_loss: Spec | None = spec(
        None,
        "losses",
        "Low-frequency term between X - g(R) and the soft label, outside the alpha/beta schedule (e.g. "
        "`{type: lowpass, block: 8}`): holds the output's brightness, which SSIM barely sees (null: none).",
        optional=True,
    )
    anchor_weight: float = opt(1.0, "Weight of `anchor_loss`.", min=0.0)
    hard_anchor_weight: float = opt(
        0.0,
        "Weight of `anchor_loss` between the restored hard pair and its clean image, added to L_H (so it follows "
        "alpha(t); 0: off). The clean image is the one brightness reference that no rain biases.",
        min=0.0,
    )
    rain_free_share: float = opt(
        0.0,
        "Share of each batch whose hard pair gets no rain: the clean image itself, which the network must return "
        "unchanged, so that it learns to leave rain-free detail alone (0: every hard pair is rainy).",
        min=0.0,
        max=0.5,
    )
    hard_pair_floor: float | None = opt(
        None,
        "Lift g(R) in each hard pair to at least this fraction of the soft residual X - Y_s in RMS (by at most "
        "`hard_pair_max_gain`), so that a shrinking residual cannot make the hard pair the clean image (null: off).",
        min=0.0,
    )
    hard_pair_max_gain: float = opt(4.0, "Largest factor `hard_pair_floor` may scale g(R) by.", min=1.0)
    positive_rain: bool = opt(
        False,
        "Add only the positive part of g(R) to the clean image: rain and snow only brighten a pixel, so what g(R) "
        "holds below zero is image detail, not rain (leave it off for noise, which is signed).",
    )


@METHODS.register("dt")
class Distillation(Method):
    """Two-stage data distillation (``method: dt``): learns from unpaired degraded and clean photos.

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
        soft_label_filter: the filter that makes each training photo's soft label (built once:
            it makes the labels and is scored as a baseline).
        soft_label_name: its registry name, for the baseline's label.
        specs: the config specs of ``backbone`` and ``detail_block`` (recorded in model files).
        anchor_loss: optional low-frequency term between ``X - g(R)`` and the soft label, weighted
            by ``anchor_weight`` and NOT by the schedule: it holds the output's brightness all run long.
        anchor_weight: weight of ``anchor_loss``.
        hard_anchor_weight: weight of ``anchor_loss`` between the restored hard pair and its clean
            image, added to ``L_H`` (so scaled by ``alpha(t)``; a fixed weight of 3 silenced the
            network within 50 steps, before the soft objective had built a residual). The soft
            label's low frequencies keep part of the rain (under dense rain a median's window is
            itself rainy); the hard pair's clean image has the true brightness of every block.
        rain_free_share: the share of each batch (its first samples; batches are shuffled) whose
            hard pair is the clean image alone. A network that removes the rain also learns to
            take bright detail out of rain-free regions, since the positive part of ``g(R)``
            carries bright fragments of the rainy photo's own texture into the hard pairs; a
            rain-free hard pair charges that. ``hard_pair_floor`` still keeps the other pairs rainy.
        hard_pair_floor: optional ``rho``: scale ``g(R)`` in each hard pair up (by at most
            ``hard_pair_max_gain``) so that its RMS is at least ``rho`` times that of the soft
            residual ``X - Y_s``. Without it a shrinking residual makes ``D`` approach ``C``, where
            the identity is optimal for the hard objective and nothing pushes back.
        hard_pair_max_gain: the largest such scale.
        positive_rain: add only ``max(g(R), 0)`` to the clean image (for degradations that only
            brighten, as rain and snow do).
    """

    options = DistillationOptions

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
        soft_label_filter: SoftLabelFilter | None = None,
        soft_label_name: str = "soft-label",
        specs: dict[str, dict[str, Any]] | None = None,
        anchor_loss: nn.Module | None = None,
        anchor_weight: float = 1.0,
        hard_anchor_weight: float = 0.0,
        rain_free_share: float = 0.0,
        hard_pair_floor: float | None = None,
        hard_pair_max_gain: float = 4.0,
        positive_rain: bool = False,
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
        self.anchor_loss = anchor_loss
        self.anchor_weight = anchor_weight
        if hard_anchor_weight > 0 and anchor_loss is None:
            raise ValueError("dt.hard_anchor_weight > 0 needs dt.anchor_loss (e.g. {type: lowpass, block: 8}), got null")
        self.hard_anchor_weight = hard_anchor_weight
        self.rain_free_share = rain_free_share
        self.hard_pair_floor = hard_pair_floor
        self.hard_pair_max_gain = hard_pair_max_gain
        self.positive_rain = positive_rain
        self.soft_label_filter = soft_label_filter
        self.soft_label_name = soft_label_name
        self.specs = specs or {}

    @classmethod
    def from_config(cls, config: Config, options: DistillationOptions) -> Distillation:
        backbone = BACKBONES.build(config.backbone, path="backbone")
        return cls(
            backbone,
            detail_block=DETAIL_BLOCKS.build(options.detail_block, path="dt.detail_block"),
            soft_loss=LOSSES.build(options.soft_loss, path="dt.soft_loss"),
            hard_loss=LOSSES.build(options.hard_loss or default_loss_spec(backbone), path="dt.hard_loss"),
            weights=SCHEDULERS.build(options.weights, path="dt.weights"),
            detach_residual=options.detach_residual,
            clamp_hard_pair=options.clamp_hard_pair,
            hard_pair_gain=options.hard_pair_gain,
            hard_pair_gain_after=options.hard_pair_gain_after,
            seed=config.train.seed,
            anchor_loss=LOSSES.build(options.anchor_loss, path="dt.anchor_loss") if options.anchor_loss else None,
            anchor_weight=options.anchor_weight,
            hard_anchor_weight=options.hard_anchor_weight,
            rain_free_share=options.rain_free_share,
            hard_pair_floor=options.hard_pair_floor,
            hard_pair_max_gain=options.hard_pair_max_gain,
            positive_rain=options.positive_rain,
            soft_label_filter=FILTERS.build(options.soft_label, path="dt.soft_label"),
            soft_label_name=options.soft_label["type"],
            specs={"backbone": config.backbone, "detail_block": options.detail_block},
        )

    @classmethod
    def data_folders(cls, config: Config, options: DistillationOptions) -> dict[str, FolderKind]:
        return {"data.rainy": "photos", "data.clean": "photos"}

    def training_batches(
        self, config: Config, *, rank: int = 0, progress: Progress | None = None
    ) -> tuple[UnpairedBatches, dict[str, Any]]:
        """Degraded photos with their soft labels (computed once, cached) and unrelated clean photos."""
        data = config.data
        if self.soft_label_filter is None:
            raise ValueError("this Distillation was made without a soft_label_filter, so it cannot label photos")
        labels = SoftLabelCache(self.soft_label_filter, label_cache_folder(data.soft_label_cache))
        degraded = training_photos(config, "rainy", progress, label_cache=labels)
        clean = training_photos(config, "clean", progress)
        batches = UnpairedBatches(
            degraded, clean, crop_size=data.crop_size, batch_size=data.batch_size, flip=data.flip,
            seed=config.train.seed, rank=rank,
        )
        return batches, {"rainy": degraded.report, "clean": clean.report}

    def baselines(self) -> list[Baseline]:
        """The soft-label filter alone: what the network must beat to have learnt anything."""
        if self.soft_label_filter is None:
            return []
        return [Baseline(f"{self.soft_label_name} filter (soft label)", self.soft_label_filter)]

    def training_modules(self) -> dict[str, nn.Module]:
        return {"backbone": self.backbone, "detail_block": self.detail_block}

    def module_specs(self) -> dict[str, dict[str, Any]]:
        return dict(self.specs)

    def _gain(self, t: int, like: Tensor) -> Tensor | None:
        if self.hard_pair_gain is None or t < self.hard_pair_gain_after:
            return None
        low, high = self.hard_pair_gain
        draws = np.random.default_rng([self.seed, t, 0xD1D]).uniform(low, high, size=like.shape[0])
        return torch.as_tensor(draws, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)

    def rescue(self, attempt: int) -> str:
        """What ``train.on_collapse=restart`` changes before going back to a healthy state.

        The two ways out of the degenerate fixed point that a checkpoint can take up: keep the
        soft objective alive (``beta`` at least ``0.25 × attempt × alpha``, so it still pushes the
        residual back up once alpha dominates) and keep the hard pair rainy (``hard_pair_floor`` 0.5).
        """
        share = min(1.0, 0.25 * attempt)
        self.weights = _BetaFloor(self.weights, share)
        if self.hard_pair_floor is None:
            self.hard_pair_floor = 0.5
        return f"from now on beta >= {share:g} × alpha and dt.hard_pair_floor={self.hard_pair_floor:g}"

    def _floor_gain(self, rain: Tensor, soft_residual: Tensor) -> Tensor:
        """Per-sample factor >= 1 lifting ``rain``'s RMS to ``hard_pair_floor`` × that of the soft residual."""
        with torch.no_grad():
            rms = rain.detach().float().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            target = self.hard_pair_floor * soft_residual.float().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            gain = (target / rms.clamp_min(1e-6)).clamp(1.0, self.hard_pair_max_gain)
        return gain.to(rain.dtype)

    def training_step(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        rainy, soft_label, clean = batch["degraded"], batch["soft_label"], batch["clean"]

        first = run_backbone(self.backbone, rainy)
        rain_residual = self.detail_block(first.residual)
        soft_restored = rainy - rain_residual

        distilled_rain = rain_residual.detach() if self.detach_residual else rain_residual
        if self.positive_rain:
            distilled_rain = distilled_rain.clamp_min(0.0)
        gain = self._gain(t, distilled_rain)
        if gain is not None:
            distilled_rain = distilled_rain * gain
        if self.hard_pair_floor is not None:
            distilled_rain = distilled_rain * self._floor_gain(distilled_rain, rainy - soft_label)
        rain_free = int(self.rain_free_share * distilled_rain.shape[0])
        if rain_free:
            distilled_rain = torch.cat([torch.zeros_like(distilled_rain[:rain_free]), distilled_rain[rain_free:]])
        hard_pair = clean + distilled_rain
        if self.clamp_hard_pair:
            hard_pair = hard_pair.clamp(0.0, 1.0)

        second = run_backbone(self.backbone, hard_pair)
        hard_restored = second.restored

        loss_soft = self.soft_loss(soft_restored, soft_label)
        loss_hard = self.hard_loss(hard_restored, clean, restoration=second, rain=hard_pair - clean)
        logs_extra = {}
        hard_objective = loss_hard
        if self.hard_anchor_weight > 0:
            loss_hard_anchor = self.anchor_loss(hard_restored, clean)
            hard_objective = loss_hard + self.hard_anchor_weight * loss_hard_anchor
            logs_extra["hard_anchor"] = loss_hard_anchor
        alpha, beta = self.weights(t)
        loss = alpha * hard_objective + beta * loss_soft
        if self.anchor_loss is not None:
            loss_anchor = self.anchor_loss(soft_restored, soft_label)
            loss = loss + self.anchor_weight * loss_anchor
            logs_extra["anchor"] = loss_anchor

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
        logs.update(logs_extra)
        logs.update(residual_stats(rainy, soft_label, rain_residual))
        return StepOutput(loss, logs, {k: v.detach() for k, v in images.items()})
