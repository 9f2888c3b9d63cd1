"""Resumable training checkpoints, written atomically, loaded without pickle.

A **training checkpoint** is a folder ``checkpoints/iter_00001000/`` with the model file
(:mod:`restorekit.model_file`), ``training.safetensors`` (optimiser moments, RNG state) and
``state.json`` (iteration, optimiser hyper-parameters, the states of Python's and NumPy's
global generators). It is written into a temporary folder, flushed to disk, and renamed into
place; only then does ``checkpoints/latest`` (itself replaced atomically) point at it. A crash
or a full disk mid-write leaves the previous checkpoint as the latest, and a failed write
raises :class:`~restorekit.errors.CheckpointWriteError`, which fails the run (exit status 1)
rather than blaming the input.

Nothing here unpickles: tensors are read with safetensors, everything else is JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .. import _atomic
from ..errors import CheckpointError, CheckpointWriteError
from ..model_file import (
    LATEST,
    MODEL_FILE,
    checkpoint_name,
    complete_checkpoints,
    latest_checkpoint,
    load_weights,
    save_model,
    save_tensors,
    write_failure,
)

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "restorekit-checkpoint/1"


# --------------------------------------------------------------------------- training checkpoints
def save_checkpoint(
    folder: str | Path,
    iteration: int,
    modules: dict[str, nn.Module],
    specs: dict[str, dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    *,
    info: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``folder/iter_XXXXXXXX`` atomically, point ``latest`` at it, prune older ones."""
    folder = Path(folder)
    final = folder / checkpoint_name(iteration)
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Temporary folders of earlier writes that crashed (one writer per run folder).
        for stale in folder.glob(".iter_*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        save_model(tmp / MODEL_FILE, modules, specs, {**(info or {}), "iteration": iteration})
        opt_state = optimizer.state_dict()
        np_state = np.random.get_state()
        py_state = random.getstate()
        tensors: dict[str, torch.Tensor] = {
            "rng.torch": torch.get_rng_state(),
            "rng.numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "rng.python": torch.tensor(py_state[1], dtype=torch.int64),
        }
        scalars: dict[str, Any] = {}
        for pid, state in opt_state["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{pid}.{key}"] = value.detach().to("cpu").contiguous().clone()
                else:
                    scalars[f"{pid}.{key}"] = value
        if torch.cuda.is_available():
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = state
        save_tensors(tmp / "training.safetensors", tensors, {"format": CHECKPOINT_FORMAT})
        state_json = {
            "format": CHECKPOINT_FORMAT,
            "iteration": iteration,
            "optimizer": {"param_groups": opt_state["param_groups"], "scalars": scalars},
            "rng": {
                "numpy": {"kind": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                          "cached_gaussian": float(np_state[4])},
                "python": {"version": py_state[0], "gauss_next": py_state[2]},
            },
            "info": info or {},
        }
        _atomic.write_text(tmp / "state.json", json.dumps(state_json, indent=1))
        if final.exists():  # a folder of that iteration from an earlier attempt: set it aside first
            aside = folder / f".{final.name}.old-{os.getpid()}"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
            os.replace(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _atomic.fsync_dir(folder)
        _atomic.write_text(folder / LATEST, final.name + "\n")
    except (OSError, CheckpointWriteError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            previous = latest_checkpoint(folder)
        except CheckpointError:
            previous = None
        kept = f"; the previous checkpoint {previous} is kept as the latest" if previous else ""
        cause = exc.__cause__ if isinstance(exc, CheckpointWriteError) else exc
        assert isinstance(cause, OSError)
        raise write_failure(final, cause, kept) from cause
    _prune(folder, keep, final)
    return final


def _earlier(checkpoint: Path) -> str:
    """Where a damaged checkpoint's run can resume from instead: the newest complete one before it."""
    earlier = [c for c in complete_checkpoints(checkpoint.parent) if c.name < checkpoint.name]
    if not earlier:
        return "; no earlier checkpoint of this run is complete"
    pointer = checkpoint.parent / LATEST
    return (
        f"; the previous complete checkpoint is {earlier[-1].name}: resume from it with "
        f"`echo {earlier[-1].name} > {pointer}` and --resume"
    )


def _prune(folder: Path, keep: int, current: Path) -> None:
    done = complete_checkpoints(folder)
    for old in done[:-keep]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    checkpoint: str | Path,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Restore modules (and optimiser, RNG) from a checkpoint folder; return its ``state.json``."""
    checkpoint = Path(checkpoint)
    part = checkpoint / "state.json"
    try:
        state = json.loads(part.read_text(encoding="utf-8"))
        part = checkpoint / MODEL_FILE
        weights = load_file(str(part), device="cpu")
        part = checkpoint / "training.safetensors"
        training = load_file(str(part), device="cpu")
    except (OSError, json.JSONDecodeError, SafetensorError, ValueError) as exc:
        size = part.stat().st_size if part.is_file() else None
        what = "is empty (0 bytes)" if size == 0 else f"cannot be read ({exc})"
        raise CheckpointError(f"{checkpoint}: cannot read checkpoint: {part.name} {what}{_earlier(checkpoint)}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{checkpoint}: unknown checkpoint format {found!r}")
    if not isinstance(state.get("iteration"), int) or isinstance(state["iteration"], bool) or state["iteration"] < 0:
        raise CheckpointError(f"{checkpoint}: damaged state.json (iteration {state.get('iteration')!r})")
    for name, module in modules.items():
        load_weights(module, weights, name, checkpoint / MODEL_FILE)
    if optimizer is not None:
        try:
            per_param: dict[int, dict[str, Any]] = {}
            for key, value in training.items():
                if key.startswith("optimizer."):
                    _, pid, name = key.split(".", 2)
                    per_param.setdefault(int(pid), {})[name] = value
            for key, value in state["optimizer"]["scalars"].items():
                pid, name = key.split(".", 1)
                per_param.setdefault(int(pid), {})[name] = value
            optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{checkpoint}: optimiser state does not fit this run ({exc})") from None
    try:
        torch.set_rng_state(training["rng.torch"])
        rng = state.get("rng")
        if rng and "rng.numpy" in training and "rng.python" in training:  # older checkpoints lack them
            np_info, py_info = rng["numpy"], rng["python"]
            np.random.set_state((
                np_info["kind"], training["rng.numpy"].numpy().astype(np.uint32), np_info["pos"],
                np_info["has_gauss"], np_info["cached_gaussian"],
            ))
            py_words = tuple(int(v) for v in training["rng.python"].tolist())
            random.setstate((py_info["version"], py_words, py_info["gauss_next"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint}: damaged random-generator state ({exc})") from None
    cuda_states = [training[k] for k in sorted(training) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return state
