"""Export a backbone to ONNX, and check that ONNX Runtime computes what PyTorch does.

The exported graph maps ``image`` (N×3×H×W float in [0, 1], any N, H and W) to ``restored``
(``clamp(image - residual, 0, 1)``): the whole of test-time restoration, so a deployment needs
nothing from restorekit. It is traced by PyTorch's ``torch.export``-based exporter, which needs
the optional packages of the ``[onnx]`` extra (``onnx``, ``onnxscript``; ``onnxruntime`` for
the check): ``pip install "restorekit[onnx]"``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .errors import RestorekitError
from .models.contract import run_backbone

__all__ = ["RestorationGraph", "export_onnx", "check_onnx", "OnnxCheck", "OnnxExportError"]

#: Sizes the check runs at: odd, unequal sides catch layout and padding mistakes.
CHECK_SHAPES = ((1, 3, 64, 48), (2, 3, 37, 81))


class OnnxExportError(RestorekitError):
    """Export failed, an optional package is missing, or ONNX Runtime disagrees with PyTorch."""


class RestorationGraph(nn.Module):
    """What is exported: ``image → clamp(image - backbone residual, 0, 1)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, image: Tensor) -> Tensor:
        return run_backbone(self.backbone, image).restored.clamp(0.0, 1.0)


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise OnnxExportError(
            f"ONNX export needs the optional package '{module}': pip install \"restorekit[onnx]\""
        ) from None


def _graph_of(backbone: nn.Module) -> RestorationGraph:
    # A private fp32 NCHW copy on the CPU, so the caller's module (device, layout) is untouched.
    network = copy.deepcopy(backbone).to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
    return RestorationGraph(network).eval()


def export_onnx(backbone: nn.Module, path: str | Path, *, opset: int = 18, example_size: int = 64) -> Path:
    """Write ``backbone`` as an ONNX graph with dynamic batch, height and width.

    Args:
        backbone: any registered backbone (trained weights are exported as they are).
        path: the ``.onnx`` file to write (its folder is created).
        opset: ONNX opset version.
        example_size: side of the example input used for tracing (the graph accepts any size).

    Returns:
        The written path.
    """
    _require("onnx")
    _require("onnxscript")
    reason = getattr(backbone, "not_exportable", None)
    if reason:  # said up front, instead of the exporter's account of a failed trace
        raise OnnxExportError(f"{type(backbone).__name__} cannot be exported to ONNX: {reason}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _graph_of(backbone)
    example = torch.rand(1, 3, example_size, example_size, generator=torch.Generator().manual_seed(0))
    dynamic = torch.export.Dim.DYNAMIC
    # The exporter narrates each stage on stdout and warns about optional torchvision ops:
    # neither says anything about this graph, so both are kept out of the user's terminal.
    quiet = io.StringIO()
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(quiet), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside the exporter itself
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                input_names=["image"],
                output_names=["restored"],
                dynamic_shapes={"image": {0: dynamic, 2: dynamic, 3: dynamic}},
                opset_version=opset,
                verbose=False,
            )
        program.save(str(path))
    except OnnxExportError:
        raise
    except Exception as exc:  # the exporter raises many types; all mean "this backbone did not export"
        raise OnnxExportError(f"ONNX export of {type(backbone).__name__} failed: {exc}") from exc
    finally:
        onnx_logger.setLevel(level)
    return path


@dataclass
class OnnxCheck:
    """The outcome of :func:`check_onnx`."""

    max_abs_diff: float
    shapes: list[tuple[int, ...]]


def check_onnx(
    backbone: nn.Module,
    path: str | Path,
    *,
    shapes: tuple[tuple[int, int, int, int], ...] = CHECK_SHAPES,
    atol: float = 1e-4,
) -> OnnxCheck:
    """Run the ONNX file in ONNX Runtime (CPU) and PyTorch on random images; raise if they differ.

    Args:
        backbone: the network that was exported.
        path: the ``.onnx`` file.
        shapes: input shapes to compare at (also proves the dynamic axes work).
        atol: largest allowed absolute difference of the restored images (in [0, 1]).

    Returns:
        The largest difference seen and the shapes compared.
    """
    _require("onnxruntime")
    import onnxruntime

    graph = _graph_of(backbone)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for shape in shapes:
        image = torch.rand(shape, generator=generator)
        with torch.inference_mode():
            expected = graph(image).numpy()
        (got,) = session.run(["restored"], {"image": image.numpy()})
        if got.shape != expected.shape:
            raise OnnxExportError(f"{path}: ONNX Runtime returned shape {got.shape} for input {shape}, expected {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol:
        raise OnnxExportError(f"{path}: ONNX Runtime differs from PyTorch by up to {worst:.2e} (allowed {atol:.0e})")
    return OnnxCheck(worst, [tuple(s) for s in shapes])
