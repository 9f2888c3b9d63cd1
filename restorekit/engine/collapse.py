"""The collapse guard: notices when distillation stops removing anything, and says what to do.

Distillation has a degenerate fixed point. When the distilled residual ``g(R)`` shrinks, the
hard pair ``D = C + g(R)`` approaches the clean image, for which returning the input is optimal,
so the hard loss falls to ~0 while the network learns to do nothing (the authors' DID README:
if the hard loss "is always 0.000 ... stop the code and rerun"). The guard reads two values the
method logs every iteration: ``removed`` (RMS of ``g(R)`` over RMS of the soft residual
``X - Y_s``) and ``hard``. It averages them over windows of ``window`` iterations (on the
device: no synchronisation until a window ends) and declares a collapse when ``windows``
windows in a row have both below their thresholds, so a collapse is reported at most
``(windows + 1) × window`` iterations after it starts (150 with the defaults).

``train.on_collapse`` says what happens then: ``warn`` (a message in the log and the progress
output, and training goes on), ``stop`` (a :class:`~restorekit.errors.TrainingError` naming the
last healthy checkpoint), or ``restart`` (the trainer reloads the last checkpoint written
before the collapse began, or the initial weights when there is none, applies the method's
``rescue()``, and goes on; at most ``max_restarts`` times).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["CollapseGuard", "CollapseEvent", "CollapseRestart", "ADVICE"]

#: What to try, in the words of docs/training.md ("When the network learns to do nothing").
ADVICE = (
    "the network has become the identity (it returns its input). Set train.on_collapse=restart to go back to "
    "the last healthy checkpoint with the rescue of the docs, or start again with the fixes of docs/training.md "
    "('When the network learns to do nothing'): dt.hard_pair_floor, backbone.head_init=zero, a lower train.lr"
)


@dataclass
class CollapseEvent:
    """A change of state the guard saw at the end of a window."""

    kind: str  # "collapsed" or "recovered"
    iteration: int
    removed: float
    hard: float
    last_healthy: int  # last iteration of the last healthy window (0: none)

    @property
    def message(self) -> str:
        values = f"removed {self.removed:.3f}, hard loss {self.hard:.4f}"
        if self.kind == "recovered":
            return f"collapse guard @ {self.iteration}: the network removes rain again ({values})"
        since = f" since about iteration {self.last_healthy}" if self.last_healthy else ""
        return f"COLLAPSE @ {self.iteration}: the distilled residual is gone{since} ({values}); {ADVICE}"


class CollapseRestart(Exception):
    """Raised out of the training loop when ``on_collapse`` is ``restart``."""

    def __init__(self, event: CollapseEvent) -> None:
        super().__init__(event.message)
        self.event = event


class CollapseGuard:
    """Windowed check of the ``removed`` and ``hard`` logs of a distillation run.

    Args:
        action: ``warn``, ``stop`` or ``restart`` (what the trainer does on a collapse).
        removed_below: a window is collapsed when its mean ``removed`` is below this ...
        hard_below: ... and its mean hard loss below this.
        window: iterations per window.
        windows: consecutive collapsed windows that make a collapse.
        warmup: windows ending at or before this iteration are not judged (a zero head starts
            with no residual at all).
    """

    def __init__(
        self,
        action: str = "warn",
        *,
        removed_below: float = 0.1,
        hard_below: float = 0.02,
        window: int = 50,
        windows: int = 2,
        warmup: int = 100,
    ) -> None:
        if action not in ("warn", "stop", "restart"):
            raise ValueError(f"on_collapse must be warn, stop or restart, got {action!r}")
        self.action = action
        self.removed_below = removed_below
        self.hard_below = hard_below
        self.window = window
        self.windows = windows
        self.warmup = warmup
        self.reset(0)

    def reset(self, start: int) -> None:
        """Forget everything (a new start at iteration ``start``)."""
        self._sums: torch.Tensor | None = None
        self._count = 0
        self._low = 0
        self.collapsed = False
        self.last_healthy = start

    def observe(self, logs: dict) -> None:
        """Add one iteration's logs (tensors stay on their device)."""
        if "removed" not in logs or "hard" not in logs:
            return  # not a distillation method: nothing to watch
        values = torch.stack([torch.as_tensor(logs["removed"]).detach().float().reshape(()),
                              torch.as_tensor(logs["hard"]).detach().float().reshape(())])
        self._sums = values if self._sums is None else self._sums + values.to(self._sums.device)
        self._count += 1

    def check(self, t: int) -> CollapseEvent | None:
        """At the end of a window (``t % window == 0``): judge it; returns a change of state, if any."""
        if t % self.window or self._sums is None or not self._count:
            return None
        removed, hard = (self._sums / self._count).tolist()  # the only synchronisation
        self._sums, self._count = None, 0
        if removed < self.removed_below and hard < self.hard_below:
            if t <= self.warmup:
                return None  # not judged yet, but not healthy either
            self._low += 1
            if self._low >= self.windows and not self.collapsed:
                self.collapsed = True
                return CollapseEvent("collapsed", t, removed, hard, self.last_healthy)
            return None
        self._low = 0
        self.last_healthy = t
        if self.collapsed:
            self.collapsed = False
            return CollapseEvent("recovered", t, removed, hard, self.last_healthy)
        return None


