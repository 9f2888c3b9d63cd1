"""The models restorekit ships (issue 15, item 8): found by name, offline, and worth using.

`restorekit restore --input photo --output out/` must work with nothing but the package, and
the shipped rain model must beat the rainy input on the built-in demo pairs: synthetic rain it
never trained on (it learnt from real rainy photos), which is the paper's cross-domain claim.
"""

from __future__ import annotations

import numpy as np
import pytest

import restorekit
from restorekit.cli import main
from restorekit.data.demo import resolve_folder
from restorekit.data.io import read_image, write_image
from restorekit.data.pairs import PairedSet
from restorekit.deploy import BUILTIN_MODELS, builtin_names
from restorekit.errors import CheckpointError
from restorekit.evaluation import evaluate
from restorekit.model_file import load_model
from restorekit.pretrained import DEFAULT_MODEL, SHIPPED, model_file
from restorekit.registries import BACKBONES


def test_every_shipped_model_is_installed_registered_and_loads():
    assert DEFAULT_MODEL in SHIPPED and set(SHIPPED) <= set(builtin_names())
    for name in SHIPPED:
        path = model_file(name)
        assert path.is_file(), f"{name}: {path} is missing from the package (package_data in setup.cfg?)"
        assert path.stat().st_size < 2_000_000  # weights only: the package stays small
        loaded = load_model(path)
        # The file names its network; rebuilding that spec gives the same parameter count.
        assert sum(p.numel() for p in loaded.backbone.parameters()) == sum(
            p.numel() for p in BACKBONES.build(loaded.spec).parameters()
        )
        assert loaded.info.get("trained_on"), f"{name}: the file should say what it was trained on"


def test_list_models_names_each_with_what_it_is(capsys):
    assert main(["list", "models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(BUILTIN_MODELS)
    assert all(line.split("\t")[1] for line in lines)


def test_restore_needs_no_checkpoint(tmp_path):
    photo = read_image(next(iter(sorted(resolve_folder("demo:rain/rainy").glob("*.png")))))
    write_image(tmp_path / "photo.png", photo)
    assert main(["restore", "--input", str(tmp_path / "photo.png"), "--output", str(tmp_path / "out")]) == 0
    restored = read_image(tmp_path / "out" / "photo.png")
    assert restored.shape == photo.shape and not np.array_equal(restored, photo)
    # --model names the same network explicitly and gives the same pixels
    assert main(["restore", "--model", DEFAULT_MODEL, "--input", str(tmp_path / "photo.png"),
                 "--output", str(tmp_path / "named")]) == 0
    assert np.array_equal(read_image(tmp_path / "named" / "photo.png"), restored)


def test_an_unknown_model_name_is_refused_with_the_names_there_are(tmp_path, capsys):
    write_image(tmp_path / "in" / "photo.png", np.zeros((16, 16, 3), np.uint8))
    code = main(["restore", "--model", "real-rian", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")])
    printed = capsys.readouterr()
    assert code == 2 and "Did you mean 'real-rain'" in printed.out + printed.err
    assert not (tmp_path / "o").exists()
    with pytest.raises(CheckpointError, match="Did you mean 'real-rain'"):
        restorekit.load("real-rian")


def test_checkpoint_and_model_cannot_both_be_given(tmp_path):
    with pytest.raises(SystemExit):
        main(["restore", "--model", DEFAULT_MODEL, "--checkpoint", str(tmp_path), "--input", "x", "--output", "y"])


@pytest.mark.parametrize("name", sorted(n for n in SHIPPED if "rain" in n))
def test_shipped_rain_model_beats_the_rainy_input_on_the_demo_pairs(name):
    model = restorekit.load(name, device="cpu")
    pairs = PairedSet(resolve_folder("demo:rain/test"))
    rainy = evaluate(pairs, lambda image: image, "rainy input").means
    restored = evaluate(pairs, model, name).means
    assert restored["psnr_y"] > rainy["psnr_y"] + 0.5, (restored, rainy)
    assert restored["ssim_y"] > rainy["ssim_y"], (restored, rainy)
