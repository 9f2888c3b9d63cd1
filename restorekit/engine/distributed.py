"""Multi-process training: ``torchrun --nproc_per_node=N tools/train.py CONFIG``.

Each process (rank) trains a replica of the same network on its own batches (batches are a
pure function of ``(seed, iteration, rank)``, see :mod:`restorekit.data.batches`);
DistributedDataParallel averages the gradients after every backward pass, so the replicas
take identical optimiser steps and stay identical. With equal per-rank batches and a loss
that is a mean over the batch (SSIM, L1, MSE), N ranks of batch B compute the same update as
one process would on the N·B crops together.

Wrapping: DDP must see exactly one ``forward`` per backward. The distillation step applies the
backbone *twice* (to the rainy batch, then to the hard pair built from its output), so the
backbone cannot be the wrapped module; the whole training step is: :class:`TrainingStep`
makes ``method.training_step`` the ``forward`` of one module that owns the backbone, the
detail block and any training-only parameter. Autograd sums a parameter's gradients from
both passes before its hook fires, so each gradient is all-reduced once per step.

Only rank 0 writes (checkpoints, samples, logs, evaluation). The soft-label cache is shared
through the disk: rank 0 loads the data first, computing and caching labels, and the other
ranks then find them in the cache (:meth:`DistributedContext.main_first`).

Backends: NCCL for CUDA, gloo for the CPU. ``torchrun`` gives each process one thread unless
``OMP_NUM_THREADS`` is set; set ``runtime.threads`` to give each rank its share of the cores.
"""

from __future__ import annotations

import contextlib
import gc
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedContext", "TrainingStep"]


class TrainingStep(nn.Module):
    """A method's training step as a module ``forward``, so that DDP can wrap the whole step."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: dict[str, Tensor], t: int, want_images: bool = False):  # -> StepOutput
        return self.method.training_step(batch, t, want_images=want_images)


@dataclass
class DistributedContext:
    """Where this process stands in a multi-process run (``world_size == 1``: a plain run).

    Args:
        rank: this process's index among all processes.
        world_size: how many processes train together.
        local_rank: this process's index on its machine (its GPU, on CUDA).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    _device: torch.device | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_env(cls) -> DistributedContext:
        """Read the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); none: a plain run."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and prints."""
        return self.rank == 0

    # ------------------------------------------------------------------ lifetime
    def start(self, device: torch.device, timeout_minutes: float = 30.0) -> None:
        """Join the process group (NCCL on CUDA, gloo on the CPU); a no-op for a plain run."""
        if not self.enabled or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
        self._device = device

    def stop(self) -> None:
        """Leave the process group (after the others: a rank that leaves early breaks their last collective)."""
        if self.enabled and dist.is_initialized():
            # Free the training step's DDP wrapper (its reducer and gloo work objects, which may sit
            # in reference cycles) while the group still exists: left to the interpreter's
            # teardown, their C++ threads sometimes ended the process with SIGABRT ("terminate
            # called without an active exception") after a finished run.
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()

    # ------------------------------------------------------------------ coordination
    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on rank 0 first, then on the others (who then find rank 0's cached results)."""
        if self.enabled and not self.is_main:
            dist.barrier()
        try:
            yield
        finally:
            # Also on an error, so the others go on to meet it themselves rather than wait forever.
            if self.enabled and self.is_main:
                dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (e.g. a stop signal that reached only one)."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)], device=self._collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def _collective_device(self) -> torch.device:
        # NCCL only moves CUDA tensors; gloo only CPU ones.
        return self._device if dist.get_backend() == "nccl" and self._device is not None else torch.device("cpu")

    # ------------------------------------------------------------------ training
    def wrap(self, method: nn.Module) -> Callable[..., object]:
        """The training-step callable: ``step(batch, t, want_images=...)``; DDP-wrapped when distributed."""
        if not self.enabled:
            return method.training_step  # type: ignore[return-value]
        device = next(method.parameters()).device
        return DistributedDataParallel(
            TrainingStep(method),
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,
        )

    def replicas_identical(self, modules: dict[str, nn.Module]) -> bool:
        """Whether every rank holds bit-identical parameters and buffers (always true for one process)."""
        if not self.enabled:
            return True
        tensors = [v.detach().reshape(-1).double() for m in modules.values() for v in m.state_dict().values()]
        if not tensors:
            return True
        flat = torch.cat(tensors).to(self._collective_device())
        low, high = flat.clone(), flat.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.equal(low, high))