def respond(guard: CollapseGuard, event: CollapseEvent, say, checkpoints) -> None:
    """Say what the guard saw (log and progress output) and act on ``guard.action``."""
    from ..errors import TrainingError

    say(event.message)
    if event.kind != "collapsed" or guard.action == "warn":
        return
    if guard.action == "restart":
        raise CollapseRestart(event)
    healthy = healthy_checkpoint(checkpoints, event.last_healthy)
    kept = f"the last healthy checkpoint is {healthy}" if healthy else "no checkpoint was written before it"
    raise TrainingError(f"stopped by train.on_collapse=stop at iteration {event.iteration}: {kept}. {event.message}")


def healthy_checkpoint(folder, last_healthy: int):
    """The newest complete checkpoint of ``folder`` written at or before iteration ``last_healthy``, or None."""
    from pathlib import Path

    from ..model_file import complete_checkpoints

    folder = Path(folder)
    done = complete_checkpoints(folder) if folder.is_dir() else []
    good = [p for p in done if int(p.name.removeprefix("iter_")) <= last_healthy]
    return good[-1] if good else None


def snapshot(modules: dict, optimizer) -> dict:
    """An in-memory copy of the weights and optimiser state (where a restart goes when no checkpoint is healthy)."""
    import copy

    return {"modules": {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()},
            "optimizer": copy.deepcopy(optimizer.state_dict())}


def restart(guard: CollapseGuard, event: CollapseEvent, method, modules: dict, optimizer, checkpoints, initial: dict,
            say, max_restarts: int = 2) -> int:
    """Reload the last healthy state, apply ``method.rescue()``; returns the iteration to continue from."""
    from ..errors import TrainingError
    from .checkpoint import load_checkpoint

    guard.restarts = getattr(guard, "restarts", 0) + 1
    if guard.restarts > max_restarts:
        raise TrainingError(f"the network collapsed again after {max_restarts} restarts; {event.message}")
    healthy = healthy_checkpoint(checkpoints, event.last_healthy)
    if healthy is not None:
        start = int(load_checkpoint(healthy, modules, optimizer)["iteration"])
        where = f"checkpoint {healthy.name}"
    else:
        for name, module in modules.items():
            module.load_state_dict(initial["modules"][name])
        optimizer.load_state_dict(initial["optimizer"])
        start, where = initial["iteration"], f"iteration {initial['iteration']} (no healthy checkpoint)"
    change = method.rescue(guard.restarts)
    say(f"collapse guard: restart {guard.restarts}/{max_restarts} from {where}; {change}")
    guard.reset(start)
    return start
