"""The second reliability pass: a user's photos are never overwritten, a config never runs code
unless the user allows it, a run is never lost or mixed with another, and every resource limit
holds for every format. Each test reproduces one finding of that pass."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit import BACKBONES
from restorekit.cli import main
from restorekit.config import load_config, parse_override
from restorekit.data.io import decode_image, list_images, read_image, write_image
from restorekit.engine.run_folder import RunLock
from restorekit.errors import ConfigError, ImageReadError
from restorekit.inference import NonFiniteOutputError, Restorer
from restorekit.model_file import save_model
from restorekit.testing import make_photo, write_tiny_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small hagg model file (untrained: restoring is what is tested, not quality)."""
    torch.manual_seed(0)
    net = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    return save_model(tmp_path_factory.mktemp("model") / "model.safetensors", {"backbone": net},
                      {"backbone": {"type": "hagg", "channels": 4, "num_blocks": 2}})


def tiny_config(tmp_path: Path, data: dict[str, Path], iters: int = 4) -> Path:
    return write_tiny_config(tmp_path / "tiny.yaml", data["rainy"], data["clean"], iters=iters)


# --------------------------------------------------------------------------- 1. restore never overwrites
def test_restore_refuses_to_write_into_its_input_folder(tmp_path, model, capsys):
    photos = tmp_path / "photos"
    write_image(photos / "a.png", make_photo(1))
    before = (photos / "a.png").read_bytes()
    assert main(["restore", "--checkpoint", str(model), "--input", str(photos), "--output", str(photos)]) == 2
    assert "is the input folder: the restored photos would replace the originals" in capsys.readouterr().out
    assert main(["restore", "--checkpoint", str(model), "--input", str(photos), "--output", str(photos / "restored")]) == 2
    assert "is inside the input folder" in capsys.readouterr().out
    assert (photos / "a.png").read_bytes() == before and sorted(p.name for p in photos.iterdir()) == ["a.png"]


def test_restore_refuses_existing_outputs_unless_overwrite(tmp_path, model, capsys):
    write_image(tmp_path / "in" / "a.png", make_photo(1))
    out = tmp_path / "out"
    args = ["restore", "--checkpoint", str(model), "--input", str(tmp_path / "in"), "--output", str(out)]
    assert main(args) == 0
    (out / "a.png").write_bytes(b"my own file")
    capsys.readouterr()
    assert main(args) == 2
    assert f"1 output file(s) already exist ({out / 'a.png'}); pass --overwrite" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == b"my own file"
    assert main([*args, "--overwrite"]) == 0 and read_image(out / "a.png").shape == (48, 48, 3)


def test_photos_whose_names_collide_get_outputs_of_their_own(tmp_path, model, capsys):
    for i, name in enumerate(("a.jpg", "a.jpg.png", "a.tif")):
        write_image(tmp_path / "in" / name, make_photo(i))
    out = tmp_path / "out"
    assert main(["restore", "--checkpoint", str(model), "--input", str(tmp_path / "in"), "--output", str(out)]) == 0
    assert "restored 3 image(s)" in capsys.readouterr().out
    assert len(list_images(out)) == 3


def test_output_naming_a_file_writes_that_file(tmp_path, model):
    write_image(tmp_path / "photo.jpg", make_photo(1))
    target = tmp_path / "result.png"
    assert main(["restore", "--checkpoint", str(model), "--input", str(tmp_path / "photo.jpg"), "--output", str(target)]) == 0
    assert target.is_file() and read_image(target).shape == (48, 48, 3)


