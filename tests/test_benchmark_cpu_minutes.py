"""tools/benchmark_cpu_minutes.py runs end to end on generated images (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_val_every_must_be_positive_and_val_a_folder(tmp_path):
    for extra, message in ((["--val-every", "0"], "--val-every must be at least 1"),
                           (["--val", str(tmp_path / "nowhere")], "not a folder")):
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark_cpu_minutes.py"), "--quick", *extra],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 2 and message in proc.stderr


def test_quick_mode_trains_scores_each_mark_and_writes_the_table(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark_cpu_minutes.py"), "--quick", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "cpu_minutes.json").read_text())
    assert results["quick"] and results["cpu"]["model"] and results["threads"] == 1
    assert [row["mark_minutes"] for row in results["marks"]] == [0.1, 0.2]
    for row in results["marks"]:
        assert row["iteration"] >= 2 and (out / "run" / "checkpoints" / f"iter_{row['iteration']:08d}").is_dir()
        assert 5 < row["psnr_y"] < 60 and 0 < row["ssim_y"] <= 1 and abs(row["bias"]) < 128
        # the split into rainy and rain-free pixels adds up to the bias (up to the float sums' rounding)
        assert row["bias_rain"] + row["bias_rain_free"] == pytest.approx(row["bias"], abs=1e-6)
    assert 5 < results["input"]["psnr_y"] < 60
    # The rainy input: its rain brightens it, and where it has none it is the truth up to the 1-level threshold.
    assert results["input"]["bias_rain"] > 0 and 0 <= results["input"]["bias_rain_free"] <= 1.0
    # Validation columns (--quick scores its test pairs as validation pairs): the same model, the same numbers.
    assert results["val"]["input"] == results["input"]
    assert all(row["val"]["psnr_y"] == row["psnr_y"] for row in results["marks"])
    assert "val gain" in proc.stdout
    assert "CPU: " in proc.stdout and "PSNR-Y" in proc.stdout and "input" in proc.stdout
