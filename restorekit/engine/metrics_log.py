"""A run's numbers as data: ``metrics.jsonl``, ``curves.png`` and, if asked, TensorBoard event files.

Every run folder gets ``metrics.jsonl``, one JSON object per line:

* ``{"kind": "train", "iteration": t, "loss": …, "soft": …, "hard": …, "alpha": …, "beta": …,
  "lr": …, "it_per_s": …}`` at every logged iteration (``train.log_every``): whatever the
  method reports (the ``logs`` of :class:`restorekit.methods.base.StepOutput`), the learning rate and the
  speed since the previous logged iteration;
* ``{"kind": "eval", "iteration": t, "psnr_y": …, "ssim_y": …, "psnr_rgb": …, "ssim_rgb": …,
  "brightness": …}`` (the brightness error in grey levels, restored minus truth)
  at every evaluation during training (``eval.every``), and once more at the end with
  ``"final": true`` and the network's ``label``;
* ``{"kind": "baseline", "iteration": t, "label": …, "role": "input" | "baseline", …}`` at the
  end: the degraded input's and the method's baselines' scores (``eval.json``'s other rows), so
  a plot can show what the network had to beat.

A resumed run continues the file: records after its checkpoint's iteration (written by the
attempt that was interrupted, and redone now) and the earlier final records are dropped first,
so every iteration appears once. A line cut short by a crash is dropped too.

At the end (or a stop) the records are drawn into ``curves.png`` (the losses, the loss weights
α and β, the learning rate, and the held-out PSNR against the iterations), which needs
matplotlib (``pip install 'restorekit[plots]'``; ``restorekit curves RUN`` draws it later).
With ``train.tensorboard: true`` (or ``restorekit train --tensorboard``) the same scalars and
the sample grids also go to TensorBoard event files in ``<run>/tensorboard/``, which needs the
``tensorboard`` package (``pip install 'restorekit[tensorboard]'``). Without either package,
training runs as before and says once how to get the pictures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from .. import _atomic

__all__ = [
    "METRICS_FILE",
    "CURVES_FILE",
    "TENSORBOARD_DIR",
    "MetricsLog",
    "read_metrics",
    "plot_curves",
    "draw_run_curves",
    "PLOTS_HINT",
]

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"
#: How to get ``curves.png`` where matplotlib is missing.
PLOTS_HINT = "pip install 'restorekit[plots]'"
TENSORBOARD_HINT = "pip install 'restorekit[tensorboard]'"

#: Keys a record has of its own; a method's log of the same name is kept as ``logs.<name>``.
_RESERVED = ("kind", "iteration", "lr", "it_per_s", "final", "label", "role")
_WEIGHTS = ("alpha", "beta")
_NOT_LOSSES = (*_RESERVED, *_WEIGHTS)
_EVAL_KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "brightness")


def _number(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become null (JSON has no spelling for them)."""
    value = float(value)
    return value if math.isfinite(value) else None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (or of the run folder holding one), in file order.

    A line that is not a JSON object with an integer ``iteration`` (the tail of a crash) is skipped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    records = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), int):
            records.append(record)
    return records


def _kept_on_resume(record: Mapping[str, Any], start: int) -> bool:
    final = record.get("final") or record.get("kind") == "baseline"
    return not final and record["iteration"] <= start