def test_an_animated_gif_is_restored_and_said_so(tmp_path, model, capsys):
    import cv2

    if not hasattr(cv2, "imencodeanimation"):
        pytest.skip(f"OpenCV {cv2.__version__} cannot write an animated GIF")
    animation = cv2.Animation()
    animation.frames = [cv2.cvtColor(make_photo(i), cv2.COLOR_RGB2BGR) for i in range(2)]
    animation.durations = [100, 100]
    ok, data = cv2.imencodeanimation(".gif", animation)
    assert ok
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "anim.gif").write_bytes(data.tobytes())
    assert main(["restore", "--checkpoint", str(model), "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "an animated GIF; restored its first frame" in out and "restored 1 image(s)" in out
    assert (tmp_path / "out" / "anim.png").is_file()


# --------------------------------------------------------------------------- 2. a resume continues the run
def test_resume_without_a_config_continues_with_the_runs_own(tmp_path, data, capsys):
    config, work = tiny_config(tmp_path, data), tmp_path / "run"
    assert main(["train", str(config), "data.crop_size=24", "train.iters=2", "--work-dir", str(work)]) == 0
    capsys.readouterr()
    # The config file alone (no override) is another run: refused, naming the keys.
    assert main(["train", str(config), "--resume", "--work-dir", str(work)]) == 1
    out = capsys.readouterr().out
    assert "the config differs from the run's" in out and "data.crop_size: 24 in the run, 32 now" in out
    # A longer run is safe to ask for, but only explicitly.
    assert main(["train", "--resume", "--work-dir", str(work), "train.iters=4"]) == 1
    assert "pass --allow-changes" in capsys.readouterr().out
    assert main(["train", "--resume", "--work-dir", str(work), "train.iters=4", "--allow-changes"]) == 0
    out = capsys.readouterr().out
    assert "resuming with changed train.iters" in out and "iter 4/4" in out


# --------------------------------------------------------------------------- 3. one training per folder
def test_a_second_training_into_a_locked_folder_fails_at_once_naming_the_holder(tmp_path, data, capsys):
    config, work = tiny_config(tmp_path, data), tmp_path / "run"
    with RunLock(work) as lock:
        lock.claim()
        assert main(["train", str(config), "--work-dir", str(work)]) == 1
    out = capsys.readouterr().out
    assert f"run folder {work} is in use by another training (pid {os.getpid()} on" in out
    assert not (work / "checkpoints").exists()


def test_a_lock_left_by_a_killed_run_is_stale(tmp_path, data, capsys):
    config, work = tiny_config(tmp_path, data, iters=2), tmp_path / "run"
    work.mkdir()
    (work / ".lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere", "started": "x", "command": "y"}))
    assert main(["train", str(config), "--work-dir", str(work)]) == 0
    assert (work / "model.safetensors").is_file() and not (work / ".lock").exists()


# --------------------------------------------------------------------------- 4. convert never replaces a model
def test_convert_into_a_run_with_a_model_needs_overwrite(tmp_path, capsys):
    from test_hagg import authors_state_dict

    src = tmp_path / "latest_net_G.pth"
    torch.save(authors_state_dict(False), src)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"a trained model")
    assert main(["convert", "--from", "rain-over-me", str(src), str(run)]) == 2
    assert "already exists (a trained model?); nothing was written" in capsys.readouterr().out
    assert (run / "model.safetensors").read_bytes() == b"a trained model"
    assert main(["convert", "--from", "rain-over-me", str(src), str(run), "--overwrite"]) == 0


# --------------------------------------------------------------------------- 5. a command-line value is taken whole
def test_a_value_with_a_hash_is_taken_whole_or_refused():
    assert parse_override("data.rainy=/photos/my rain #2") == (["data", "rainy"], "/photos/my rain #2")
    assert parse_override('data.rainy="quoted #3"') == (["data", "rainy"], "quoted #3")
    with pytest.raises(ConfigError, match="reads as the start of a comment"):
        parse_override("train.iters=5 # five")


