"""Issue 19, training curves: metrics.jsonl, its resume without duplicates, curves.png, TensorBoard.

Runs are tiny (a 4-channel hagg on 48×48 photos, a few iterations) and in this process, except
the one that hides matplotlib and tensorboard from a fresh interpreter.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

from restorekit.config import load_config
from restorekit.data.io import read_image
from restorekit.engine.metrics_log import (
    METRICS_FILE,
    MetricsLog,
    plot_curves,
    read_metrics,
)
from restorekit.engine.progress import TrainingProgress
from restorekit.engine.trainer import Trainer
from restorekit.testing import write_tiny_config

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, data: dict[str, Path], evaluate: bool = True, **train: object) -> Path:
    evaluation = f"{{data: '{data['paired']}', every: 2}}" if evaluate else "{data: null}"
    return write_tiny_config(tmp_path / "tiny.yaml", data["rainy"], data["clean"], eval=evaluation,
                             **{"checkpoint_every": 100, **train})


def fit(config: Path, work: Path, *overrides: str, resume: bool = False):
    out = io.StringIO()
    console = Console(file=out, markup=False, highlight=False, soft_wrap=True, width=300)
    trainer = Trainer(load_config(config, overrides), work_dir=work, resume=resume, allow_changes=resume, console=console)
    result = trainer.fit()
    return result, out.getvalue()


def stop_at(monkeypatch, iteration: int) -> None:
    original = TrainingProgress.advance

    def advance(self, t):
        original(self, t)
        if t == iteration:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(TrainingProgress, "advance", advance)


def of_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["kind"] == kind]


# --------------------------------------------------------------------------- the file itself
def test_records_hold_the_method_logs_lr_speed_and_evaluations(tmp_path, data):
    pytest.importorskip("matplotlib")
    result, printed = fit(write_config(tmp_path, data), tmp_path / "run")
    records = read_metrics(tmp_path / "run")
    train = of_kind(records, "train")
    assert [r["iteration"] for r in train] == [1, 2, 3, 4, 5, 6]
    # dt reports its two objectives, their weights and the weighted sum; the trainer adds lr and speed
    assert {"loss", "soft", "hard", "alpha", "beta", "lr", "it_per_s"} <= set(train[0])
    assert train[2]["alpha"] == pytest.approx(3 / 1000)  # the paper's dynamic alpha = t / 1000 at t = 3
    evals = of_kind(records, "eval")
    assert [(r["iteration"], r.get("final", False)) for r in evals] == [(2, False), (4, False), (6, True)]
    assert set(evals[0]) >= {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    # the final rows are eval.json's, by role
    table = json.loads((tmp_path / "run" / "eval.json").read_text())
    final = {r["label"]: r for r in records if r.get("final") or r["kind"] == "baseline"}
    assert set(final) == set(table)
    for label, row in table.items():
        assert final[label]["psnr_y"] == pytest.approx(row["psnr_y"])
    assert (tmp_path / "run" / "curves.png").is_file() and read_image(tmp_path / "run" / "curves.png").shape[2] == 3
    assert f"curves: {tmp_path / 'run' / 'curves.png'}" in printed


def test_a_resumed_run_drops_what_the_crashed_attempt_wrote_after_its_checkpoint(tmp_path, data, monkeypatch):
    config = write_config(tmp_path, data, evaluate=False)
    fit(config, tmp_path / "whole")
    with monkeypatch.context() as m:
        stop_at(m, 3)
        first, _ = fit(config, tmp_path / "split")
    assert first.interrupted == "SIGTERM"
    # A hard crash after the checkpoint at 3 would leave later records and a cut line behind.
    with open(tmp_path / "split" / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write('{"kind": "train", "iteration": 4, "loss": 9.0}\n{"kind": "train", "iteration": 5, "lo')
    fit(config, tmp_path / "split", resume=True)

    whole, split = of_kind(read_metrics(tmp_path / "whole"), "train"), of_kind(read_metrics(tmp_path / "split"), "train")
    assert [r["iteration"] for r in split] == [1, 2, 3, 4, 5, 6]
    # resumption is exact, so the resumed file holds the same numbers as the uninterrupted run's
    for a, b in zip(whole, split):
        assert {k: v for k, v in a.items() if k != "it_per_s"} == {k: v for k, v in b.items() if k != "it_per_s"}
    lines = (tmp_path / "split" / METRICS_FILE).read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # no cut line survives


def test_resume_of_a_finished_run_keeps_one_set_of_final_records(tmp_path, data):
    config = write_config(tmp_path, data, iters=2, checkpoint_every=2)
    fit(config, tmp_path / "run")
    fit(config, tmp_path / "run", "train.iters=4", resume=True)
    records = read_metrics(tmp_path / "run")
    assert [r["iteration"] for r in of_kind(records, "train")] == [1, 2, 3, 4]
    assert [r["iteration"] for r in records if r.get("final")] == [4]
    assert {r["iteration"] for r in of_kind(records, "baseline")} == {4}


def test_metrics_log_unit_behaviour(tmp_path):
    log = MetricsLog(tmp_path, start=0)
    log.train(1, {"loss": 0.5, "kind": 3.0, "lr": 1e-4, "odd": float("nan")}, speed=2.0)
    log.evaluation(1, {"psnr_y": 20.0, "ssim_y": float("inf")})
    log.close(curves=False)
    first, second = read_metrics(tmp_path)
    # a method's log named like a record key is kept apart; JSON has no NaN or Infinity
    assert first == {"kind": "train", "iteration": 1, "loss": 0.5, "logs.kind": 3.0, "lr": 1e-4, "odd": None, "it_per_s": 2.0}
    assert second == {"kind": "eval", "iteration": 1, "psnr_y": 20.0, "ssim_y": None}
    # a new run (start 0) in the same folder starts a new file
    MetricsLog(tmp_path, start=0).close(curves=False)
    assert read_metrics(tmp_path) == []
    # the ranks other than the first write nothing
    MetricsLog(tmp_path / "rank1", enabled=False).train(1, {"loss": 1.0})
    assert not (tmp_path / "rank1").exists()


def test_plot_curves_needs_training_records_and_draws_all_panels(tmp_path):
    pytest.importorskip("matplotlib")
    log = MetricsLog(tmp_path, start=0)
    for t in range(1, 11):
        log.train(t, {"loss": 1 / t, "alpha": t / 10, "beta": 10 / (10 + t), "lr": 1e-3}, speed=5.0)
    log.evaluation(10, {"psnr_y": 25.0, "ssim_y": 0.8}, label="net", final=True)
    log.final_evaluation(10, {"degraded input": {"role": "input", "psnr_y": 22.0}, "net": {"role": "network", "psnr_y": 25.0}})
    path = log.close()
    image = read_image(path)
    assert image.shape == (640, 1000, 3) and image.std() > 10  # a drawn figure, not a blank canvas
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no training record"):
        plot_curves(empty, tmp_path / "x.png")


def test_curves_command_redraws_from_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    log = MetricsLog(tmp_path / "run", start=0)
    log.train(1, {"loss": 1.0, "lr": 1e-3})
    log.close(curves=False)
    done = subprocess.run([sys.executable, "-m", "restorekit", "curves", str(tmp_path / "run")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "run" / "curves.png").is_file()
    missing = subprocess.run([sys.executable, "-m", "restorekit", "curves", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == 2 and "metrics.jsonl" in missing.stdout and "Traceback" not in missing.stderr


# --------------------------------------------------------------------------- optional packages
def test_tensorboard_gets_the_same_scalars_and_the_sample_grids(tmp_path, data):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_config(tmp_path, data, sample_every=3)
    fit(config, tmp_path / "run", "train.tensorboard=true")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/soft", "train/hard", "train/alpha", "train/beta", "train/lr", "eval/psnr_y"} <= set(tags["scalars"])
    records = of_kind(read_metrics(tmp_path / "run"), "train")
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["loss"] for r in records])
    # the grids of iterations 1 (the first), 3 and 6
    assert [e.step for e in events.Images("samples")] == [1, 3, 6]


def test_without_matplotlib_and_tensorboard_training_runs_and_says_how_once(tmp_path, data):
    config = write_config(tmp_path, data, iters=2)
    hide = "import sys; sys.modules['matplotlib'] = None; sys.modules['tensorboard'] = None; "
    run = "from restorekit.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", hide + run, "train", str(config), "--tensorboard", "--work-dir", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=ROOT,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert out.count("pip install 'restorekit[plots]'") == 1 and out.count("pip install 'restorekit[tensorboard]'") == 1
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / METRICS_FILE).is_file()
    assert not (tmp_path / "run" / "curves.png").exists()
    assert "tensorboard: true" in (tmp_path / "run" / "config.yaml").read_text()  # --tensorboard is the config key


@pytest.mark.parametrize("ema", ["null", "0.5"])
def test_evaluating_during_training_changes_nothing_of_the_training(tmp_path, data, ema):
    """The main job scores its held-out pairs every 100 iterations for its curves: that must not
    change what it learns (evaluation draws no random number and leaves the modes as it found them)."""
    from safetensors.torch import load_file

    config = write_config(tmp_path, data)  # eval.every: 2
    fit(config, tmp_path / "scored", f"train.ema={ema}")
    fit(config, tmp_path / "plain", "eval.every=0", f"train.ema={ema}")
    a, b = load_file(str(tmp_path / "scored" / "model.safetensors")), load_file(str(tmp_path / "plain" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(of_kind(read_metrics(tmp_path / "scored"), "eval")) == 3
    assert len(of_kind(read_metrics(tmp_path / "plain"), "eval")) == 1
