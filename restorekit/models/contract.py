"""The contract every backbone meets, so that the methods (``dt``, ``sv``) need nothing else.

A backbone is a plain :class:`torch.nn.Module` that maps a batch of degraded images
``x`` (N×3×H×W, float in [0, 1]) to the **residual** ``r`` such that the restored image is
``x - r`` (for rain, ``r`` is the rain layer). Its ``forward`` returns either

* that residual as a tensor (the paper's network, DDN), or
* a ``dict`` with the key ``"residual"`` and any named auxiliary outputs, e.g. PReNet's
  per-stage images ``"stages"`` or JORDER-E's ``"stage1"``, ``"mask_logits"``, ``"level"``, or
* a ``dict`` with the key ``"restored"`` instead: the clean image itself, for a network that
  predicts it directly with no global skip (SPANet, DID-MDN, UMRL). Its residual is then
  derived as ``x - restored``, and :attr:`Restoration.restored` is the network's own output,
  not ``x - (x - restored)`` (which differs by rounding, visibly so in bfloat16).

Networks with a global skip that predict ``y = x + f(x)`` (PReNet, JORDER-E) return the
residual ``x - y``; the methods use ``restored`` and ``residual`` only. A backbone may set class
attributes:

``default_loss``
    a :data:`restorekit.LOSSES` name used as its hard (and supervised) objective when the
    config names none, as the paper does ("we use their default loss function").
``param_convention``
    how its published parameter count is counted (see :func:`count_parameters`).
``not_tileable``
    a sentence saying why restoring tile by tile cannot be exact (an output pixel sees a
    whole row, or the network pools on a grid fixed to the image's corner); tiled restoration
    then refuses the backbone instead of measuring a receptive field that does not apply.
``not_exportable``
    a sentence saying why the network has no ONNX graph of dynamic size (SPANet's IRNN is a
    loop over the image's rows); ONNX export then refuses it with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["Restoration", "run_backbone", "count_parameters", "ParamConvention", "default_loss_spec", "check_sizes"]

ParamConvention = Literal["trainable", "weights", "trainable+bn_stats"]


@dataclass
class Restoration:
    """One backbone pass: the input, the residual it removed, and its auxiliary outputs.

    ``image`` is the network's own restored image when it predicts one directly (the
    ``"restored"`` key of its output); ``residual`` is then ``input - image``.
    """

    input: Tensor
    residual: Tensor
    aux: dict[str, Tensor] = field(default_factory=dict)
    image: Tensor | None = None

    @property
    def restored(self) -> Tensor:
        """The restored image, ``input - residual`` or the network's own ``image``.

        Not clamped, so that losses see the raw output.
        """
        return self.input - self.residual if self.image is None else self.image


def run_backbone(backbone: nn.Module, x: Tensor) -> Restoration:
    """Apply ``backbone`` to ``x`` and normalise its output to a :class:`Restoration`."""
    out = backbone(x)
    if isinstance(out, Tensor):
        return Restoration(x, out)
    if isinstance(out, Mapping) and ("residual" in out) != ("restored" in out):
        aux = {k: v for k, v in out.items() if k not in ("residual", "restored")}
        if "residual" in out:
            return Restoration(x, out["residual"], aux)
        return Restoration(x, x - out["restored"], aux, image=out["restored"])
    raise TypeError(
        f"{type(backbone).__name__}.forward must return the residual tensor or a dict with exactly one "
        f"of the keys 'residual' and 'restored', got {type(out).__name__}"
        + (f" with keys {sorted(out)}" if isinstance(out, Mapping) else "")
    )


def check_sizes(network: str, **sizes: int) -> None:
    """Raise ValueError unless each of ``sizes`` (channel counts, depths) is a whole number >= 1.

    A network called with ``channels=0`` would otherwise build and then fail deep inside its
    first convolution, far from the config key that caused it.
    """
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{network} {name} must be a whole number >= 1, got {value!r}")


def default_loss_spec(backbone: nn.Module) -> dict[str, str]:
    """The backbone's own training loss (the paper: "we use their default loss function"), else SSIM."""
    return {"type": getattr(backbone, "default_loss", None) or "ssim"}


def count_parameters(module: nn.Module, convention: ParamConvention = "trainable") -> int:
    """Count parameters the way a paper counts them.

    ``"trainable"``
        every parameter with ``requires_grad`` (what ``sum(p.numel())`` gives).
    ``"weights"``
        convolution and linear weights only, no biases (the Rain O'er Me paper's 51,552).
    ``"trainable+bn_stats"``
        trainable parameters plus BatchNorm running means and variances (DDN's 58,175).
    """
    if convention == "trainable":
        return sum(p.numel() for p in module.parameters() if p.requires_grad)
    if convention == "weights":
        return sum(
            m.weight.numel()
            for m in module.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))
        )
    if convention == "trainable+bn_stats":
        stats = sum(
            m.running_mean.numel() + m.running_var.numel()
            for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
        )
        return count_parameters(module, "trainable") + stats
    raise ValueError(f"unknown parameter convention {convention!r}")


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """The Rain O'er Me authors' initialisation: conv weights N(0, std), biases zero."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def restore_tensor(backbone: nn.Module, x: Tensor) -> Tensor:
    """Restored image for inference, clamped to [0, 1]."""
    return run_backbone(backbone, x).restored.clamp_(0.0, 1.0)
