"""Restore whole photos with a trained backbone."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .engine.device import autocast
from .models.contract import run_backbone

__all__ = ["Restorer", "to_tensor", "to_uint8"]


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 RGB → 1×3×H×W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """1×3×H×W (or 3×H×W) float in [0, 1] → H×W×3 uint8 RGB, rounded."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    return tensor.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class Restorer:
    """Apply a backbone to uint8 photos: ``restored = x - residual``, clamped and rounded.

    Args:
        backbone: a trained backbone (put in eval mode here).
        device: where to compute.
        precision: ``"fp32"`` (the reference) or ``"bf16"`` autocast.
        channels_last: use the channels-last memory format.
    """

    def __init__(
        self,
        backbone: nn.Module,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = channels_last
        self.backbone = backbone.to(self.device).eval()
        if channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def restore_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float in [0, 1] → restored float in [0, 1] (fp32)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            restored = run_backbone(self.backbone, x).restored
        return restored.float().clamp_(0.0, 1.0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Restore one H×W×3 uint8 RGB photo."""
        return to_uint8(self.restore_tensor(to_tensor(image, self.device)))
