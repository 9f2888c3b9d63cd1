"""Model files: the trained network in one self-describing file, and how to find it in a run folder.

A **model file** (``model.safetensors``) holds the backbone's tensors (``backbone.*``, plus
``detail_block.*`` for ``dt``) and, in its safetensors metadata, the config spec of each
module, so ``restorekit test`` and ``restore`` rebuild the network from the file alone. It is
written atomically (:mod:`restorekit._atomic`) and read without pickle: loading a model
never executes code.

A **run folder** holds the finished model (``model.safetensors``) and, while training, its
checkpoints ``checkpoints/iter_XXXXXXXX/`` with the pointer ``checkpoints/latest``
(:func:`latest_checkpoint`). This module only reads that layout; writing checkpoints is the
training engine's job (:mod:`restorekit.engine.checkpoint`). It sits below both the engine
and inference, so deploying a model needs nothing of the training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from . import _atomic
from .errors import CheckpointError, CheckpointWriteError, ConfigError, RestorekitError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FILE",
    "CHECKPOINTS",
    "save_model",
    "load_model",
    "LoadedModel",
    "find_model_file",
    "latest_checkpoint",
    "complete_checkpoints",
    "checkpoint_name",
    "tensors_of",
    "save_tensors",
    "load_weights",
    "write_failure",
]

MODEL_FORMAT = "restorekit-model/1"
#: File name of the model in a run folder and in each checkpoint.
MODEL_FILE = "model.safetensors"
#: The module under which a checkpoint keeps the weight average (train.ema) of the backbone, and
#: the prefix of its tensors (``AveragedModel`` holds the averaged network as ``.module``).
EMA_MODULE = "backbone_ema"
EMA_PREFIX = f"{EMA_MODULE}.module"
#: Folder of a run's checkpoints, and the pointer file in it that names the latest one.
CHECKPOINTS = "checkpoints"
LATEST = "latest"


def write_failure(what: Path, exc: OSError, kept: str = "") -> CheckpointWriteError:
    """The error for a model file or checkpoint that could not be written (``kept``: what is safe)."""
    reason = exc.strerror or str(exc)
    return CheckpointWriteError(f"could not write {what} ({reason}){kept}")


def tensors_of(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Every module's state as ``{"<name>.<key>": tensor}``, copied to the CPU."""
    tensors = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous().clone()
    return tensors


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (raises ``OSError`` when it cannot be written)."""
    with _atomic.replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


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

    Raises:
        CheckpointWriteError: the file could not be written; a file already there is unchanged.
    """
    path = Path(path)
    metadata = {"format": MODEL_FORMAT, "info": json.dumps(info or {})}
    for name in modules:
        metadata[f"spec.{name}"] = json.dumps(specs[name])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(path, tensors_of(modules), metadata)
    except OSError as exc:
        kept = "; the file already there is unchanged" if path.exists() else ""
        raise write_failure(path, exc, kept) from exc
    return path


@dataclass
class LoadedModel:
    """A backbone rebuilt from a model file, with its spec and provenance."""

    backbone: nn.Module
    spec: dict[str, Any]
    info: dict[str, Any]
    path: Path
    detail_block: nn.Module | None = None


# --------------------------------------------------------------------------- finding a model
def checkpoint_name(iteration: int) -> str:
    """The folder name of the checkpoint of ``iteration``."""
    return f"iter_{iteration:08d}"


def complete_checkpoints(folder: Path) -> list[Path]:
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
        complete = complete_checkpoints(folder) if folder.is_dir() else []
        return complete[-1] if complete else None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{pointer}: cannot read it ({exc})") from None
    target = folder / name
    if not name or "/" in name or not (target / "state.json").is_file():
        complete = [p.name for p in complete_checkpoints(folder)]
        fix = (
            f"complete checkpoints here: {', '.join(complete)}; point it at one with: echo {complete[-1]} > {pointer}"
            if complete
            else "there is no complete checkpoint in that folder"
        )
        raise CheckpointError(f"{pointer} points at {name!r}, which is missing or incomplete; {fix}")
    return target


def find_model_file(path: str | Path) -> Path:
    """Accept a model file, a checkpoint folder, or a run folder; return the model file to load."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    candidates = [path / MODEL_FILE]
    latest = latest_checkpoint(path / CHECKPOINTS) if (path / CHECKPOINTS).is_dir() else None
    if latest is not None:
        candidates.append(latest / MODEL_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{path}: no {MODEL_FILE} in it (nor in its latest checkpoint)")


# --------------------------------------------------------------------------- loading
def load_model(path: str | Path, device: str | torch.device = "cpu", *, with_detail_block: bool = False) -> LoadedModel:
    """Rebuild the backbone recorded in a model file and load its weights (no code is executed)."""
    from .registries import BACKBONES, DETAIL_BLOCKS

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
    _check_finite(tensors, file)
    backbone = _build_recorded(BACKBONES, spec, "backbone", file)
    # A checkpoint of a run with train.ema holds the last weights and their average; the average
    # is what the run evaluates and saves as its model, so a checkpoint loads as that model too.
    averaged = any(k.startswith(EMA_PREFIX + ".") for k in tensors)
    load_weights(backbone, tensors, EMA_PREFIX if averaged else "backbone", file)
    detail_block = None
    if with_detail_block and "spec.detail_block" in metadata:
        try:
            detail_spec = json.loads(metadata["spec.detail_block"])
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{file}: damaged metadata ({exc})") from None
        detail_block = _build_recorded(DETAIL_BLOCKS, detail_spec, "detail_block", file)
        load_weights(detail_block, tensors, "detail_block", file)
    backbone.to(device).eval()
    return LoadedModel(backbone, spec, info, file, detail_block)


def _check_finite(tensors: dict[str, torch.Tensor], file: Path) -> None:
    """Refuse weights with NaN or Inf values: such a network turns every photo black (or worse)."""
    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in tensors.items() if v.is_floating_point()}
    bad = {k: n for k, n in bad.items() if n}
    if bad:
        listed = ", ".join(f"{k} ({n})" for k, n in list(bad.items())[:4]) + (" ..." if len(bad) > 4 else "")
        raise CheckpointError(
            f"{file}: the weights hold NaN or Inf values ({listed}): this network cannot restore anything. "
            "The run diverged before it was saved; use an earlier checkpoint of it (checkpoints/iter_*) or retrain"
        )


def _build_recorded(registry: Any, spec: Any, what: str, file: Path) -> nn.Module:
    """Build the network a model file records; a spec that does not build is the file's fault."""
    try:
        return registry.build(spec, path=what)
    except Exception as exc:  # the spec comes from the file: whatever it makes go wrong is the file's fault
        detail = str(exc) if isinstance(exc, (RestorekitError, ConfigError, ValueError, TypeError)) else (
            f"{type(exc).__name__}: {exc}"
        )
        raise CheckpointError(f"{file}: the {what} it records ({spec!r}) cannot be built here: {detail}") from None


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, file: Path) -> None:
    """Load the ``<prefix>.*`` tensors of a file into ``module`` (all of them, no more).

    A mismatch is reported in one line (the first differing tensors), not PyTorch's dump of every key.
    """
    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    expected = module.state_dict()
    problems = [f"{k}: file {tuple(state[k].shape)}, network {tuple(v.shape)}" for k, v in expected.items()
                if k in state and state[k].shape != v.shape]
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing from the file: {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
    if extra:
        problems.append(f"not in the network: {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else ""))
    if problems:
        raise CheckpointError(
            f"{file}: the {prefix} weights do not fit the network ({len(problems)} difference(s); "
            + "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "") + ")"
        )
    module.load_state_dict(state, strict=True)
