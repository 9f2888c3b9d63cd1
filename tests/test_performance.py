"""The fast modes compute what the fp32 reference does (no timing here: see tools/benchmark.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.device import bf16_is_fast, compile_for_training
from restorekit.inference import Restorer
from restorekit.metrics import psnr
from restorekit.registries import BACKBONES


def hagg(scale: float = 2.5, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    network = BACKBONES.build({"type": "hagg", **kwargs}).eval()
    with torch.no_grad():  # the initial N(0, 0.02) weights barely touch the image: make them matter
        for p in network.parameters():
            p.mul_(scale)
    return network


def image(h: int = 96, w: int = 128) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(2))


def test_reference_mode_computes_in_nchw_and_channels_last_in_nhwc() -> None:
    layouts = []

    def record(module: torch.nn.Module, args: tuple) -> None:
        layouts.append(args[0].is_contiguous())

    for channels_last in (False, True):
        network = hagg(channels=4, num_blocks=2)
        network.stem.register_forward_pre_hook(record)
        Restorer(network, channels_last=channels_last)(np.zeros((16, 16, 3), np.uint8))
    assert layouts == [True, False]  # uint8 HWC pixels are NHWC: the reference makes them NCHW


@pytest.mark.parametrize("name", ["hagg", "ddn"])
def test_bf16_output_close_to_fp32(name: str) -> None:
    network = hagg() if name == "hagg" else BACKBONES.build({"type": "ddn", "num_units": 4}).eval()
    x = image()
    reference = Restorer(network).restore_tensor(x)
    fast = Restorer(network, precision="bf16", channels_last=True).restore_tensor(x)
    assert fast.dtype == torch.float32
    assert (reference - x).abs().mean() > 1e-3  # the network does something
    diff = (fast - reference).abs()
    # bf16 keeps 8 significant bits: per-pixel errors of a few 1e-3, far below a grey level on average.
    assert diff.mean() < 2e-3 and diff.max() < 3e-2
    assert psnr(fast.numpy(), reference.numpy(), data_range=1.0) > 45


def test_compiled_restorer_equals_eager() -> None:
    network = hagg(channels=4, num_blocks=2)
    x = image(40, 56)
    eager = Restorer(network).restore_tensor(x)
    compiled = Restorer(network, compile=True).restore_tensor(x)
    assert (compiled - eager).abs().max() < 1e-5


def test_compile_for_training_keeps_state_dict_names() -> None:
    network = hagg(channels=4, num_blocks=2)
    names = list(network.state_dict())
    compile_for_training({"backbone": network})
    assert list(network.state_dict()) == names  # checkpoints are unchanged by compilation


def test_bf16_capability_is_reported() -> None:
    assert isinstance(bf16_is_fast("cpu"), bool)
    assert bf16_is_fast("meta") is False
