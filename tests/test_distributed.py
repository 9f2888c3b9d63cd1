"""Multi-process training on the CPU (gloo), two processes started by ``torchrun``.

1. The wrapped training step: two ranks, each on its own batches, must end with identical
   weights, equal (to rounding) to one process stepping on both ranks' batches together, and
   clearly different from one process that saw only rank 0's batches.
2. ``torchrun --nproc_per_node=2 tools/train.py CONFIG`` end to end: it trains, rank 0 alone
   writes the run folder, and the trainer's own check found the ranks' weights identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.config import parse_config
from restorekit.methods import build_method

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
LR = 0.1

CONFIG = {
    "backbone": {"type": "hagg", "channels": 4, "num_blocks": 2},
    "data": {"batch_size": 2, "crop_size": 32},
    "train": {"seed": 3},
}

# Runs in each torchrun process: the same construction as the reference below, through the
# DDP wrapper the trainer uses. SGD (not Adam) so that a rounding-level difference in the
# gradients stays a rounding-level difference in the weights.
WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    from restorekit.config import parse_config
    from restorekit.engine.distributed import DistributedContext
    from restorekit.methods import build_method
    sys.path.insert(0, sys.argv[1])
    from test_distributed import CONFIG, LR, STEPS, make_batch, flat_weights

    ctx = DistributedContext.from_env()
    ctx.start(torch.device("cpu"))
    torch.manual_seed(0)
    method = build_method(parse_config(CONFIG))
    optimizer = torch.optim.SGD(method.parameters(), lr=LR)
    step = ctx.wrap(method)
    for t in range(1, STEPS + 1):
        out = step(make_batch(ctx.rank, t), t, want_images=False)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    identical = ctx.replicas_identical(method.training_modules())
    np.save(f"{sys.argv[2]}/rank{ctx.rank}.npy", flat_weights(method))
    json.dump({"identical": identical, "wrapped": type(step).__name__}, open(f"{sys.argv[2]}/rank{ctx.rank}.json", "w"))
    ctx.stop()
    """
)


def make_batch(rank: int, t: int) -> dict[str, torch.Tensor]:
    """Rank ``rank``'s batch of step ``t`` (different on each rank, as the real batches are)."""
    g = torch.Generator().manual_seed(1000 * t + rank)
    return {k: torch.rand(2, 3, 32, 32, generator=g) for k in ("degraded", "soft_label", "clean")}


def flat_weights(method: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in method.parameters()]).numpy()


def _single_process(ranks: list[int]) -> np.ndarray:
    """One process stepping on the given ranks' batches concatenated."""
    torch.manual_seed(0)
    method = build_method(parse_config(CONFIG))
    optimizer = torch.optim.SGD(method.parameters(), lr=LR)
    for t in range(1, STEPS + 1):
        batches = [make_batch(r, t) for r in ranks]
        batch = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
        out = method.training_step(batch, t)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    return flat_weights(method)


def _torchrun(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_ranks_average_gradients_and_stay_identical(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = _torchrun(str(script), str(Path(__file__).parent), str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["identical"] for r in reports) and reports[0]["wrapped"] == "DistributedDataParallel"
    rank0, rank1 = (np.load(tmp_path / f"rank{r}.npy") for r in (0, 1))
    np.testing.assert_array_equal(rank0, rank1)

    together = _single_process([0, 1])
    alone = _single_process([0])
    # Averaging the ranks' gradients is stepping on the union of their batches (mean losses,
    # equal batch sizes); only the order of floating-point additions differs.
    to_together, to_alone = np.abs(rank0 - together).max(), np.abs(rank0 - alone).max()
    assert to_together < 1e-6, to_together
    # ...and it is not what a single rank would have learnt from its own batches.
    assert to_alone > 1e-4 and to_alone > 1000 * to_together, (to_alone, to_together)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_torchrun_train_end_to_end(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    for name in ("rainy", "clean"):
        (tmp_path / name).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    (tmp_path / "cfg.yaml").write_text(
        textwrap.dedent(
            """
            method: dt
            backbone: {type: hagg, channels: 4, num_blocks: 2}
            dt: {soft_label: {type: median, kernel_size: 5}}
            data: {rainy: rainy, clean: clean, crop_size: 32, batch_size: 2, soft_label_cache: labels}
            train: {iters: 4, log_every: 2, checkpoint_every: 2, sample_every: 2}
            eval: {data: null}
            runtime: {device: cpu, work_dir: run}
            """
        )
    )
    result = _torchrun(str(ROOT / "tools" / "train.py"), "cfg.yaml", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "× 2 processes" in output
    run = tmp_path / "run"
    assert (run / "model.safetensors").is_file()
    assert (run / "checkpoints" / "latest").read_text().strip() == "iter_00000004"
    # Rank 0 alone printed (one progress line per log step) and wrote samples.
    assert output.count("iter 4/4") == 1
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["iter_00000001.png", "iter_00000002.png", "iter_00000004.png"]
    # The soft labels were computed once (by rank 0) and shared through the cache folder.
    assert len(list((tmp_path / "labels").rglob("*.png"))) == 3
