"""Model files and resumable training checkpoints, written atomically, loaded without pickle.

A **model file** (``model.safetensors``) holds the backbone's tensors (``backbone.*``, plus
``detail_block.*`` for ``dt``) and, in its safetensors metadata, the backbone's config spec,
so ``restorekit test`` and ``restore`` can rebuild the network from the file alone.

A **training checkpoint** is a folder ``checkpoints/iter_00001000/`` with the model file,
``training.safetensors`` (optimiser moments, RNG state) and ``state.json`` (iteration,
optimiser hyper-parameters, the states of Python's and NumPy's global generators). It is
written into a temporary folder, flushed to disk, and renamed into place; only then does
``checkpoints/latest`` (itself replaced atomically) point at it. A crash or a full disk
mid-write leaves the previous checkpoint as the latest, and a failed write raises
:class:`CheckpointWriteError`, which fails the run (exit status 1) rather than blaming the input.

Nothing here unpickles: tensors are read with safetensors, everything else is JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ..errors import CheckpointError, ConfigError, RestorekitError, TrainingError

__all__ = [
    "MODEL_FORMAT",
    "save_model",
    "load_model",
    "LoadedModel",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "find_model_file",
    "CheckpointWriteError",
]

MODEL_FORMAT = "restorekit-model/1"
CHECKPOINT_FORMAT = "restorekit-checkpoint/1"
LATEST = "latest"


class CheckpointWriteError(CheckpointError, TrainingError):
    """A model file or checkpoint could not be written (a full disk, a read-only folder).

    It is a :class:`TrainingError` too: the run failed, the input was fine (exit status 1).
    """


def _write_failure(what: Path, exc: OSError, kept: str = "") -> CheckpointWriteError:
    reason = exc.strerror or str(exc)
    return CheckpointWriteError(f"could not write {what} ({reason}){kept}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _tensors_of(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    tensors = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous().clone()
    return tensors


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    save_file(tensors, str(path), metadata=metadata)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def save_model(
    path: str | Path,
    modules: dict[str, nn.Module],
    specs: dict[str, dict[str, Any]],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing model file atomically.

    Args:
        path: destination ``.safetensors`` file.
        modules: ``{"backbone": net, "detail_block": g}`` (backbone required).
        specs: the config spec of each module, e.g. ``{"backbone": {"type": "hagg"}}``.
        info: free-form provenance (method, iteration, config name), stored as JSON.
    """
    path = Path(path)
    metadata = {"format": MODEL_FORMAT, "info": json.dumps(info or {})}
    for name in modules:
        metadata[f"spec.{name}"] = json.dumps(specs[name])
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_safetensors(_tensors_of(modules), tmp, metadata)
        os.replace(tmp, path)
    except OSError as exc:
        kept = "; the file already there is unchanged" if path.exists() else ""
        raise _write_failure(path, exc, kept) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


@dataclass
class LoadedModel:
    """A backbone rebuilt from a model file, with its spec and provenance."""

    backbone: nn.Module
    spec: dict[str, Any]
    info: dict[str, Any]
    path: Path
    detail_block: nn.Module | None = None


def find_model_file(path: str | Path) -> Path:
    """Accept a model file, a checkpoint folder, or a run folder; return the model file to load."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    candidates = [path / "model.safetensors"]
    latest = latest_checkpoint(path / "checkpoints") if (path / "checkpoints").is_dir() else None
    if latest is not None:
        candidates.append(latest / "model.safetensors")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{path}: no model.safetensors in it (nor in its latest checkpoint)")


def load_model(path: str | Path, device: str | torch.device = "cpu", *, with_detail_block: bool = False) -> LoadedModel:
    """Rebuild the backbone recorded in a model file and load its weights (no code is executed)."""
    from ..registries import BACKBONES, DETAIL_BLOCKS

    file = find_model_file(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        hint = ""
        if file.suffix.lower() in (".pth", ".pt", ".ckpt", ".pkl", ".bin"):
            hint = "; a PyTorch checkpoint must first be converted: restorekit convert --from rain-over-me SRC DST"
        raise CheckpointError(f"{file}: not a readable safetensors model file ({exc}){hint}") from None
    if metadata.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f"{file}: not a restorekit model file (format {metadata.get('format')!r}, expected {MODEL_FORMAT!r}); "
            "convert foreign checkpoints with `restorekit convert`"
        )
    try:
        spec = json.loads(metadata["spec.backbone"])
        info = json.loads(metadata.get("info", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: damaged metadata ({exc})") from None
    backbone = _build_recorded(BACKBONES, spec, "backbone", file)
    _load_prefixed(backbone, tensors, "backbone", file)
    detail_block = None
    if with_detail_block and "spec.detail_block" in metadata:
        try:
            detail_spec = json.loads(metadata["spec.detail_block"])
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{file}: damaged metadata ({exc})") from None
        detail_block = _build_recorded(DETAIL_BLOCKS, detail_spec, "detail_block", file)
        _load_prefixed(detail_block, tensors, "detail_block", file)
    backbone.to(device).eval()
    return LoadedModel(backbone, spec, info, file, detail_block)


def _build_recorded(registry: Any, spec: Any, what: str, file: Path) -> nn.Module:
    """Build the network a model file records; a spec that does not build is the file's fault."""
    try:
        return registry.build(spec, path=what)
    except Exception as exc:  # the spec comes from the file: whatever it makes go wrong is the file's fault
        detail = str(exc) if isinstance(exc, (RestorekitError, ConfigError, ValueError, TypeError)) else (
            f"{type(exc).__name__}: {exc}"
        )
        raise CheckpointError(f"{file}: the {what} it records ({spec!r}) cannot be built here: {detail}") from None


