"""Issue 19, one-line Python use: ``restorekit.load(path)(photo)`` for arrays, PIL images and tensors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import restorekit
from restorekit import deploy
from restorekit.errors import CheckpointError
from restorekit.inference import Restorer
from restorekit.model_file import load_model, save_model
from restorekit.registries import BACKBONES
from restorekit.testing import make_photo

SPEC = {"type": "hagg", "channels": 4, "num_blocks": 2}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = BACKBONES.build(SPEC)
    for p in net.parameters():  # a network that visibly changes photos, so "same as Restorer" means something
        p.data.normal_(0, 0.2)
    folder = tmp_path_factory.mktemp("run")
    save_model(folder / "model.safetensors", {"backbone": net}, {"backbone": SPEC}, {"method": "dt", "iteration": 7})
    return folder


@pytest.fixture(scope="module")
def reference(run_folder):
    return Restorer(load_model(run_folder).backbone)


def test_import_restorekit_imports_no_torch_and_offers_load():
    code = "import sys, restorekit; print(callable(restorekit.load), any(m.startswith('torch') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_numpy_in_numpy_out_equal_to_the_restorer(run_folder, reference):
    model = restorekit.load(run_folder, device="cpu")
    photo = make_photo(3, 37, 45)
    restored = model(photo)
    assert restored.dtype == np.uint8 and restored.shape == photo.shape
    assert np.array_equal(restored, reference(photo)) and not np.array_equal(restored, photo)
    assert model.spec == SPEC and model.info["iteration"] == 7 and model.path == run_folder / "model.safetensors"
    assert "hagg" in repr(model) and model.device == torch.device("cpu")


def test_tiles_give_the_same_result(run_folder):
    photo = make_photo(4, 90, 70)
    whole = restorekit.load(run_folder / "model.safetensors")(photo)
    tiled_model = restorekit.load(str(run_folder), tile=32)
    assert tiled_model.restorer.tile == 32 and np.array_equal(tiled_model(photo), whole)


def test_tensors_keep_their_shape_dtype_and_device(run_folder, reference):
    model = restorekit.load(run_folder)
    photo = make_photo(5, 32, 40)
    batch = torch.from_numpy(photo).permute(2, 0, 1).unsqueeze(0).double() / 255
    out = model(batch)
    assert out.shape == batch.shape and out.dtype == torch.float64
    expected = torch.from_numpy(reference(photo)).permute(2, 0, 1).double() / 255
    assert torch.allclose(out[0], expected, atol=0.5 / 255 + 1e-6)  # uint8 rounding is the only difference
    single = model(batch[0].float())
    assert single.shape == (3, 32, 40) and single.dtype == torch.float32
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)


def test_pil_images_come_back_in_their_mode(run_folder, reference):
    image_module = pytest.importorskip("PIL.Image")
    model = restorekit.load(run_folder)
    photo = make_photo(6, 30, 20)
    rgb = model(image_module.fromarray(photo))
    assert rgb.mode == "RGB" and rgb.size == (20, 30) and np.array_equal(np.asarray(rgb), reference(photo))
    rgba = image_module.fromarray(np.dstack([photo, np.full(photo.shape[:2], 77, np.uint8)]), "RGBA")
    out = model(rgba)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], np.full((30, 20), 77))
    assert model(image_module.fromarray(photo).convert("L")).mode == "L"


def test_bad_inputs_say_what_is_expected(run_folder):
    model = restorekit.load(run_folder)
    with pytest.raises(ValueError, match=r"H×W×3 uint8 RGB array, got float32 of shape \(8, 8, 3\)"):
        model(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="float tensor"):
        model(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"3×H×W or N×3×H×W, got \(1, 8, 8\)"):
        model(torch.zeros(1, 8, 8))
    with pytest.raises(TypeError, match="got builtins.list"):
        model([[0]])


def test_a_name_that_is_neither_a_path_nor_built_in_lists_the_built_in_models(tmp_path, monkeypatch, run_folder):
    monkeypatch.setattr(deploy, "BUILTIN_MODELS", {})  # none registered, not even restorekit's own
    with pytest.raises(CheckpointError, match=r"'real-rain': no such model file or folder.*built-in models: none yet"):
        restorekit.load("real-rain")
    deploy.register_builtin("real-rain", "test entry", lambda: run_folder / "model.safetensors")
    assert restorekit.load("real-rain").info["iteration"] == 7  # the hook: a name loads its shipped file
    with pytest.raises(CheckpointError, match=r"built-in models: real-rain\)\. Did you mean 'real-rain'\?"):
        restorekit.load("real-rian")
    with pytest.raises(ValueError, match="already registered"):
        deploy.register_builtin("real-rain", "again", lambda: tmp_path)
    deploy.register_builtin("gone", "its file is missing", lambda: tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match="built-in model 'gone': its file .* is missing"):
        restorekit.load("gone")
