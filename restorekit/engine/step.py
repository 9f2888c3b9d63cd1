"""One optimisation step: what every training iteration does with its batch, whatever the method.

The trainer's loop calls it once per iteration and ``tools/benchmark.py`` times it, so what is
measured is exactly what trains. Hot-path rules: batches arrive as uint8 and become float on
the device (4× less to copy), and nothing here waits for the device (no ``.item()``, no
``float(loss)``): the loop reads values back only at log, checkpoint and evaluation steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..device import autocast, to_device_batch
from ..methods.base import StepOutput

__all__ = ["OptimisationStep", "make_optimizer"]


def make_optimizer(module: nn.Module, train: Any) -> torch.optim.Optimizer:
    """Adam (the paper) or SGD with momentum (DDN's authors), over every trainable parameter of ``module``.

    ``train`` is the config's ``train`` section (``optimizer``, ``lr``, ``betas``, ``momentum``, ``weight_decay``).
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.Adam(params, lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay)


class OptimisationStep:
    """Move a batch to the device, compute the method's loss under autocast, back-propagate, step.

    Args:
        forward: ``forward(batch, t, want_images=...) -> StepOutput``: a method's
            ``training_step``, or its multi-process wrapper.
        parameters: what the gradient clip measures (the method's parameters).
        optimizer: the optimiser over them.
        device: where the batch goes.
        precision: ``fp32`` or ``bf16`` (autocast).
        channels_last: the batch in the channels-last memory format.
        grad_clip: clip the gradient norm to this value (None: no clipping).
    """

    def __init__(
        self,
        forward: Callable[..., StepOutput],
        parameters: Iterable[nn.Parameter],
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        precision: str = "fp32",
        channels_last: bool = False,
        grad_clip: float | None = None,
    ) -> None:
        self.forward = forward
        self.parameters = list(parameters)
        self.optimizer = optimizer
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.grad_clip = grad_clip

    def __call__(self, batch: dict[str, Tensor], t: int, *, want_images: bool = False) -> StepOutput:
        """Iteration ``t`` on a uint8 batch; returns the method's output (its loss already stepped on)."""
        batch = to_device_batch(batch, self.device, self.channels_last)
        with autocast(self.device, self.precision):
            out = self.forward(batch, t, want_images=want_images)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.optimizer.step()
        return out
