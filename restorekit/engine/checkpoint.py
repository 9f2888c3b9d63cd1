"""Model files and resumable training checkpoints, written atomically, loaded without pickle.

A **model file** (``model.safetensors``) holds the backbone's tensors (``backbone.*``, plus
``detail_block.*`` for ``dt``) and, in its safetensors metadata, the backbone's config spec,
so ``restorekit test`` and ``restore`` can rebuild the network from the file alone.

A **training checkpoint** is a folder ``checkpoints/iter_00001000/`` with the model file,
``training.safetensors`` (optimiser moments, RNG state) and ``state.json`` (iteration,
optimiser hyper-parameters). It is written into a temporary folder, flushed to disk, and
renamed into place; only then does ``checkpoints/latest`` (itself replaced atomically) point
at it. A crash or a full disk mid-write leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ..errors import CheckpointError

__all__ = [
    "MODEL_FORMAT",
    "save_model",
    "load_model",
    "LoadedModel",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "find_model_file",
]

MODEL_FORMAT = "restorekit-model/1"
CHECKPOINT_FORMAT = "restorekit-checkpoint/1"
LATEST = "latest"


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
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": MODEL_FORMAT, "info": json.dumps(info or {})}
    for name in modules:
        metadata[f"spec.{name}"] = json.dumps(specs[name])
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _save_safetensors(_tensors_of(modules), tmp, metadata)
        os.replace(tmp, path)
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
        raise CheckpointError(f"{file}: not a readable safetensors model file ({exc})") from None
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
    backbone = BACKBONES.build(spec, path="backbone")
    _load_prefixed(backbone, tensors, "backbone", file)
    detail_block = None
    if with_detail_block and "spec.detail_block" in metadata:
        detail_block = DETAIL_BLOCKS.build(json.loads(metadata["spec.detail_block"]), path="detail_block")
        _load_prefixed(detail_block, tensors, "detail_block", file)
    backbone.to(device).eval()
    return LoadedModel(backbone, spec, info, file, detail_block)


def _load_prefixed(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, file: Path) -> None:
    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{file}: the {prefix} weights do not fit the recorded network: {exc}") from None


# --------------------------------------------------------------------------- training checkpoints
def _checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:08d}"


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint ``folder/latest`` points at, or None when there is none."""
    folder = Path(folder)
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    target = folder / pointer.read_text(encoding="utf-8").strip()
    if not (target / "state.json").is_file():
        raise CheckpointError(f"{pointer} points at {target.name}, which is missing or incomplete")
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
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _checkpoint_name(iteration)
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_model(tmp / "model.safetensors", modules, specs, {**(info or {}), "iteration": iteration})
        opt_state = optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
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
            "info": info or {},
        }
        with open(tmp / "state.json", "w", encoding="utf-8") as f:
            json.dump(state_json, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(folder)
        _write_atomic_text(folder / LATEST, final.name + "\n")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(folder) if (folder / LATEST).exists() else None
        kept = f"; the previous checkpoint {previous} is kept" if previous else ""
        raise CheckpointError(f"could not write checkpoint {final} ({exc.strerror or exc}){kept}") from exc
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
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{checkpoint}: unknown checkpoint format {state.get('format')!r}")
    for name, module in modules.items():
        _load_prefixed(module, weights, name, checkpoint / "model.safetensors")
    if optimizer is not None:
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in training.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                per_param.setdefault(int(pid), {})[name] = value
        for key, value in state["optimizer"]["scalars"].items():
            pid, name = key.split(".", 1)
            per_param.setdefault(int(pid), {})[name] = value
        try:
            optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{checkpoint}: optimiser state does not fit this run ({exc})") from None
    torch.set_rng_state(training["rng.torch"])
    cuda_states = [training[k] for k in sorted(training) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return state