# --------------------------------------------------------------------------- 6. a broken model is refused
def test_a_model_with_nan_weights_is_refused_by_restore_test_and_export(tmp_path, capsys):
    net = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    with torch.no_grad():
        net.head.weight[0, 0, 0, 0] = float("nan")
    bad = save_model(tmp_path / "nan.safetensors", {"backbone": net}, {"backbone": {"type": "hagg", "channels": 4,
                                                                                     "num_blocks": 2}})
    write_image(tmp_path / "in" / "a.png", make_photo(1))
    for args in (["restore", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
                 ["test", "--data", "demo:rain/test"], ["export", "--output", str(tmp_path / "m.onnx")]):
        assert main([args[0], "--checkpoint", str(bad), *args[1:]]) == 2
        assert "the weights hold NaN or Inf values (backbone.head.weight (1))" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_a_network_whose_output_is_nan_is_reported_not_saved_black():
    class Overflowing(torch.nn.Module):
        def forward(self, x):
            return x * float("inf")

    with pytest.raises(NonFiniteOutputError, match="output holds NaN or Inf"):
        Restorer(Overflowing())(make_photo(1))


# --------------------------------------------------------------------------- 7. a config runs no code unless allowed
def test_imports_of_a_base_file_resolve_beside_that_file_and_only_run_when_allowed(tmp_path):
    base = tmp_path / "shared" / "base.yaml"
    base.parent.mkdir()
    (base.parent / "my_losses.py").write_text(
        "from torch import nn\nimport restorekit\n\n@restorekit.LOSSES.register('rk_base_local_l1')\n"
        "class L1(nn.Module):\n    def forward(self, pred, target, **ctx):\n        return (pred - target).abs().mean()\n"
    )
    base.write_text("imports: [my_losses.py]\n")
    config = tmp_path / "experiment" / "c.yaml"
    config.parent.mkdir()
    config.write_text(f"_base_: {base}\ndt: {{hard_loss: {{type: rk_base_local_l1}}}}\n")
    with pytest.raises(ConfigError, match="unless you allow it for this run"):
        load_config(config, check_data_folders=False)
    skipped = load_config(config, check_data_folders=False, imports="skip")
    assert "rk_base_local_l1" not in __import__("restorekit").LOSSES.names()
    assert any("not checked" in note for note in skipped.notes)
    with __import__("restorekit").LOSSES.scoped():
        ran = load_config(config, check_data_folders=False, imports="run")
        assert ran.config.imports == [str(base.parent / "my_losses.py")]
        assert ran.config.dt.hard_loss == {"type": "rk_base_local_l1"}


# --------------------------------------------------------------------------- 8. the size limit holds for every format
def _tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose only IFD declares ``width``×``height`` (its pixel data is missing)."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\0" * 1000


def test_a_tiff_declaring_289_megapixels_is_refused_before_decoding():
    with pytest.raises(ImageReadError, match="17000×17000 is 289 megapixels, more than the 250 MP"):
        decode_image(_tiff_header(17000, 17000), "bomb.tif")


@pytest.mark.parametrize("ext", [".bmp", ".webp", ".ppm", ".gif", ".tif"])
def test_every_format_reports_its_size_before_decoding(ext, monkeypatch):
    import cv2

    from restorekit.data import io as rkio

    ok, encoded = cv2.imencode(ext, np.zeros((30, 40, 3), np.uint8))
    assert ok and rkio.declared_size(encoded.tobytes()) == (40, 30)
    monkeypatch.setattr(rkio, "MAX_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="40×30"):
        decode_image(encoded.tobytes(), f"x{ext}")


def test_bytes_of_an_unknown_format_are_not_decoded():
    with pytest.raises(ImageReadError, match="not a decodable image"):
        decode_image(b"\0\1\2\3 definitely not an image" * 10, "x.bin")


# --------------------------------------------------------------------------- 9. out of memory names --tile
def test_out_of_memory_while_restoring_names_tile(tmp_path, model, monkeypatch, capsys):
    write_image(tmp_path / "in" / "a.png", make_photo(1))

    def out_of_memory(self, image):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")

    monkeypatch.setattr(Restorer, "__call__", out_of_memory)
    assert main(["restore", "--checkpoint", str(model), "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out")]) == 1
    assert "restore in tiles: --tile 512" in capsys.readouterr().out


# --------------------------------------------------------------------------- 10. validate checks what train builds
@pytest.mark.parametrize(
    "override, words",
    [
        ("runtime.device=gpu", "unknown device 'gpu'"),
        ("backbone.channels=0", "hagg channels must be a whole number >= 1, got 0"),
        ("backbone.channels=-5", "hagg channels must be a whole number >= 1, got -5"),
        ("dt.soft_label.kernel_size=100001", "median kernel_size must be at most 255"),
        ("dt.soft_label={type: bilateral, diameter: 100001}", "bilateral diameter must be from 1 to 63"),
    ],
)
def test_validate_refuses_what_train_would(override, words, capsys):
    assert main(["validate", str(CONFIGS / "dt_hagg_cpu.yaml"), override]) == 2
    out = capsys.readouterr().out
    assert words in out and "Traceback" not in out


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    import restorekit.cli as cli

    def broken(args, console):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setitem(cli.COMMANDS, "validate", broken)
    assert main(["validate", "x.yaml"]) == 1
    out = capsys.readouterr().out
    assert "error: ZeroDivisionError: float division by zero (an internal error" in out and "Traceback" not in out


# --------------------------------------------------------------------------- 12. smaller
def test_an_empty_file_in_the_latest_checkpoint_names_it_and_the_previous_one(tmp_path, data, capsys):
    config, work = tiny_config(tmp_path, data), tmp_path / "run"
    assert main(["train", str(config), "--work-dir", str(work), "train.iters=4"]) == 0
    (work / "model.safetensors").unlink()  # as if the run had stopped at iteration 4
    (work / "checkpoints" / "iter_00000004" / "training.safetensors").write_bytes(b"")
    capsys.readouterr()
    assert main(["train", "--resume", "--work-dir", str(work)]) == 2
    out = capsys.readouterr().out
    assert "iter_00000004: cannot read checkpoint: training.safetensors is empty (0 bytes)" in out
    assert "the previous complete checkpoint is iter_00000002" in out


def test_a_resume_with_another_architecture_names_the_key_in_one_line(tmp_path, data, capsys):
    config, work = tiny_config(tmp_path, data), tmp_path / "run"
    assert main(["train", str(config), "--work-dir", str(work)]) == 0
    capsys.readouterr()
    assert main(["train", str(config), "backbone.channels=8", "--resume", "--work-dir", str(work)]) == 1
    error = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "the config differs from the run's" in error[0] and "backbone:" in error[0]
    assert "size mismatch" not in error[0]


def test_a_base_naming_a_folder_says_so(tmp_path):
    (tmp_path / "configs").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text("_base_: configs\n")
    with pytest.raises(ConfigError, match="'configs' is a folder, not a config file"):
        load_config(config, check_data_folders=False)
