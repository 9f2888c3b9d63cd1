"""Device and precision: the only module that asks torch about CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import ConfigError

__all__ = ["resolve_device", "autocast", "to_device_batch"]


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda``/``cuda:N`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N", path="runtime.device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("CUDA was requested but no CUDA device is available; use device: auto or cpu",
                              path="runtime.device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{spec} requested but only {torch.cuda.device_count()} CUDA device(s) exist",
                              path="runtime.device")
    elif device.type != "cpu":
        raise ConfigError(f"device type {device.type!r} is not supported; use auto, cpu or cuda", path="runtime.device")
    return device


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bfloat16 autocast when ``precision == "bf16"``, otherwise plain fp32."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def to_device_batch(
    batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool = False
) -> dict[str, torch.Tensor]:
    """uint8 N×3×H×W tensors → float [0, 1] on ``device`` (copied as uint8: 4× less traffic)."""
    out = {}
    for key, value in batch.items():
        value = value.to(device, non_blocking=True).float().div_(255.0)
        if channels_last:
            value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out
