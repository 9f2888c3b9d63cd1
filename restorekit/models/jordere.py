"""JORDER-E, the enhanced joint rain detection and removal network of Yang et al.
("Joint Rain Detection and Removal from a Single Image with Contextualized Deep Networks",
IEEE TPAMI 2020), "jordere".

Two stages with separate weights. Each encodes ``concat[O, previous estimate]``, refines the
features with contextualized dilated residual blocks, predicts a rain mask (2-class logits)
and a rain level map, lets those two modulate the features (SFT-like: a per-pixel shift and
scale), and decodes an image with a global residual to the input::

    F = encoder(concat[O, x_prev])                           # x_prev = O in stage 1, x1 in stage 2
    for k = 1..9:  F = block_k(F) [+ F_k of stage 1]         # cross-stage feature recurrence
    mask  = mask_head(F)  [+ mask of stage 1]                # 2-ch logits
    level = level_head(F) [+ level of stage 1]               # 3-ch rain level
    F = (Eb_mask(mask) + F + Eb_level(level)) + Ew_mask(mask) * F * Ew_level(level)
    x_s = decoder(F) + O

With 64 channels and 9 blocks per stage the network has 4,169,024 trainable parameters
(2 × 2,084,512). It predicts clean images, so under restorekit's contract it returns
``{"residual": O - x2, "stage1": x1, "mask_logits": mask2, "level": level2}``; the
``jordere`` loss (:mod:`restorekit.losses.structured`) supervises all four.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes

__all__ = ["JORDERE", "JORDERStage", "ContextualizedDilatedBlock", "ModulationEncoder"]


def conv3x3(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)


class ContextualizedDilatedBlock(nn.Module):
    """Residual block with three context paths of growing receptive field.

    ``x + P1(x) + 0.1·P2(x) + 0.1·P3(x)``, each path two ReLU'd 3×3 convolutions with
    dilations (1, 1), (2, 2) and (2, 4); the wide paths are scaled down so that the block
    starts close to the plain one.

    Args:
        channels: feature width.
        context_scale: weight of the two dilated paths (0.1 in the paper).
    """

    def __init__(self, channels: int = 64, context_scale: float = 0.1) -> None:
        super().__init__()
        self.context_scale = context_scale
        self.path_d1 = nn.ModuleList([conv3x3(channels, channels, 1), conv3x3(channels, channels, 1)])
        self.path_d2 = nn.ModuleList([conv3x3(channels, channels, 2), conv3x3(channels, channels, 2)])
        self.path_d4 = nn.ModuleList([conv3x3(channels, channels, 2), conv3x3(channels, channels, 4)])

    @staticmethod
    def _path(convs: nn.ModuleList, x: Tensor) -> Tensor:
        for conv in convs:
            x = F.relu(conv(x))
        return x

    def forward(self, x: Tensor) -> Tensor:
        context = self._path(self.path_d2, x) + self._path(self.path_d4, x)
        return x + self._path(self.path_d1, x) + self.context_scale * context


class ModulationEncoder(nn.Sequential):
    """``conv(k→16) → ReLU → conv(16→C)``: maps a mask or level map to a feature-wide shift or scale.

    Args:
        in_channels: channels of the map (2 for mask logits, 3 for the level).
        channels: feature width ``C`` of the output.
        hidden: width of the middle layer (16 in the paper).
        identity_init: start as the constant 1 (last conv weight 0, bias 1): used for the
            multiplicative (scale) encoders so that modulation starts as the identity.
    """

    def __init__(self, in_channels: int, channels: int = 64, hidden: int = 16, identity_init: bool = False) -> None:
        super().__init__(conv3x3(in_channels, hidden), nn.ReLU(), conv3x3(hidden, channels))
        if identity_init:
            nn.init.zeros_(self[2].weight)
            nn.init.ones_(self[2].bias)


class JORDERStage(nn.Module):
    """One JORDER-E stage: encoder, dilated blocks, mask and level heads, modulation, decoder.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width ``G0`` (64 in the paper).
        num_blocks: contextualized dilated residual blocks (9 in the paper).
        head_channels: hidden width of the mask and level heads (8 in the paper).
        modulation_channels: hidden width of the modulation encoders (16 in the paper).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 9,
        head_channels: int = 8,
        modulation_channels: int = 16,
    ) -> None:
        super().__init__()
        self.encoder = conv3x3(2 * in_channels, channels)
        self.blocks = nn.ModuleList(ContextualizedDilatedBlock(channels) for _ in range(num_blocks))
        # Heads have no activation between their two convolutions (the authors' design).
        self.mask_head = nn.Sequential(conv3x3(channels, head_channels), conv3x3(head_channels, 2))
        self.level_head = nn.Sequential(conv3x3(channels, head_channels), conv3x3(head_channels, in_channels))
        self.mask_shift = ModulationEncoder(2, channels, modulation_channels)
        self.mask_scale = ModulationEncoder(2, channels, modulation_channels, identity_init=True)
        self.level_shift = ModulationEncoder(in_channels, channels, modulation_channels)
        self.level_scale = ModulationEncoder(in_channels, channels, modulation_channels, identity_init=True)
        self.decoder = nn.Sequential(conv3x3(channels, channels), conv3x3(channels, in_channels))

    def forward(
        self,
        rainy: Tensor,
        previous: Tensor,
        earlier: tuple[list[Tensor], Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """One stage.

        Args:
            rainy: the network input ``O``.
            previous: the previous estimate (``O`` itself for the first stage).
            earlier: ``(block features, mask logits, level)`` of the previous stage, added to
                this stage's (cross-stage recurrence); None for the first stage.

        Returns:
            ``(image, mask logits, level, block features)``.
        """
        features = self.encoder(torch.cat([rainy, previous], dim=1))
        block_features = []
        for k, block in enumerate(self.blocks):
            features = block(features)
            if earlier is not None:
                features = features + earlier[0][k]
            block_features.append(features)
        mask = self.mask_head(features)
        level = self.level_head(features)
        if earlier is not None:
            mask = mask + earlier[1]
            level = level + earlier[2]
        shifted = self.mask_shift(mask) + features + self.level_shift(level)
        scaled = self.mask_scale(mask) * features * self.level_scale(level)
        image = self.decoder(shifted + scaled) + rainy
        return image, mask, level, block_features


@BACKBONES.register("jordere")
class JORDERE(nn.Module):
    """JORDER-E: two separately-weighted stages; returns the final residual and auxiliary maps.

    Output: ``{"residual": x - x2, "stage1": x1, "mask_logits": N×2×H×W, "level": N×3×H×W}``.

    Args:
        in_channels: image channels (3 for RGB).
        channels: feature width ``G0`` (64 in the paper).
        num_blocks: contextualized dilated residual blocks per stage (9 in the paper).
        head_channels: hidden width of the mask and level heads (8).
        modulation_channels: hidden width of the modulation encoders (16).
    """

    default_loss = "jordere"
    param_convention = "trainable"

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 9,
        head_channels: int = 8,
        modulation_channels: int = 16,
    ) -> None:
        super().__init__()
        check_sizes(
            "jordere", in_channels=in_channels, channels=channels, num_blocks=num_blocks, head_channels=head_channels,
            modulation_channels=modulation_channels,
        )
        self.stage1 = JORDERStage(in_channels, channels, num_blocks, head_channels, modulation_channels)
        self.stage2 = JORDERStage(in_channels, channels, num_blocks, head_channels, modulation_channels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x1, mask1, level1, features1 = self.stage1(x, x)
        x2, mask2, level2, _ = self.stage2(x, x1, (features1, mask1, level1))
        return {"residual": x - x2, "stage1": x1, "mask_logits": mask2, "level": level2}
