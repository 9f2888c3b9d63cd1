"""Convert foreign checkpoints into restorekit model files.

``rain-over-me``: the authors' released ``latest_net_G.pth`` (a pix2pix-style state dict) for
the Rain1400, Rain200L and DID-data experiments. Their key layout maps onto ``hagg`` + DEB::

    inc.0                          -> stem
    block{k}.conv{j}.conv1.0       -> aggregations[k-1].block{j}.conv
    block{k}.conv{j}.dilated_conv  -> aggregations[k-1].block{j}.dilated_conv
    block{k}.merge.0               -> aggregations[k-1].node.conv
    merge11.0, merge12.0           -> outer_nodes[0].conv, outer_nodes[1].conv
    outc.0                         -> head
    out2.0, out2.2, out2.4         -> detail block conv1, conv2, conv3  (DID variant: out2.0, out2.2)

The file is read with ``torch.load(weights_only=True)``: tensors only, no code executed. A
file whose unpickling would call anything else (``os.system``, any class) is refused with a
message that says so; restorekit never offers to load it less safely.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, did_you_mean
from .model_file import MODEL_FILE, save_model

__all__ = ["FORMATS", "convert", "rain_over_me_state"]


_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


def _load_refusal(path: Path, exc: Exception) -> CheckpointError:
    """A one-line reason why ``torch.load(weights_only=True)`` refused a file (torch's own
    message spans paragraphs and suggests ``weights_only=False``, which is exactly what must
    not be done with a file from elsewhere)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        named = _GLOBAL_RE.search(text)
        if named:
            return CheckpointError(
                f"{path}: refused: loading it would call {named[1]}, not just build tensors; restorekit loads "
                "PyTorch files as weights only, and a file of released weights needs nothing else"
            )
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        detail = next((line for line in lines if "unsupported" in line.lower()), lines[-1] if lines else "")
        return CheckpointError(f"{path}: refused: not a weights-only PyTorch checkpoint ({detail[:200]})")
    if isinstance(exc, EOFError) or not path.stat().st_size:
        return CheckpointError(f"{path}: empty or truncated file, not a PyTorch checkpoint")
    return CheckpointError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {text[:200]})")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder; name the .pth file itself") from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied") from None
    except Exception as exc:  # weights_only refuses pickled code; anything else is unreadable
        raise _load_refusal(path, exc) from None
    for key in ("state_dict", "model", "net_G", "netG"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


_MAIN_RULES = [
    (re.compile(r"^inc\.0\.(weight|bias)$"), lambda m: f"stem.{m[1]}"),
    (
        re.compile(r"^block(\d+)\.conv([12])\.conv1\.0\.(weight|bias)$"),
        lambda m: f"aggregations.{int(m[1]) - 1}.block{m[2]}.conv.{m[3]}",
    ),
    (
        re.compile(r"^block(\d+)\.conv([12])\.dilated_conv\.(weight|bias)$"),
        lambda m: f"aggregations.{int(m[1]) - 1}.block{m[2]}.dilated_conv.{m[3]}",
    ),
    (re.compile(r"^block(\d+)\.merge\.0\.(weight|bias)$"), lambda m: f"aggregations.{int(m[1]) - 1}.node.conv.{m[2]}"),
    (re.compile(r"^merge1(\d)\.0\.(weight|bias)$"), lambda m: f"outer_nodes.{int(m[1]) - 1}.conv.{m[2]}"),
    (re.compile(r"^outc\.0\.(weight|bias)$"), lambda m: f"head.{m[1]}"),
]
_DEB_RE = re.compile(r"^out2\.(\d+)\.(weight|bias)$")


def rain_over_me_state(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Split and rename the authors' state dict: ``(backbone_state, deb_state, backbone_spec, deb_spec)``."""
    backbone, deb_raw, unknown = {}, {}, []
    for key, value in state.items():
        for pattern, rename in _MAIN_RULES:
            m = pattern.match(key)
            if m:
                backbone[rename(m)] = value
                break
        else:
            m = _DEB_RE.match(key)
            if m:
                deb_raw[(int(m[1]), m[2])] = value
            else:
                unknown.append(key)
    if unknown:
        raise CheckpointError(f"not a Rain O'er Me generator state dict: unexpected keys {unknown[:8]}")
    if "stem.weight" not in backbone or "head.weight" not in backbone:
        raise CheckpointError("not a Rain O'er Me generator state dict: no inc.0/outc.0 convolutions")
    num_blocks = 2 * len({k.split(".")[1] for k in backbone if k.startswith("aggregations.")})
    channels = backbone["stem.weight"].shape[0]
    backbone_spec = {"type": "hagg", "channels": int(channels), "num_blocks": num_blocks}

    layers = sorted({index for index, _ in deb_raw})
    deb_type = {3: "deb", 2: "deb_did"}.get(len(layers))
    if deb_type is None:
        raise CheckpointError(f"unexpected detail block layout out2.{layers}")
    deb = {f"conv{i + 1}.{kind}": deb_raw[(index, kind)] for i, index in enumerate(layers) for kind in ("weight", "bias")}
    deb_spec = {"type": deb_type, "channels": int(deb["conv1.weight"].shape[0])}
    return backbone, deb, backbone_spec, deb_spec


FORMATS = {"rain-over-me": rain_over_me_state}


def convert(source_format: str, src: str | Path, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Convert ``src`` (of ``source_format``) into a restorekit model file at ``dst``.

    ``dst`` is a ``.safetensors`` file or a folder (a run folder: ``dst/model.safetensors``). A
    model file already there (a trained run's) is never replaced unless ``overwrite``.
    """
    from .registries import BACKBONES, DETAIL_BLOCKS

    if source_format not in FORMATS:
        hint = did_you_mean(source_format, FORMATS)
        raise CheckpointError(f"unknown source format {source_format!r}.{hint} Known: {', '.join(FORMATS)}")
    state = _read_state_dict(Path(src))
    try:
        backbone_state, deb_state, backbone_spec, deb_spec = FORMATS[source_format](state)
    except CheckpointError as exc:
        raise CheckpointError(f"{src}: {exc}") from None
    backbone = BACKBONES.build(backbone_spec)
    deb = DETAIL_BLOCKS.build(deb_spec)
    try:
        backbone.load_state_dict(backbone_state, strict=True)
        deb.load_state_dict(deb_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{src}: tensor shapes do not match the hagg topology: {exc}") from None
    dst = Path(dst)
    if dst.suffix != ".safetensors":
        dst = dst / MODEL_FILE if dst.is_dir() or not dst.suffix else dst.with_suffix(".safetensors")
    if dst.exists() and not overwrite:
        raise CheckpointError(
            f"{dst} already exists (a trained model?); nothing was written. Pass --overwrite to replace it, "
            "or give another destination"
        )
    return save_model(
        dst,
        {"backbone": backbone, "detail_block": deb},
        {"backbone": backbone_spec, "detail_block": deb_spec},
        {"converted_from": source_format, "source_file": Path(src).name},
    )
