"""Issue #8, runs: a long run must never lose work or end in a traceback.

NaN losses, Ctrl-C and SIGTERM, an existing run folder, a crash or a full disk while a
checkpoint is written, files that vanish mid-run, and exact resumption (2N iterations in one
run equal N + resume + N, bit for bit). Runs are tiny: a 4-channel hagg on 48×48 photos.
"""

from __future__ import annotations

import errno
import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file
from torch import Tensor, nn

import restorekit.engine.checkpoint as ckpt
import restorekit.model_file as model_file
from restorekit.cli import main
from restorekit.config import load_config
from restorekit.engine.progress import TrainingProgress
from restorekit.engine.trainer import Trainer
from restorekit.errors import TrainingError
from restorekit.methods.dt import Distillation
from restorekit.registries import LOSSES
from restorekit.testing import write_tiny_config

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, data: dict[str, Path], **train: object) -> Path:
    return write_tiny_config(tmp_path / "tiny.yaml", data["rainy"], data["clean"], **train)


def fit(config: Path, work: Path, *overrides: str, resume: bool = False, allow_changes: bool = False):
    """Train in this process; returns the result and everything printed."""
    out = io.StringIO()
    console = Console(file=out, markup=False, highlight=False, soft_wrap=True, width=300)
    trainer = Trainer(load_config(config, overrides), work_dir=work, resume=resume, allow_changes=allow_changes,
                      console=console)
    return trainer.fit(), out.getvalue()


