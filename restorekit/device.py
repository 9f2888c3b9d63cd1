"""Device, precision and compilation: the only module that asks torch about CUDA.

It sits below both the training engine and inference: the one place that says where a run
computes (:func:`resolve_device`) and which precision is fast there (:func:`fast_precision`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError

__all__ = [
    "resolve_device",
    "resolve_precision",
    "autocast",
    "to_device_batch",
    "bf16_is_fast",
    "fast_precision",
    "compile_for_inference",
    "compile_for_training",
    "cpu_description",
    "CPU_FLAGS",
]

#: The CPU flags that decide how fast a step is. bf16 is native only with the first two (with
#: AVX2 alone it is emulated, and about 10× slower than fp32).
CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma")


def cpu_description() -> dict[str, Any]:
    """The CPU's model name, core count and the flags of :data:`CPU_FLAGS` it has (Linux; elsewhere what platform says).

    Benchmarks record it beside their figures: timings of two machines only compare when these agree.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in CPU_FLAGS if f in flags]}


def resolve_device(spec: str = "auto", local_rank: int | None = None) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda``/``cuda:N`` must exist.

    ``local_rank`` (a multi-process run's process index on this machine) turns an unnumbered
    ``auto``/``cuda`` into ``cuda:<local_rank>``, one GPU per process.
    """
    if spec in ("auto", "cuda") and local_rank is not None and torch.cuda.is_available():
        spec = f"cuda:{local_rank % torch.cuda.device_count()}"
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


@functools.cache
def _cpu_bf16_is_native() -> bool:
    # oneDNN's own check: AVX-512 BF16 (Cooper Lake, Zen 4 and later) or AMX (Sapphire Rapids).
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (else bf16 autocast is emulated, and slower)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_bf16_is_native()


def fast_precision(device: torch.device | str) -> str:
    """The fastest precision on ``device`` that keeps results usable: ``bf16`` where it is native, else ``fp32``.

    Without native support (e.g. an AVX2-only CPU) bf16 autocast is emulated and slower than
    fp32 (see the performance page of the docs for measurements), so this is what ``auto``
    means everywhere: in configs, on the command line and in the benchmarks.
    """
    return "bf16" if bf16_is_fast(device) else "fp32"


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto`` → :func:`fast_precision` of ``device``; ``fp32`` and ``bf16`` unchanged."""
    if precision == "auto":
        return fast_precision(device)
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    return precision


def compile_for_inference(module: nn.Module) -> nn.Module:
    """``torch.compile`` for inference with frozen weights.

    Freezing treats the weights as constants, which lets Inductor pre-pack them for oneDNN and
    fuse ReLU, additions and the bf16 casts into the convolutions (``tools/benchmark.py``
    measures what it gains on a machine). The price: the compiled function is a snapshot of the
    weights, and it must be called under ``torch.no_grad()`` or ``torch.inference_mode()``.
    """
    return torch.compile(module, options={"freezing": True})


def compile_for_training(modules: dict[str, nn.Module]) -> None:
    """Compile each module's forward in place (``nn.Module.compile``: names and state dicts unchanged).

    Inductor then fuses the elementwise work of forward and backward. On a CPU it made the
    hagg distillation step slower than eager channels-last bf16 (its generated kernels for the
    bf16 elementwise ops lose to ATen's; the docs' performance page has the measurement), so it
    is an option for GPUs and other backbones, not a default.
    """
    for module in modules.values():
        module.compile()


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
