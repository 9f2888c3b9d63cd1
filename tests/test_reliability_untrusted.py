"""Issue #8, untrusted files: nothing restorekit loads may execute code.

Weights load through safetensors; pickle-based files (the authors' released ``.pth``) load with
``torch.load(weights_only=True)``; configs load with a YAML SafeLoader. Each test builds a file
whose loading *would* run code (writing a marker file) and checks that it is refused cleanly
and the marker never appears.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from restorekit.cli import main
from restorekit.config import load_config
from restorekit.errors import CheckpointError, ConfigError
from restorekit.model_file import load_model, save_model
from restorekit.registries import BACKBONES

PACKAGE = Path(__file__).resolve().parents[1] / "restorekit"


class Payload:
    """Unpickling this runs ``os.system('touch <marker>')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def malicious_files(tmp_path: Path) -> dict[str, Path]:
    marker = tmp_path / "PWNED"
    files = {}
    state = {"inc.0.weight": torch.zeros(16, 3, 3, 3), "payload": Payload(marker)}
    files["zip.pth"] = tmp_path / "zip.pth"
    torch.save(state, files["zip.pth"])
    files["legacy.pth"] = tmp_path / "legacy.pth"
    torch.save(state, files["legacy.pth"], _use_new_zipfile_serialization=False)
    files["raw-pickle.pth"] = tmp_path / "raw-pickle.pth"
    files["raw-pickle.pth"].write_bytes(pickle.dumps({"net_G": Payload(marker)}, protocol=2))
    return files


@pytest.mark.parametrize("kind", ["zip.pth", "legacy.pth", "raw-pickle.pth"])
def test_convert_refuses_a_malicious_pth_without_running_it(tmp_path, capsys, kind):
    path = malicious_files(tmp_path)[kind]
    assert main(["convert", "--from", "rain-over-me", str(path), str(tmp_path / "out.safetensors")]) == 2
    out = capsys.readouterr().out
    assert re.search(rf"^error: {re.escape(str(path))}: refused: ", out, re.M), out
    if kind != "raw-pickle.pth":
        assert "loading it would call posix.system" in out or "loading it would call os.system" in out
    assert "weights_only=False" not in out and "Traceback" not in out  # never advise the unsafe load
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_pth_given_where_a_model_is_expected_is_not_unpickled(tmp_path, capsys):
    path = malicious_files(tmp_path)["zip.pth"]
    with pytest.raises(CheckpointError, match="not a readable safetensors model file .*restorekit convert --from"):
        load_model(path)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    assert main(["restore", "--checkpoint", str(path), "--input", str(photos), "--output", str(tmp_path / "o")]) == 2
    assert "restorekit convert --from rain-over-me" in capsys.readouterr().out
    assert not (tmp_path / "PWNED").exists()


def _model(tmp_path: Path, spec: dict, tensors: dict | None = None, **metadata: str) -> Path:
    net = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    path = save_model(tmp_path / "model.safetensors", {"backbone": net}, {"backbone": {"type": "hagg", "channels": 4,
                                                                                        "num_blocks": 2}})
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = {**f.metadata(), **metadata, "spec.backbone": json.dumps(spec)}
        weights = {k: f.get_tensor(k) for k in f.keys()} if tensors is None else tensors
    save_file(weights, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"type": "no_such_net"}, "unknown backbone 'no_such_net'"),
        ({"type": "hagg", "channels": -4}, "cannot be built here"),
        ({"type": "hagg", "num_blocks": 3}, "cannot be built here"),
        ({"type": "hagg", "evil": "__import__('os').system('touch PWNED')"}, "has no argument 'evil'"),
        ({"type": "hagg", "channels": 8}, "weights do not fit the network"),
    ],
)
def test_model_file_with_hostile_metadata_is_refused(tmp_path, spec, words):
    path = _model(tmp_path, spec)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value) and words in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_and_forged_safetensors_are_refused(tmp_path):
    good = _model(tmp_path, {"type": "hagg", "channels": 4, "num_blocks": 2})
    assert load_model(good).spec["type"] == "hagg"
    data = good.read_bytes()
    for name, forged in {
        "truncated": data[: len(data) // 2],
        "header-only": data[:8],
        "huge header length": (2**60).to_bytes(8, "little") + data[8:],
        "json garbage": len(b"{not json").to_bytes(8, "little") + b"{not json",
        "zero": b"",
    }.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(forged)
        with pytest.raises(CheckpointError, match="not a readable safetensors model file"):
            load_model(path)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign), metadata={"format": "pickle-me"})
    with pytest.raises(CheckpointError, match="not a restorekit model file"):
        load_model(foreign)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object:argparse.Namespace {{x: 1}}",
    ],
)
def test_yaml_python_tags_are_rejected_and_never_run(tmp_path, tag):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.yaml"
    path.write_text(f"train:\n  iters: {tag.format(marker=marker)}\n")
    with pytest.raises(ConfigError, match="not valid YAML: could not determine a constructor for the tag"):
        load_config(path)
    assert not marker.exists()
    base = tmp_path / "child.yaml"  # through _base_ inheritance too
    base.write_text("_base_: evil.yaml\n")
    with pytest.raises(ConfigError, match="evil.yaml: not valid YAML"):
        load_config(base)


def test_source_never_loads_unsafely():
    """A guard against regressions: every loader call in the package is a safe one."""
    problems = []
    for file in PACKAGE.rglob("*.py"):
        text = file.read_text(encoding="utf-8")
        for m in re.finditer(r"torch\.load\((?P<args>[^)]*)\)", text):
            if "weights_only=True" not in m["args"]:
                problems.append(f"{file.name}: torch.load without weights_only=True")
        for m in re.finditer(r"yaml\.(load|unsafe_load|full_load)\((?P<args>[^)]*)\)", text):
            if "Loader=_StrictSafeLoader" not in m["args"] and "SafeLoader" not in m["args"]:
                problems.append(f"{file.name}: yaml.{m[1]} without a SafeLoader")
        for pattern in (r"\bpickle\.loads?\(", r"\bdill\.", r"(?<![.\w`])eval\(", r"(?<![.\w`])exec\(", r"shell=True"):
            if re.search(pattern, text):
                problems.append(f"{file.name}: {pattern}")
    assert not problems