def stop_at(monkeypatch, iteration: int, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to this process during ``iteration``, as a user or a scheduler would."""
    original = TrainingProgress.advance

    def advance(self, t):
        original(self, t)
        if t == iteration:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(TrainingProgress, "advance", advance)


def tensors(path: Path) -> dict[str, Tensor]:
    return load_file(str(path))


def assert_identical(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def latest_of(work: Path) -> str:
    return (work / "checkpoints" / "latest").read_text().strip()


# --------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize(
    "overrides", [("data.num_workers=0",), ("data.num_workers=1",), ("data.num_workers=0", "train.ema=0.5")]
)
def test_2n_iterations_equal_n_then_resume_then_n(tmp_path, data, monkeypatch, overrides):
    config = write_config(tmp_path, data, checkpoint_every=100)
    fit(config, tmp_path / "whole", *overrides)

    with monkeypatch.context() as m:
        stop_at(m, 3)
        first, printed = fit(config, tmp_path / "split", *overrides)
    assert first.interrupted == "SIGTERM" and first.iteration == 3
    assert "SIGTERM received" in printed and latest_of(tmp_path / "split") == "iter_00000003"
    second, printed = fit(config, tmp_path / "split", *overrides, resume=True)
    assert second.iteration == 6 and "resuming" in printed and "(iteration 3)" in printed

    model = "model.safetensors"
    assert_identical(tensors(tmp_path / "whole" / model), tensors(tmp_path / "split" / model))
    final = "checkpoints/iter_00000006/training.safetensors"  # optimiser moments and generators too
    assert_identical(tensors(tmp_path / "whole" / final), tensors(tmp_path / "split" / final))


def test_ema_weights_are_the_saved_model_and_differ_from_the_last_step(tmp_path, data):
    config = write_config(tmp_path, data, checkpoint_every=100)
    fit(config, tmp_path / "run", "train.ema=0.5")
    model = tensors(tmp_path / "run" / "model.safetensors")
    checkpoint = tensors(tmp_path / "run" / "checkpoints" / "iter_00000006" / "model.safetensors")
    averaged = {k.replace("backbone_ema.module.", "backbone."): v for k, v in checkpoint.items() if ".module." in k}
    last = {k: v for k, v in checkpoint.items() if k.startswith("backbone.")}
    assert set(averaged) == {k for k in model if k.startswith("backbone.")} == set(last)
    assert_identical({k: model[k] for k in averaged}, averaged)  # the deployed model is the average
    assert any(not torch.equal(averaged[k], last[k]) for k in last)  # ...which is not the last step's weights
    # and a checkpoint folder given to test/restore/load is that same model, not the last step's weights
    loaded = model_file.load_model(tmp_path / "run" / "checkpoints" / "iter_00000006").backbone.state_dict()
    assert_identical({f"backbone.{k}": v for k, v in loaded.items()}, averaged)


@pytest.mark.parametrize("decay", [0.5, 0.995])
def test_weight_average_is_the_bias_corrected_average_of_every_step_so_far(decay):
    # After k updates: sum_i decay**(k-i) W_i / sum_i decay**(k-i). A plain EMA started from a copy
    # of W_1 would keep decay**(k-1) of W_1, the untrained network, in every early checkpoint.
    from restorekit.engine.trainer import make_ema

    net = nn.Conv2d(1, 1, 1)
    ema, history = make_ema(net, decay), []
    for step in range(7):
        with torch.no_grad():
            net.weight.fill_(float(step) ** 2)
        history.append(net.weight.detach().clone())
        ema.update_parameters(net)
    k = len(history)
    ages = torch.tensor([decay ** (k - 1 - i) for i in range(k)], dtype=torch.float64)
    expected = sum(a * w.double() for a, w in zip(ages, history)) / ages.sum()
    assert torch.allclose(ema.module.weight.double(), expected, rtol=1e-5)


class NoisyL1(nn.Module):
    """An L1 loss that draws from torch's, NumPy's and Python's global generators each step,
    so a resume that forgot any of them would change the weights."""

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        noise = torch.rand(()) + float(np.random.rand()) + random.random()
        return (pred - target).abs().mean() * (1.0 + 0.1 * noise)


def test_resume_restores_every_random_generator(tmp_path, data, monkeypatch):
    with LOSSES.scoped():
        LOSSES.register("noisy_l1_test", NoisyL1)
        config = write_config(tmp_path, data, checkpoint_every=100)
        overrides = ("dt.soft_loss={type: noisy_l1_test}",)
        fit(config, tmp_path / "whole", *overrides)
        np.random.seed(12345)  # whatever ran before must not matter: the trainer seeds them all
        random.seed(54321)
        with monkeypatch.context() as m:
            stop_at(m, 2)
            fit(config, tmp_path / "split", *overrides)
        np.random.rand(7)  # a new process would have drawn who knows what in between
        fit(config, tmp_path / "split", *overrides, resume=True)
    model = "model.safetensors"
    assert_identical(tensors(tmp_path / "whole" / model), tensors(tmp_path / "split" / model))


# --------------------------------------------------------------------------- NaN
class NaNAfter(nn.Module):
    """L1 until ``after`` calls, NaN from then on (a run diverging)."""

    def __init__(self, after: int = 3) -> None:
        super().__init__()
        self.after = after
        self.calls = 0

    def forward(self, pred: Tensor, target: Tensor, **ctx: object) -> Tensor:
        self.calls += 1
        loss = (pred - target).abs().mean()
        return loss * float("nan") if self.calls > self.after else loss


def test_nan_loss_stops_with_exit_1_and_keeps_the_last_good_checkpoint(tmp_path, data, capsys):
    config = write_config(tmp_path, data)
    work = tmp_path / "run"
    with LOSSES.scoped():
        LOSSES.register("nan_after_test", NaNAfter)
        status = main(["train", str(config), "dt.soft_loss={type: nan_after_test, after: 3}", "--work-dir", str(work)])
        out = capsys.readouterr().out
        assert status == 1
        error = [line for line in out.splitlines() if line.startswith("error: ")]
        assert error == [
            "error: the loss became NaN or Inf between iterations 4 and 4; stopped without saving the broken "
            f"weights. The last good checkpoint is in {work / 'checkpoints'} (iteration 2); resume it with --resume, "
            "perhaps with a lower train.lr or train.grad_clip set."
        ]
        assert "Traceback" not in out
        assert latest_of(work) == "iter_00000002"
        assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["iter_00000002", "latest"]
        assert not (work / "model.safetensors").exists()
        kept = tensors(work / "checkpoints" / "iter_00000002" / "model.safetensors")
        assert all(torch.isfinite(v).all() for v in kept.values())

        # It diverges before the first checkpoint: the message says there is none.
        status = main(["train", str(config), "dt.soft_loss={type: nan_after_test, after: 0}", "--work-dir",
                       str(tmp_path / "early")])
        assert status == 1 and "No checkpoint had been written yet" in capsys.readouterr().out

        # The good checkpoint resumes (here stopping at iteration 4, before the loss diverges again).
        result, printed = fit(config, work, "dt.soft_loss={type: nan_after_test, after: 3}", "train.iters=4",
                              resume=True, allow_changes=True)
        assert result.iteration == 4 and "from iter_00000002 (iteration 2)" in printed

    # A resume is the run in the folder: another objective is another run, refused with the key.
    with pytest.raises(TrainingError, match=r"dt\.soft_loss: .*nan_after_test.* in the run, .*ssim.* now"):
        fit(config, work, resume=True)


# --------------------------------------------------------------------------- signals, for real
def _run_until_signalled(args: list[str], sig: int, after_line: str, cwd: Path) -> tuple[int, str]:
    """Start ``restorekit`` in its own process group, send ``sig`` to the whole group (as a
    terminal's Ctrl-C or a scheduler does) once ``after_line`` is printed; return (status, output)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "restorekit", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(after_line):
                os.killpg(process.pid, sig)
                break
        rest, _ = process.communicate()
        return process.returncode, "".join(lines) + rest
    finally:
        watchdog.cancel()


@pytest.mark.parametrize(
    "sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_writes_a_checkpoint_and_resume_finishes(tmp_path, data, sig, status):
    # With a data-loader worker: the signal reaches it too, and it must not take the run down.
    workers = 1
    config = write_config(tmp_path, data, iters=100000, checkpoint_every=100000)
    work = tmp_path / "run"
    code, out = _run_until_signalled(
        ["train", str(config), f"data.num_workers={workers}", "--work-dir", str(work)], sig, "iter 3/", tmp_path
    )
    name = signal.Signals(sig).name
    assert code == status, out
    assert "Traceback" not in out and "error" not in out.lower()
    assert f"{name} received: finishing this iteration and writing a checkpoint" in out
    stopped = int(re.search(rf"stopped by {name} at iteration (\d+); checkpoint written", out)[1])
    assert stopped >= 3 and latest_of(work) == f"iter_{stopped:08d}"
    assert f"Continue with: restorekit train --resume --work-dir {work}" in out  # the run's own config

    done = subprocess.run(
        [sys.executable, "-m", "restorekit", "train", "--resume", f"train.iters={stopped + 2}", "--allow-changes",
         "--work-dir", str(work)], cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(iteration {stopped})" in done.stdout and f"iter {stopped + 2}/{stopped + 2}" in done.stdout
    assert (work / "model.safetensors").is_file()


# --------------------------------------------------------------------------- the run folder
def test_existing_run_folder_is_never_overwritten(tmp_path, data, capsys):
    config = write_config(tmp_path, data)
    work = tmp_path / "run"
    fit(config, work)
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    assert main(["train", str(config), "--work-dir", str(work)]) == 1
    out = capsys.readouterr().out
    assert (
        f"error: run folder {work} already holds a run (latest checkpoint: iter_00000006); pass --resume to continue "
        "it, or choose another folder with --work-dir (or runtime.work_dir=...). Nothing was overwritten."
    ) in out
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before

    # A finished run whose checkpoints were deleted to save space is still a run.
    import shutil

    shutil.rmtree(work / "checkpoints")
    assert main(["train", str(config), "--work-dir", str(work)]) == 1
    assert "already holds a run (a finished model, model.safetensors)" in capsys.readouterr().out

    # An attempt that died before its first checkpoint left only config and log: start afresh, saying so.
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.yaml").write_text("# from a crashed attempt\n")
    result, printed = fit(config, early)
    assert result.iteration == 6 and "holds no checkpoint of an earlier attempt; starting afresh" in printed


# --------------------------------------------------------------------------- crashes and full disks
def test_disk_full_while_checkpointing_fails_cleanly_and_keeps_the_previous(tmp_path, data, monkeypatch, capsys):
    config = write_config(tmp_path, data)
    work = tmp_path / "run"
    real_save = model_file.save_file

    def full_disk(tensors, filename, metadata=None):
        if "iter_00000004" in str(filename) and "training" in str(filename):
            with open(filename, "wb") as f:  # half a file, then the disk is full
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(model_file, "save_file", full_disk)
    assert main(["train", str(config), "--work-dir", str(work)]) == 1
    out = capsys.readouterr().out
    assert (
        f"error: could not write {work / 'checkpoints' / 'iter_00000004'} (No space left on device); the previous "
        f"checkpoint {work / 'checkpoints' / 'iter_00000002'} is kept as the latest"
    ) in out
    assert "Traceback" not in out
    assert latest_of(work) == "iter_00000002"
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["iter_00000002", "latest"]  # no debris

    # Renaming into place can fail too (a full metadata area, a vanished mount).
    monkeypatch.setattr(model_file, "save_file", real_save)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("iter_00000004"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["train", str(config), "--resume", "--work-dir", str(work)]) == 1
    assert "(Input/output error); the previous checkpoint" in capsys.readouterr().out
    assert latest_of(work) == "iter_00000002"
    monkeypatch.setattr(os, "replace", real_replace)

    # Space freed: the run resumes from the kept checkpoint and ends like an uninterrupted one.
    assert main(["train", str(config), "--resume", "--work-dir", str(work)]) == 0
    capsys.readouterr()
    fit(config, tmp_path / "whole")
    assert_identical(tensors(work / "model.safetensors"), tensors(tmp_path / "whole" / "model.safetensors"))


def test_final_model_write_failure_is_a_run_failure(tmp_path, data, monkeypatch, capsys):
    config = write_config(tmp_path, data, iters=2)
    real_save = model_file.save_file

    def full_disk(tensors, filename, metadata=None):
        if ".model.safetensors.tmp" in str(filename) and "checkpoints" not in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(model_file, "save_file", full_disk)
    assert main(["train", str(config), "--work-dir", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out
    assert f"error: could not write {tmp_path / 'run' / 'model.safetensors'} (No space left on device)" in out
    assert latest_of(tmp_path / "run") == "iter_00000002"  # the work itself is safe


def test_crash_debris_and_missing_pointer_are_handled(tmp_path, data, capsys):
    config = write_config(tmp_path, data)
    work = tmp_path / "run"
    fit(config, work)
    checkpoints = work / "checkpoints"
    # A kill -9 in the middle of writing iteration 8 left a half-written temporary folder.
    debris = checkpoints / ".iter_00000008.tmp-99999"
    debris.mkdir()
    (debris / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")
    assert ckpt.latest_checkpoint(checkpoints).name == "iter_00000006"
    result, _ = fit(config, work, "train.iters=8", resume=True, allow_changes=True)
    assert result.iteration == 8 and not debris.exists()

    # A crash between renaming a checkpoint into place and writing `latest`: the newest complete one counts.
    (checkpoints / "latest").unlink()
    assert ckpt.latest_checkpoint(checkpoints).name == "iter_00000008"
    # `latest` names a folder someone deleted: refuse, listing what can be resumed.
    (checkpoints / "latest").write_text("iter_00000099\n")
    assert main(["train", str(config), "--resume", "--work-dir", str(work)]) == 2
    out = capsys.readouterr().out
    assert (
        f"error: {checkpoints / 'latest'} points at 'iter_00000099', which is missing or incomplete; complete "
        "checkpoints here: iter_00000004, iter_00000006, iter_00000008; point it at one with: "
        f"echo iter_00000008 > {checkpoints / 'latest'}"
    ) in out
    # A truncated checkpoint file (a disk error after the fact) is reported, not a traceback.
    (checkpoints / "latest").write_text("iter_00000008\n")
    (checkpoints / "iter_00000008" / "training.safetensors").write_bytes(b"\x08\0\0\0")
    assert main(["train", "--resume", "--work-dir", str(work)]) == 2  # with the run's own config (8 iterations)
    assert "iter_00000008: cannot read checkpoint" in capsys.readouterr().out


# --------------------------------------------------------------------------- files that vanish mid-run
@pytest.mark.parametrize("workers", [0, 1])
def test_photo_deleted_mid_run_is_skipped_and_summarised(tmp_path, data, monkeypatch, workers):
    import shutil

    rainy = tmp_path / "rainy"
    shutil.copytree(data["rainy"], rainy)
    (rainy / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    config = write_config(tmp_path, {"rainy": rainy, "clean": data["clean"]}, iters=8)
    pairs = tmp_path / "pairs"  # held-out pairs with a bad one: reported too, and counted
    for side in ("rain", "gt"):
        shutil.copytree(data["clean"], pairs / side)
    (pairs / "gt" / "c000.png").write_bytes(b"")
    build = Distillation.training_batches

    def build_then_delete(*args, **kwargs):
        made = build(*args, **kwargs)
        (rainy / "r001.png").unlink()  # deleted (or its drive unmounted) once training started
        return made

    monkeypatch.setattr(Distillation, "training_batches", build_then_delete)
    overrides = ("data.in_memory=false", "data.batch_size=4", f"data.num_workers={workers}", f"eval.data={pairs}")
    result, out = fit(config, tmp_path / "run", *overrides)
    assert result.iteration == 8 and result.model_path is not None
    assert f"rainy: 1 file(s) skipped\n  {rainy / 'broken.png'}: not a decodable image" in out
    gone = "unreadable during training: file not found (deleted or moved?)"
    assert out.count(f"skipped {rainy / 'r001.png'}: {gone}") == 1
    assert f"eval: 1 file(s) skipped\n  {pairs / 'gt' / 'c000.png'}: empty file (0 bytes)" in out
    assert "data: 3 file(s) skipped in all (rainy: 1, during training: 1, eval: 1); each is listed above" in out