class MetricsLog:
    """Writes a run's ``metrics.jsonl`` (and TensorBoard events); draws ``curves.png`` when closed.

    Args:
        work_dir: the run folder.
        start: the iteration the run starts after (0 for a new run; a resumed run's checkpoint).
        tensorboard: also write TensorBoard event files (with a note, not an error, when the
            package is missing).
        console: where the one-off notes go.
        enabled: False on the ranks of a multi-process run other than the first (they write nothing).
    """

    def __init__(
        self,
        work_dir: str | Path,
        *,
        start: int = 0,
        tensorboard: bool = False,
        console: Console | None = None,
        enabled: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / METRICS_FILE
        self.console = console or Console(markup=False, highlight=False)
        self.enabled = enabled
        self._file = None
        self._tensorboard: Any = None
        if not enabled:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if _kept_on_resume(r, start)] if start else []
        # Rewritten whole (atomically) once, then appended to: an interrupted attempt's records
        # after the checkpoint are redone by this run and must not appear twice.
        _atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run's whole length)
        if tensorboard:
            self._tensorboard = self._open_tensorboard(start)

    def _open_tensorboard(self, start: int) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.console.print(
                f"TensorBoard event files are not written: train.tensorboard needs the tensorboard package "
                f"({TENSORBOARD_HINT}); metrics.jsonl has the same numbers",
                style="yellow",
            )
            return None
        # purge_step: events an interrupted attempt wrote after the checkpoint are hidden, as in metrics.jsonl.
        return SummaryWriter(str(self.work_dir / TENSORBOARD_DIR), purge_step=start + 1 if start else None)

    # ------------------------------------------------------------------ records
    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()  # a crash loses at most the line being written

    def train(self, t: int, logs: Mapping[str, float], speed: float | None = None) -> None:
        """The logged values of iteration ``t`` (the method's logs and ``lr``) and the speed in it/s."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"kind": "train", "iteration": t}
        for key, value in logs.items():
            name = key if key == "lr" or key not in _RESERVED else f"logs.{key}"
            record[name] = _number(value)
        if speed is not None:
            record["it_per_s"] = _number(speed)
        self._write(record)
        if self._tensorboard is not None:
            for key, value in record.items():
                if key not in ("kind", "iteration") and value is not None:
                    self._tensorboard.add_scalar(f"train/{key}", value, t)

    def evaluation(self, t: int, means: Mapping[str, float], *, label: str | None = None, final: bool = False) -> None:
        """The network's mean held-out scores at iteration ``t``."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"kind": "eval", "iteration": t}
        if final:
            record.update(final=True, label=label)
        record.update({k: _number(means[k]) for k in _EVAL_KEYS if means.get(k) is not None})
        self._write(record)
        if self._tensorboard is not None:
            for key in _EVAL_KEYS:
                if record.get(key) is not None:
                    self._tensorboard.add_scalar(f"eval/{key}", record[key], t)

    def final_evaluation(self, t: int, table: Mapping[str, Mapping[str, Any]] | str | Path) -> None:
        """The end-of-run table: ``eval.json`` (or its content: rows by label, each with its ``role``)."""
        if not self.enabled:
            return
        if not isinstance(table, Mapping):
            table = json.loads(Path(table).read_text(encoding="utf-8"))
        for label, row in table.items():
            role = row.get("role")
            if role == "network":
                self.evaluation(t, row, label=label, final=True)
            else:
                scores = {k: _number(row[k]) for k in _EVAL_KEYS if k in row and row[k] is not None}
                self._write({"kind": "baseline", "iteration": t, "label": label, "role": role, **scores})

    def images(self, t: int, grid: np.ndarray | str | Path) -> None:
        """A sample grid of iteration ``t`` (H×W×3 uint8 RGB, or the PNG in ``samples/``): for TensorBoard."""
        if self._tensorboard is None:
            return
        if not isinstance(grid, np.ndarray):
            from ..data.io import read_image

            grid = read_image(Path(grid))
        self._tensorboard.add_image("samples", grid, t, dataformats="HWC")

    # ------------------------------------------------------------------ the end
    def close(self, *, curves: bool = True) -> Path | None:
        """Close the files and draw ``curves.png``; returns its path (None when not drawn)."""
        if not self.enabled:
            return None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if not curves:
            return None
        try:
            path = plot_curves(self.path, self.work_dir / CURVES_FILE)
            self.console.print(f"curves: {path}")
            return path
        except ImportError:
            self.console.print(
                f"curves.png is not drawn: it needs matplotlib ({PLOTS_HINT}); then "
                f"`restorekit curves {self.work_dir}` draws it from {METRICS_FILE}",
                style="yellow",
            )
        except (OSError, ValueError) as exc:  # the training's results are safe; only the picture is missing
            self.console.print(f"curves.png could not be drawn: {exc}", style="yellow")
        return None

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- curves.png
def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(r["iteration"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in points], [float(p[1]) for p in points]


def plot_curves(metrics: str | Path, out: str | Path, *, title: str | None = None) -> Path:
    """Draw a ``metrics.jsonl`` as a PNG of four panels against the iterations.

    The losses (every logged value that is not a weight, the learning rate or the speed), the
    loss weights α and β (log scale), the learning rate, and the held-out PSNR-Y of the network
    (with the final SSIM-Y and, as dashed lines, the degraded input's and the baselines' final
    PSNR-Y). Uses matplotlib's object interface without pyplot, so it changes no global state.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: the file holds no training record.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics, out = Path(metrics), Path(out)
    records = read_metrics(metrics)
    train = [r for r in records if r.get("kind") == "train"]
    if not train:
        raise ValueError(f"{metrics}: no training record to draw")
    evals = [r for r in records if r.get("kind") == "eval"]
    baselines = [r for r in records if r.get("kind") == "baseline"]

    figure = Figure(figsize=(10, 6.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    (losses, weights), (rates, scores) = figure.subplots(2, 2, sharex=True)
    figure.suptitle(title or f"training curves of {metrics.parent.name} ({METRICS_FILE})", fontsize=11)

    loss_keys = [k for k in dict.fromkeys(k for r in train for k in r) if k not in _NOT_LOSSES]
    for key in loss_keys:
        losses.plot(*_series(train, key), label=key, linewidth=1.2)
    losses.set_title("losses (and what else the method logs)", fontsize=10)
    if loss_keys:
        losses.legend(fontsize=8)

    drawn = []
    for key in _WEIGHTS:
        xs, ys = _series(train, key)
        if xs:
            weights.plot(xs, ys, label=key, linewidth=1.2)
            drawn += [y for y in ys if y > 0]
    if drawn:
        if max(drawn) / min(drawn) > 50:  # the paper's alpha grows to hundreds while beta falls below 1
            weights.set_yscale("log")
        weights.legend(fontsize=8)
        weights.set_title("loss weights: α (hard), β (soft)", fontsize=10)
    else:
        weights.set_title("loss weights: none logged by this method", fontsize=10)

    rates.plot(*_series(train, "lr"), color="tab:gray", linewidth=1.2)
    rates.set_ylim(bottom=0)
    rates.set_title("learning rate", fontsize=10)
    rates.set_xlabel("iteration")

    xs, ys = _series(evals, "psnr_y")
    if xs:
        scores.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label="network")
        for record in baselines:
            if isinstance(record.get("psnr_y"), (int, float)):
                scores.axhline(record["psnr_y"], linestyle="--", linewidth=1, color="tab:gray" if record.get(
                    "role") == "input" else "tab:orange", label=str(record.get("label")))
        final = [r for r in evals if r.get("final")]
        if final and all(isinstance(final[-1].get(k), (int, float)) for k in ("psnr_y", "ssim_y")):
            scores.text(0.98, 0.04, f"final: {final[-1]['psnr_y']:.2f} dB, SSIM-Y {final[-1]['ssim_y']:.4f}",
                        transform=scores.transAxes, ha="right", va="bottom", fontsize=8)
        scores.legend(fontsize=8)
        scores.set_title("held-out PSNR-Y (dB)", fontsize=10)
    else:
        scores.set_title("held-out PSNR-Y: no evaluation recorded", fontsize=10)
    scores.set_xlabel("iteration")
    for axis in (losses, weights, rates, scores):
        axis.grid(True, alpha=0.3)
        axis.tick_params(labelsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _atomic.replacing(out) as tmp:
        figure.savefig(tmp, format="png")
    return out


def draw_run_curves(run: str | Path, output: str | Path | None = None) -> Path:
    """``restorekit curves RUN``: draw a run folder's (or a file's) ``metrics.jsonl`` into ``curves.png``.

    Raises:
        ConfigError: no such file, nothing to draw, or matplotlib missing (all said in the message).
    """
    from ..errors import ConfigError

    source = Path(run)
    metrics = source / METRICS_FILE if source.is_dir() else source
    if not metrics.is_file():
        raise ConfigError(f"{metrics}: no such file (the run folder of `restorekit train` holds {METRICS_FILE})")
    try:
        return plot_curves(metrics, output or metrics.parent / CURVES_FILE)
    except ImportError:
        raise ConfigError(f"drawing curves needs matplotlib: {PLOTS_HINT}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
