"""tools/benchmark_denoise.py: the split keeps test, tuning, validation and training photos apart,
prepare renders what the denoising configs read, and score runs end to end in --quick mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.data.io import read_image, write_image
from restorekit.model_file import save_model
from restorekit.registries import BACKBONES
from restorekit.testing import make_photo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("_benchmark_denoise", ROOT / "tools" / "benchmark_denoise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photo_folder(root: Path) -> Path:
    """Photos named like the shared collection: a Kodak test set and three other groups."""
    names = [f"kodak24_kodim{i:02d}" for i in range(1, 4)] + [f"mcmaster_{i:02d}" for i in range(1, 19)]
    names += [f"set5_{n}" for n in ("baby", "bird", "butterfly")] + [f"urban100_img_{i:03d}" for i in range(1, 10)]
    for i, name in enumerate(names):
        write_image(root / f"{name}.png", make_photo(i, 40, 40))
    return root


def test_split_is_disjoint_and_holds_every_kodak_photo_out(tool, tmp_path):
    groups = tool.split_photos(photo_folder(tmp_path))
    names = {role: {p.name for p in paths} for role, paths in groups.items()}
    assert names["test"] == {f"kodak24_kodim{i:02d}.png" for i in range(1, 4)}
    everything = [n for members in names.values() for n in members]
    assert len(everything) == len(set(everything)) == 33  # no photo in two groups, none left out
    assert not any(n.startswith("kodak24") for role, members in names.items() if role != "test" for n in members)
    # Every group of 8 gives one tuning and one validation photo; mcmaster (18) gives 2 of each.
    assert sorted(names["tune"]) == ["mcmaster_07.png", "mcmaster_15.png", "urban100_img_007.png"]
    assert sorted(names["val"]) == ["mcmaster_08.png", "mcmaster_16.png", "urban100_img_008.png"]
    assert tool.split_photos(tmp_path) == groups  # deterministic


def test_prepare_renders_noisy_sources_their_pairs_and_validation_sets(tool, tmp_path):
    manifest = tool.prepare(photo_folder(tmp_path / "photos"), tmp_path / "data")
    data = tmp_path / "data"
    noisy = sorted(p.name for p in (data / "noisy_s25").iterdir())
    assert noisy == sorted(p.name for p in (data / "paired_s25" / "rain").iterdir())
    assert {p.stem + ".png" for p in tool.split_photos(tmp_path / "photos")["noisy"]} == set(noisy)
    assert not set(noisy) & {p.name for p in (data / "clean").iterdir()}
    # sv learns from every training photo: the noisy photos' originals and the clean photos, no other.
    assert {p.name for p in (data / "sv_all").iterdir()} == set(noisy) | {p.name for p in (data / "clean").iterdir()}
    # The pairs are the noisy photos and their originals; the noise has the σ asked for.
    name = noisy[0]
    x = read_image(data / "paired_s25" / "rain" / name).astype(float)
    y = read_image(data / "paired_s25" / "gt" / name).astype(float)
    assert np.array_equal(x, read_image(data / "noisy_s25" / name))
    assert 20 < (x - y).std() < 27
    # Blind noise draws σ per photo within the range; validation sets are paired folders.
    sigmas = [r["sigma"] for r in manifest["sets"]["noisy_blind"]["rendered"]]
    assert all(tool.BLIND_SIGMA[0] <= s <= tool.BLIND_SIGMA[1] for s in sigmas) and len(set(sigmas)) == len(sigmas)
    assert sorted(p.name for p in (data / "val_s50" / "rain").iterdir()) == sorted(
        p.name for p in (data / "val_s50" / "gt").iterdir())
    assert json.loads((data / "manifest.json").read_text())["split"]["test"] == [f"kodak24_kodim{i:02d}.png" for i in range(1, 4)]


def test_model_arguments_parse(tool):
    assert tool.parse_model("dt=runs/a") == ("dt", None, Path("runs/a"))
    assert tool.parse_model("dt@25=runs/a") == ("dt", "s25", Path("runs/a"))
    assert tool.parse_model("dt@pg=runs/a") == ("dt", "pg", Path("runs/a"))
    with pytest.raises(Exception, match="LABEL=RUN"):
        tool.parse_model("runs/a")


def test_score_quick_runs_every_row_with_a_model(tool, tmp_path, capsys):
    torch.manual_seed(0)
    spec = {"type": "dncnn", "depth": 3, "features": 8, "head_init": "zero"}
    run = tmp_path / "run"
    save_model(run / "model.safetensors", {"backbone": BACKBONES.build(spec)}, {"backbone": spec},
               {"method": "dt", "iteration": 7})
    (run / "config.yaml").write_text("method: dt\ndt: {soft_label: {type: bilateral, sigma_color: 50.0}}\n"
                                     "data: {rainy: somewhere, batch_size: 8, crop_size: 64}\n")
    out = tmp_path / "bench.json"
    figure = tmp_path / "fig.jpg"
    assert tool.main(["score", "--quick", "--no-cbm3d", "--model", f"dt@25={run}", "--model", f"all={run}",
                      "--json", str(out), "--figure", str(figure)]) == 0
    result = json.loads(out.read_text())
    rows = {r["label"]: r for r in result["rows"]}
    assert list(rows) == ["noisy input", "NL-means (OpenCV)", "dt: soft label (bilateral)", "dt", "all: soft label (bilateral)", "all"]
    assert set(rows["dt"]["scores"]) == {"s25"} and set(rows["all"]["scores"]) == {"s15", "s25", "s50"}
    assert rows["dt"]["models"]["s25"]["iterations"] == 7
    # A zero-head network returns its input: its scores are the noisy input's.
    assert rows["all"]["scores"]["s25"]["psnr_rgb"] == pytest.approx(rows["noisy input"]["scores"]["s25"]["psnr_rgb"])
    # Noise is less for lower σ, and NL-means (tuned per σ on other photos) beats the input everywhere.
    psnr = {k: rows["noisy input"]["scores"][k]["psnr_rgb"] for k in ("s15", "s25", "s50")}
    assert psnr["s15"] > psnr["s25"] > psnr["s50"]
    assert all(rows["NL-means (OpenCV)"]["scores"][k]["psnr_rgb"] > psnr[k] for k in psnr)
    assert set(result["nlm"]) == {"s15", "s25", "s50"}
    assert result["figure"]["panels"][-1]["panel"] == "truth" and figure.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "PSNR / SSIM (RGB)" in printed and "PSNR / SSIM (Y)" in printed


def test_cbm3d_is_skipped_with_a_message_when_absent(tool, monkeypatch, capsys):
    monkeypatch.setattr(tool, "cbm3d_available", lambda: False)
    test = [("a", make_photo(1, 32, 32))]
    result = tool.score(test, test, [tool.gaussian(25)], [], seed=0)
    assert "CBM3D skipped" in capsys.readouterr().out
    assert [r["label"] for r in result["rows"]] == ["noisy input", "NL-means (OpenCV)"]


def test_the_test_noise_is_fixed_by_the_seed(tool):
    clean = make_photo(3, 32, 32)
    noise = tool.gaussian(25)
    assert np.array_equal(noise.noisy(clean, 0, 1), noise.noisy(clean, 0, 1))
    assert not np.array_equal(noise.noisy(clean, 0, 1), noise.noisy(clean, 0, 2))
    assert noise.sigma_for(clean) == 25.0
    pg = tool.poisson_gaussian(0.01, 0.0004)
    assert 0 < pg.sigma_for(clean) < 255 * (0.01 + 0.0004) ** 0.5