def _load_prefixed(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, file: Path) -> None:
    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{file}: the {prefix} weights do not fit the recorded network: {exc}") from None


# --------------------------------------------------------------------------- training checkpoints
def _checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:08d}"


def _complete_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders whose write finished (``state.json`` is written last), oldest first."""
    return sorted(p for p in folder.glob("iter_*") if p.is_dir() and (p / "state.json").is_file())


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint ``folder/latest`` points at, or None when there is none.

    Without a ``latest`` file (a crash between renaming the first checkpoint into place and
    writing the pointer), the newest complete checkpoint is the latest.
    """
    folder = Path(folder)
    pointer = folder / LATEST
    if not pointer.is_file():
        complete = _complete_checkpoints(folder) if folder.is_dir() else []
        return complete[-1] if complete else None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{pointer}: cannot read it ({exc})") from None
    target = folder / name
    if not name or "/" in name or not (target / "state.json").is_file():
        complete = [p.name for p in _complete_checkpoints(folder)]
        fix = (
            f"complete checkpoints here: {', '.join(complete)}; point it at one with: echo {complete[-1]} > {pointer}"
            if complete
            else "there is no complete checkpoint in that folder"
        )
        raise CheckpointError(f"{pointer} points at {name!r}, which is missing or incomplete; {fix}")
    return target


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
    final = folder / _checkpoint_name(iteration)
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Temporary folders of earlier writes that crashed (one writer per run folder).
        for stale in folder.glob(".iter_*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        save_model(tmp / "model.safetensors", modules, specs, {**(info or {}), "iteration": iteration})
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
        _save_safetensors(tensors, tmp / "training.safetensors", {"format": CHECKPOINT_FORMAT})
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
        with open(tmp / "state.json", "w", encoding="utf-8") as f:
            json.dump(state_json, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # a folder of that iteration from an earlier attempt: set it aside first
            aside = folder / f".{final.name}.old-{os.getpid()}"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
            os.replace(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(folder)
        _write_atomic_text(folder / LATEST, final.name + "\n")
    except (OSError, CheckpointWriteError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            previous = latest_checkpoint(folder)
        except CheckpointError:
            previous = None
        kept = f"; the previous checkpoint {previous} is kept as the latest" if previous else ""
        cause = exc.__cause__ if isinstance(exc, CheckpointWriteError) else exc
        assert isinstance(cause, OSError)
        raise _write_failure(final, cause, kept) from cause
    _prune(folder, keep, final)
    return final


def _prune(folder: Path, keep: int, current: Path) -> None:
    done = sorted(p for p in folder.glob("iter_*") if p.is_dir() and (p / "state.json").is_file())
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
    try:
        state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        weights = load_file(str(checkpoint / "model.safetensors"), device="cpu")
        training = load_file(str(checkpoint / "training.safetensors"), device="cpu")
    except (OSError, json.JSONDecodeError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint}: cannot read checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{checkpoint}: unknown checkpoint format {found!r}")
    if not isinstance(state.get("iteration"), int) or isinstance(state["iteration"], bool) or state["iteration"] < 0:
        raise CheckpointError(f"{checkpoint}: damaged state.json (iteration {state.get('iteration')!r})")
    for name, module in modules.items():
        _load_prefixed(module, weights, name, checkpoint / "model.safetensors")
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
