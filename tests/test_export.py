"""ONNX export: every built-in backbone, run by ONNX Runtime, computes what PyTorch does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli import main
from restorekit.model_file import save_model
from restorekit.export import OnnxExportError, check_onnx, export_onnx
from restorekit.registries import BACKBONES

MISSING = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs the [onnx] extra (missing: {', '.join(MISSING)}): pip install -e '.[onnx]'"
)

# Small configurations of the big networks keep the file fast; the graph is the same code.
SMALL = {
    "ddn": {"num_units": 2},
    "prenet": {"stages": 2, "channels": 8},
    "prn": {"stages": 2, "channels": 8},
    "prenet_r": {"stages": 2, "channels": 8},
    "prn_r": {"stages": 2, "channels": 8},
    "jordere": {"channels": 8, "num_blocks": 1},
    "rescan": {"channels": 8, "stages": 2},
    "rescan_rnn": {"channels": 8, "stages": 2},
    "rescan_lstm": {"channels": 8, "stages": 2},
    "spanet": {"channels": 8},
}
BUILTIN = [n for n in BACKBONES.names() if BACKBONES.info(n).source == "builtin"]


@pytest.mark.parametrize("name", BUILTIN)
def test_onnx_runtime_matches_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    backbone = BACKBONES.build({"type": name, **SMALL.get(name, {})})
    if getattr(backbone, "not_exportable", None):  # e.g. SPANet: a loop over the image's rows
        with pytest.raises(OnnxExportError, match="cannot be exported to ONNX: .+"):
            export_onnx(backbone, tmp_path / f"{name}.onnx")
        return
    path = export_onnx(backbone, tmp_path / f"{name}.onnx")
    # Two sizes other than the traced one, one with a batch of two: the axes really are dynamic.
    report = check_onnx(backbone, path, atol=1e-4)
    assert report.max_abs_diff < 1e-4
    assert {s[0] for s in report.shapes} == {1, 2}


def test_check_catches_a_different_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    exported = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    path = export_onnx(exported, tmp_path / "a.onnx")
    other = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(10.0)
    with pytest.raises(OnnxExportError, match="differs from PyTorch"):
        check_onnx(other, path)


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    backbone = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    spec = {"type": "hagg", "channels": 4, "num_blocks": 2}
    model = save_model(tmp_path / "model.safetensors", {"backbone": backbone}, {"backbone": spec})
    assert main(["export", "--checkpoint", str(model), "--output", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "ONNX Runtime matches PyTorch" in out
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((1, 3, 33, 71), dtype=np.float32)
    (restored,) = session.run(None, {"image": image})
    assert restored.shape == image.shape and 0.0 <= restored.min() and restored.max() <= 1.0
