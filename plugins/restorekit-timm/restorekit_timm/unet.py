"""A U-shaped restoration network whose encoder is any timm model that returns feature maps.

::

    x ──pad──► timm encoder (features_only) ──► f_1 (1/2), f_2 (1/4), ..., f_L (1/32)
     │                                                                  │
     │          decoder, deepest first:  y = block([up(y), f_i])  ◄─────┘
     │                                        │
     └──► full-resolution stem ──► block([up(y), stem(x)]) ──► head ──crop──► residual

The encoder is created with random weights (``pretrained=False``): nothing is downloaded, and
the network trains from scratch like restorekit's other backbones. The full-resolution stem
carries the pixel detail that the strided encoder discards; the head starts at zero, so a new
network returns its input unchanged and learns the residual from there.
"""

from __future__ import annotations

import difflib
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TimmUNet"]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def _create_encoder(name: str, in_channels: int, out_indices: tuple[int, ...] | None, extra: dict[str, Any]) -> nn.Module:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"timm has no model {name!r}.{hint} See `python -c \"import timm; print(timm.list_models('*resnet*'))\"`"
        )
    kwargs: dict[str, Any] = {"features_only": True, "in_chans": in_channels, **extra}
    if out_indices is not None:
        kwargs["out_indices"] = out_indices
    try:
        # pretrained=False: random weights, never a download (and no network needed).
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:  # timm raises several types for models without a feature API
        raise ValueError(
            f"timm model {name!r} cannot be used as a feature encoder ({type(exc).__name__}: {exc}); "
            f"choose a convolutional model such as resnet18, mobilenetv3_small_100 or efficientnet_b0"
        ) from exc


class TimmUNet(nn.Module):
    """U-Net around a timm encoder, predicting the residual (restored = x − residual).

    Works on any image size: the input is padded (edge pixels repeated) to a multiple of the
    encoder's total stride and the output cropped back.

    Args:
        in_channels: image channels (3 for RGB).
        encoder: timm model name, e.g. ``resnet18``, ``mobilenetv3_small_100``,
            ``efficientnet_b0`` (``timm.list_models()`` lists them). It is created with
            ``features_only=True`` and random weights.
        out_indices: which of the encoder's feature levels feed the decoder (timm's
            ``out_indices``); null uses them all. Dropping the deepest levels makes a smaller,
            shallower network and relaxes the padding.
        decoder_channels: width of every decoder stage.
        stem_channels: width of the full-resolution branch.
        encoder_kwargs: further keyword arguments for ``timm.create_model``
            (e.g. ``{drop_path_rate: 0.1}``).
    """

    default_loss = "ssim"

    def __init__(
        self,
        in_channels: int = 3,
        encoder: str = "resnet18",
        out_indices: tuple[int, ...] | None = None,
        decoder_channels: int = 32,
        stem_channels: int = 16,
        encoder_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if decoder_channels < 1 or stem_channels < 1:
            raise ValueError(
                f"timm_unet decoder_channels and stem_channels must be >= 1, got {decoder_channels}, {stem_channels}"
            )
        self.encoder = _create_encoder(encoder, in_channels, out_indices, dict(encoder_kwargs or {}))
        feature_channels = list(self.encoder.feature_info.channels())
        reductions = list(self.encoder.feature_info.reduction())
        #: Input sides are padded to a multiple of this so every feature map aligns with the next.
        self.stride = max(reductions)

        # Without pretrained weights any fixed normalisation would do; the model's own
        # statistics keep the encoder's inputs where its architecture was tuned.
        cfg = getattr(self.encoder, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        if mean is None or std is None or len(mean) != in_channels:
            mean, std = (0.5,) * in_channels, (0.5,) * in_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

        self.bottleneck = nn.Conv2d(feature_channels[-1], decoder_channels, 1)
        self.decoder = nn.ModuleList(
            _conv_block(decoder_channels + channels, decoder_channels) for channels in reversed(feature_channels[:-1])
        )
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.fuse = _conv_block(decoder_channels + stem_channels, decoder_channels)
        self.head = nn.Conv2d(decoder_channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map images in [0, 1] (N×C×H×W, any H and W) to the residual, so that ``x - residual`` is restored."""
        height, width = x.shape[-2:]
        pad_bottom = -height % self.stride
        pad_right = -width % self.stride
        padded = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate") if pad_bottom or pad_right else x

        features = self.encoder((padded - self.mean) / self.std)
        y = self.bottleneck(features[-1])
        for skip, block in zip(reversed(features[:-1]), self.decoder):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = F.interpolate(y, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        y = self.fuse(torch.cat([y, self.stem(padded)], dim=1))
        return self.head(y)[..., :height, :width]
