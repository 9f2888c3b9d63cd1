"""End to end through the command line: train (dt and sv), test, restore, on tiny generated data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from restorekit.data.io import list_images
from restorekit.testing import make_paired_folder, make_unpaired_folders

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.crop_size=32", "data.batch_size=4", "train.sample_every=0", "train.log_every=1", "train.lr=2e-3"]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restorekit", *args], cwd=cwd, capture_output=True, text=True)


def logged_losses(work_dir: Path) -> list[float]:
    text = (work_dir / "train.log").read_text()
    return [float(v) for v in re.findall(r" loss ([0-9.]+)", text)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rainy, clean = make_unpaired_folders(root, n_rainy=4, n_clean=4, size=48)
    return {"rainy": rainy, "clean": clean, "paired": make_paired_folder(root / "paired", n=3, size=48)}


@pytest.mark.slow
def test_dt_trains_and_its_loss_goes_down(tmp_path, data):
    work = tmp_path / "run"
    result = run_cli(
        "train", "configs/dt_hagg.yaml", *TINY, "train.iters=40", "dt.weights={type: fixed, alpha: 1, beta: 1}",
        f"data.rainy={data['rainy']}", f"data.clean={data['clean']}", f"eval.data={data['paired']}",
        "--work-dir", str(work),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    losses = logged_losses(work)
    assert len(losses) == 40
    assert sum(losses[-10:]) < sum(losses[:10])
    # the final table compares the input, the filter and the network
    table = json.loads((work / "eval.json").read_text())
    assert list(table) == ["degraded input", "median filter (soft label)", "hagg (dt)"]
    assert (work / "model.safetensors").is_file() and (work / "checkpoints" / "latest").is_file()
    assert (work / "config.yaml").read_text().count("rainy:") == 1


@pytest.mark.slow
def test_sv_trains_and_its_loss_goes_down(tmp_path, data):
    work = tmp_path / "run"
    result = run_cli(
        "train", "configs/dt_hagg.yaml", "method=sv", *TINY, "train.iters=40",
        f"data.paired={data['paired']}", f"eval.data={data['paired']}", "--work-dir", str(work),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    losses = logged_losses(work)
    assert sum(losses[-10:]) < sum(losses[:10])
    assert list(json.loads((work / "eval.json").read_text())) == ["degraded input", "hagg (sv)"]


@pytest.mark.slow
def test_test_and_restore_commands_use_the_trained_model(tmp_path, data):
    work = tmp_path / "run"
    assert run_cli(
        "train", "configs/dt_hagg.yaml", *TINY, "train.iters=3", "eval.data=null",
        f"data.rainy={data['rainy']}", f"data.clean={data['clean']}", "--work-dir", str(work),
    ).returncode == 0

    scores = tmp_path / "scores.json"
    csv = tmp_path / "per_image.csv"
    result = run_cli("test", "--checkpoint", str(work), "--data", str(data["paired"]), "--json", str(scores), "--csv", str(csv))
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(json.loads(scores.read_text())) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "brightness"}
    assert csv.read_text().splitlines()[0] == "image,psnr_y,ssim_y,psnr_rgb,ssim_rgb,brightness"
    assert len(csv.read_text().splitlines()) == 4

    out = tmp_path / "restored"
    result = run_cli("restore", "--checkpoint", str(work / "model.safetensors"), "--input", str(data["rainy"]), "--output", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in list_images(out)] == [p.with_suffix(".png").name for p in list_images(data["rainy"])]


def test_tools_shims_and_cli_listing():
    result = subprocess.run([sys.executable, "tools/train.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "--resume" in result.stdout
    listing = run_cli("list", "backbones")
    assert {"ddn", "hagg", "jordere", "prenet", "prenet_r", "prn", "prn_r"} <= set(listing.stdout.split())
    assert run_cli("validate", "configs/dt_hagg.yaml").returncode == 0
    bad = run_cli("validate", "configs/dt_hagg.yaml", "train.iters=0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout
    assert "train.iters" in bad.stdout
