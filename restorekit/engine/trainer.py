"""The training loop: iterations, checkpoints, sample grids, evaluation, clean interruption.

One loop serves every method and backbone: the method (:mod:`restorekit.methods.base`) makes
its batches and computes the loss of each, the trainer owns everything else. Hot-path rules: no
host-device synchronisation except at log, checkpoint and evaluation steps (a NaN/Inf loss is
accumulated on the device and checked there), batches arrive as uint8 and become float on the
device (:mod:`restorekit.engine.step`), and whatever a method derives from its photos (the soft
labels of ``dt``) was computed before the loop started.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from rich.console import Console

from .. import __version__, _atomic
from ..config.loader import ResolvedConfig
from ..config.yaml_io import dump_yaml, read_yaml
from ..data.batches import ignore_stop_signals, unpack_batch
from ..data.demo import resolve_folder
from ..data.pairs import PairedSet
from ..data.report import SkipReport, skip_summary
from ..device import compile_for_training, resolve_device, resolve_precision
from ..errors import TrainingError
from ..evaluation import EvalResult, evaluate, results_table
from ..inference import Restorer
from ..methods import Method, build_method
from ..model_file import CHECKPOINTS, EMA_MODULE, MODEL_FILE, save_model
from ..progress import StageProgress
from ..registries import SCHEDULERS
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .collapse import CollapseGuard, CollapseRestart, respond, restart, snapshot
from .distributed import DistributedContext
from .metrics_log import MetricsLog
from .progress import TrainingProgress, file_logger
from .run_folder import RunLock, check_resume, run_config_file
from .step import OptimisationStep, make_optimizer
from .visualize import save_grid

__all__ = ["Trainer", "TrainResult", "make_ema"]


@dataclass
class TrainResult:
    """What a run produced."""

    work_dir: Path
    iteration: int
    model_path: Path | None
    evaluation: dict[str, dict[str, float]]
    interrupted: str | None = None


def make_ema(backbone: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``backbone``'s weights (and BatchNorm statistics).

    Short CPU runs end wherever the last few hundred noisy Adam steps left the weights; the
    average over roughly ``1 / (1 - decay)`` steps is a steadier network to evaluate and deploy.

    The average is bias-corrected, as Adam's moments are: after ``k`` updates it is
    ``sum_i decay**(k - i) * W_i / sum_i decay**(k - i)``. A plain EMA that starts from a copy of
    the first weights keeps ``decay**k`` of them (22 % after 300 steps at 0.995), and those are the
    untrained network's: an early checkpoint was then mostly the identity, as bright as the rainy
    input. At the end of a long run both agree.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"train.ema must be in [0, 1), got {decay}")
    return torch.optim.swa_utils.AveragedModel(backbone, multi_avg_fn=_corrected_ema(decay), use_buffers=True)


def _corrected_ema(decay: float):
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # This is update k = n + 1; moving the normalised sum from k - 1 to k terms gives W_k the
        # weight 1 / sum_{j<k} decay**j. (AveragedModel copies W_1 itself, before n reaches 1.)
        k = int(n_averaged) + 1
        weight = (1.0 - decay) / (1.0 - decay**k)
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (BatchNorm's batch count): follow the network
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    return update


class Trainer:
    """Runs a validated config to completion (or to a clean stop).

    Args:
        resolved: the validated config.
        work_dir: run folder (default: ``runtime.work_dir`` or ``runs/<config name>``).
        resume: continue from the run folder's latest checkpoint. Without it, a run folder
            that already has checkpoints is refused rather than overwritten. A resume whose
            config differs from the run's own is refused (:func:`~restorekit.engine.run_folder.check_resume`).
        allow_changes: let a resume change the keys that are safe to change (``train.iters``...).
        console: where progress and tables go.
    """

    def __init__(
        self,
        resolved: ResolvedConfig,
        *,
        work_dir: str | Path | None = None,
        resume: bool = False,
        allow_changes: bool = False,
        console: Console | None = None,
    ) -> None:
        self.resolved = resolved
        self.allow_changes = allow_changes
        self.config = resolved.config
        self.work_dir = Path(work_dir or self.config.runtime.work_dir or Path("runs") / resolved.name)
        self.resume = resume
        self.console = console or Console(markup=False, highlight=False)
        # torchrun's variables make this one rank of a multi-process run (engine/distributed.py).
        self.dist = DistributedContext.from_env()
        if not self.dist.is_main:
            self.console = Console(quiet=True)  # rank 0 speaks for all
        self.device = resolve_device(self.config.runtime.device, self.dist.local_rank if self.dist.enabled else None)
        self.precision = resolve_precision(self.config.runtime.precision, self.device)
        self._stop_signal: str | None = None
        self._ema: torch.optim.swa_utils.AveragedModel | None = None
        self._skip_reports: dict[str, SkipReport] = {}
        self._runtime_skips = SkipReport()  # files that became unreadable during training

    # ------------------------------------------------------------------ setup
    def _prepare_work_dir(self) -> Path | None:
        checkpoints = self.work_dir / CHECKPOINTS
        latest = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
        finished = self.work_dir / MODEL_FILE
        if (latest is not None or finished.is_file()) and not self.resume:
            held = f"latest checkpoint: {latest.name}" if latest is not None else f"a finished model, {finished.name}"
            raise TrainingError(
                f"run folder {self.work_dir} already holds a run ({held}); "
                f"pass --resume to continue it, or choose another folder with --work-dir "
                f"(or runtime.work_dir=...). Nothing was overwritten."
            )
        if latest is None and (self.work_dir / "config.yaml").is_file():
            # An earlier attempt that never reached a checkpoint: nothing to resume or to lose.
            self.console.print(f"run folder {self.work_dir} holds no checkpoint of an earlier attempt; starting afresh")
        saved = run_config_file(self.work_dir) if latest is not None else None
        if saved is not None:
            changed = check_resume(
                read_yaml(saved), self.resolved.to_dict(), allow_changes=self.allow_changes, saved_file=saved
            )
            if changed:
                self.console.print(f"resuming with changed {', '.join(changed)} (--allow-changes)")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        header = (
            f"# resolved config written by restorekit {__version__} on {datetime.datetime.now().isoformat(timespec='seconds')}\n"
            f"# command: {' '.join(sys.argv)}\n"
            f"# source: {self.resolved.source}; overrides: {' '.join(self.resolved.overrides) or 'none'}\n"
        )
        name = "config.yaml" if latest is None else f"config.resumed-{latest.name}.yaml"
        if self.dist.is_main:
            _atomic.write_text(self.work_dir / name, header + dump_yaml(self.resolved.to_dict()))
        return latest

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous = {}

        def on_signal(signum: int, frame: object) -> None:
            name = signal.Signals(signum).name
            if self._stop_signal is not None:  # a second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._stop_signal = name
            self.console.print(f"\n{name} received: finishing this iteration and writing a checkpoint...")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread (e.g. inside some test runners): no handler
                pass
        return previous

    # ------------------------------------------------------------------ run
    def fit(self) -> TrainResult:
        """Train, checkpoint, evaluate; returns what the run produced.

        The run folder is locked for the whole run (:class:`~restorekit.engine.run_folder.RunLock`):
        a second training into it fails at once, naming this one.
        """
        with RunLock(self.work_dir) if self.dist.is_main else contextlib.nullcontext() as lock:
            return self._fit(lock)

    def _fit(self, lock: RunLock | None) -> TrainResult:
        cfg = self.config
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
            cv2.setNumThreads(cfg.runtime.threads)  # the soft-label filters' threads
        self.dist.start(self.device)
        with self.dist.main_first():
            latest = self._prepare_work_dir()
        if lock is not None:
            lock.claim()
        log = file_logger(self.work_dir / "train.log") if self.dist.is_main else logging.getLogger("restorekit.rank")
        torch.manual_seed(cfg.train.seed)
        # Python's and NumPy's global generators too (a plugin may draw from them); checkpoints
        # save all three, so a resumed run continues each exactly where it stopped.
        random.seed(cfg.train.seed)
        np.random.seed(cfg.train.seed % 2**32)
        method = build_method(cfg).to(self.device)
        if cfg.runtime.channels_last:
            method = method.to(memory_format=torch.channels_last)
        if cfg.runtime.compile:
            compile_for_training(method.training_modules())
        optimizer = make_optimizer(method, cfg.train)
        lr_schedule = SCHEDULERS.build(cfg.train.lr_schedule, path="train.lr_schedule")
        modules = method.training_modules()
        specs = method.module_specs()
        self._ema = make_ema(method.backbone, cfg.train.ema) if cfg.train.ema else None
        if self._ema is not None:
            # Checkpoints carry the average too, so a resumed run continues it exactly.
            modules = {**modules, EMA_MODULE: self._ema}
            specs[EMA_MODULE] = cfg.backbone
        info = {"method": cfg.method, "task": cfg.task, "config": self.resolved.name}
        # One process cannot restart alone in a multi-process run: there the guard only warns.
        self._guard = CollapseGuard(cfg.train.on_collapse if not self.dist.enabled else "warn")

        start = 0
        if latest is not None:
            state = load_checkpoint(latest, modules, optimizer)
            start = int(state["iteration"])
            self.console.print(f"resuming {self.work_dir} from {latest.name} (iteration {start})")
        log.info(f"start at iteration {start} of {cfg.train.iters} on {self.device}")
        self._metrics = MetricsLog(
            self.work_dir, start=start, tensorboard=cfg.train.tensorboard, console=self.console, enabled=self.dist.is_main
        )

        with self.dist.main_first():  # rank 0 computes and caches soft labels; the others read them
            batches = self._load_data(method, log)
            eval_pairs = self._eval_pairs(cfg.eval.data) if self.dist.is_main and cfg.eval.data else None
        if eval_pairs is not None and len(eval_pairs.report):
            self.console.print(f"eval: {eval_pairs.report.summary()}", style="yellow")
            self._skip_reports["eval"] = eval_pairs.report
        ranks = f" × {self.dist.world_size} processes" if self.dist.enabled else ""
        self.console.print(
            f"{cfg.method} {cfg.backbone['type']} on {self.device}{ranks} "
            f"({self.precision}{', channels-last' if cfg.runtime.channels_last else ''}); "
            f"{cfg.train.iters} iterations of {cfg.data.batch_size}×{cfg.data.crop_size}²; run folder {self.work_dir}"
        )

        previous_handlers = self._install_signal_handlers()
        last_saved = start
        t = start
        try:
            method.train()
            initial = {**snapshot(modules, optimizer), "iteration": start} if self._guard.action == "restart" else {}
            while True:
                try:
                    t, last_saved = self._loop(
                        method, optimizer, lr_schedule, batches, eval_pairs, modules, specs, info, start, log
                    )
                    break
                except CollapseRestart as exc:  # train.on_collapse=restart
                    def say(text: str) -> None:
                        log.info(text)
                        self.console.print(text)

                    start = restart(self._guard, exc.event, method, modules, optimizer, self.work_dir / CHECKPOINTS,
                                    initial, say)
        except BaseException:
            self._metrics.close()  # the curves of a diverged or failed run are the first thing to look at
            raise
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)

        if not self.dist.replicas_identical(modules):
            raise TrainingError("the ranks' weights differ after training (gradients were not averaged alike)")
        self.dist.stop()
        if not self.dist.is_main:
            return TrainResult(self.work_dir, t, None, {}, interrupted=self._stop_signal)
        checkpoints = self.work_dir / CHECKPOINTS
        if t > last_saved:
            save_checkpoint(checkpoints, t, modules, specs, optimizer, info=info, keep=cfg.train.keep_checkpoints)
        summary = skip_summary(self._skip_reports)
        self.console.print(summary)
        log.info(summary)
        if self._stop_signal is not None:
            allow = " --allow-imports" if cfg.imports else ""
            self.console.print(
                f"stopped by {self._stop_signal} at iteration {t}; checkpoint written. "
                f"Continue with: restorekit train --resume --work-dir {self.work_dir}{allow}"
            )
            self._metrics.close()
            return TrainResult(self.work_dir, t, None, {}, interrupted=self._stop_signal)

        # The model file holds the weights that are evaluated and deployed: the average, when there is one.
        final = {**modules, "backbone": self._inference_backbone(method)}
        final.pop(EMA_MODULE, None)
        model_path = save_model(self.work_dir / MODEL_FILE, final, specs, {**info, "iteration": t})
        evaluation = {}
        if eval_pairs is not None:
            evaluation = self._final_evaluation(method, eval_pairs)
            self._metrics.final_evaluation(t, self.work_dir / "eval.json")
        self._metrics.close()
        self.console.print(f"model: {model_path}")
        return TrainResult(self.work_dir, t, model_path, evaluation)

    def _eval_pairs(self, folder: str) -> PairedSet:
        """A held-out paired set of ``eval.data`` or ``eval.extra``."""
        cfg = self.config
        return PairedSet(resolve_folder(folder), on_bad_image=cfg.data.on_bad_image, limit=cfg.eval.max_images)

    def _load_data(self, method: Method, log: Any) -> Any:
        started = time.perf_counter()
        with StageProgress(self.console) as progress:  # a bar per stage (soft labels of a large folder take a while)
            batches, reports = method.training_batches(self.config, rank=self.dist.rank, progress=progress)
        self._skip_reports = {**reports, "during training": self._runtime_skips}
        for name, report in reports.items():
            if len(report):
                self.console.print(f"{name}: {report.summary()}", style="yellow")
                log.info(f"{name}: {report.summary()}")
        self.console.print(f"data ready in {time.perf_counter() - started:.1f}s")
        return batches

    def _loop(
        self,
        method: Method,
        optimizer: torch.optim.Optimizer,
        lr_schedule: Any,
        batches: Any,
        eval_pairs: Any,
        modules: dict,
        specs: dict,
        info: dict,
        start: int,
        log: Any,
    ) -> tuple[int, int]:
        cfg = self.config
        train, runtime = cfg.train, cfg.runtime
        total = train.iters
        loader = torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            sampler=range(start + 1, total + 1),
            num_workers=cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if cfg.data.num_workers else None,
            # Its own generator, so that making the loader does not draw from the global RNG
            # (a resumed run would otherwise draw once more than an uninterrupted one).
            generator=torch.Generator().manual_seed(cfg.train.seed),
            worker_init_fn=ignore_stop_signals if cfg.data.num_workers else None,
        )
        # method.training_step, or its DistributedDataParallel wrapper, inside one optimisation step
        step = OptimisationStep(
            self.dist.wrap(method), method.parameters(), optimizer, device=self.device, precision=self.precision,
            channels_last=runtime.channels_last, grad_clip=train.grad_clip,
        )
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        last_good = start
        last_saved = start
        checkpoints = self.work_dir / CHECKPOINTS
        t = start
        with TrainingProgress(self.console, total, start, log) as progress:
            for t, batch in enumerate(loader, start=start + 1):
                lr = train.lr * lr_schedule.factor(t, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batch, skipped = unpack_batch(batch)
                for path, reason in skipped:
                    if path not in self._runtime_skips:
                        self._runtime_skips.add(path, reason)
                        progress.message(f"skipped {path}: {reason}")
                want_images = (
                    self.dist.is_main and bool(train.sample_every) and (t % train.sample_every == 0 or t == start + 1)
                )
                out = step(batch, t, want_images=want_images)
                if self._ema is not None:
                    self._ema.update_parameters(method.backbone)
                nonfinite |= ~torch.isfinite(out.loss.detach())
                progress.advance(t)
                self._guard.observe(out.logs)
                if (event := self._guard.check(t)) is not None and self.dist.is_main:
                    respond(self._guard, event, progress.message, checkpoints)

                checkpoint_due = t % train.checkpoint_every == 0
                log_due = t % train.log_every == 0 or t == total
                stop_due = self._stop_signal is not None
                if self.dist.enabled:  # all ranks must stop at one iteration: they agree at log/checkpoint steps
                    stop_due = (log_due or checkpoint_due) and self.dist.any(stop_due)
                if log_due or checkpoint_due or stop_due:
                    if bool(nonfinite):  # the only per-interval sync
                        kept = (
                            f"The last good checkpoint is in {checkpoints} (iteration {last_saved}); resume it with "
                            f"--resume, perhaps with a lower train.lr or train.grad_clip set."
                            if last_saved
                            else "No checkpoint had been written yet; start again with a lower train.lr "
                            "or train.grad_clip set."
                        )
                        raise TrainingError(
                            f"the loss became NaN or Inf between iterations {last_good + 1} and {t}; stopped without "
                            f"saving the broken weights. {kept}"
                        )
                    last_good = t
                if log_due:
                    logs = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in out.logs.items()}
                    speed = progress.report(t, {**logs, "lr": lr})
                    self._metrics.train(t, {**logs, "lr": lr}, speed)
                if want_images:
                    self._metrics.images(t, save_grid(self.work_dir / "samples" / f"iter_{t:08d}.png", out.images))
                if (checkpoint_due or stop_due) and self.dist.is_main:
                    save_checkpoint(checkpoints, t, modules, specs, optimizer, info=info, keep=train.keep_checkpoints)
                    last_saved = t
                    if not stop_due:
                        progress.message(f"checkpoint: iteration {t}")
                if cfg.eval.every and t % cfg.eval.every == 0 and eval_pairs is not None and t != total:  # rank 0 only
                    result = self._evaluate_network(method, eval_pairs)
                    m = result.means
                    progress.message(
                        f"eval @ {t}: PSNR-Y {m['psnr_y']:.2f} dB  SSIM-Y {m['ssim_y']:.4f}  brightness {m['brightness']:+.2f}"
                    )
                    self._metrics.evaluation(t, m)
                    method.train()
                if stop_due:
                    break
        return t, last_saved

    # ------------------------------------------------------------------ evaluation
    def _inference_backbone(self, method: Method) -> torch.nn.Module:
        """The network that is evaluated and saved as the model: the weight average when ``train.ema`` is set."""
        return self._ema.module if self._ema is not None else method.backbone

    def _restorer(self, method: Method) -> Restorer:
        runtime = self.config.runtime
        return Restorer(
            self._inference_backbone(method), self.device, precision=self.precision, channels_last=runtime.channels_last,
            tile=self.config.eval.tile,
        )

    def _evaluate_network(self, method: Method, pairs: Any) -> EvalResult:
        method.eval()
        name = f"{self.config.backbone['type']} ({self.config.method})"
        return evaluate(pairs, self._restorer(method), name)

    def _comparison_rows(self, method: Method, pairs: Any) -> list[tuple[str, EvalResult]]:
        """The degraded input, the method's baselines (dt: the soft-label filter) and the trained
        network scored on ``pairs``, each with its role (``input``, ``baseline``, ``network``)."""
        rows = [("input", evaluate(pairs, lambda image: image, "degraded input"))]
        rows += [("baseline", evaluate(pairs, b.restore, b.label)) for b in method.baselines()]
        rows.append(("network", self._evaluate_network(method, pairs)))
        return rows

    def _final_evaluation(self, method: Method, pairs: Any) -> dict[str, dict[str, float]]:
        """Input vs soft-label filter vs trained network on the held-out pairs (the main job's table),
        then the same table for each of ``eval.extra`` (in ``eval_extra.json``)."""
        rows = self._comparison_rows(method, pairs)
        rows[-1][1].write_csv(self.work_dir / "eval_per_image.csv")
        _atomic.write_text(self.work_dir / "eval.json", json.dumps(_scores_by_label(rows), indent=2) + "\n")
        table = [row for _, row in rows]
        self.console.print(results_table(table, f"held-out pairs: {self.config.eval.data} ({len(pairs)} images)"))
        extra = {}
        for name in self.config.eval.extra:
            extra_pairs = self._eval_pairs(name)
            extra_rows = self._comparison_rows(method, extra_pairs)
            extra[name] = _scores_by_label(extra_rows)
            table = [row for _, row in extra_rows]
            self.console.print(results_table(table, f"held-out pairs: {name} ({len(extra_pairs)} images)"))
        if extra:
            _atomic.write_text(self.work_dir / "eval_extra.json", json.dumps(extra, indent=2) + "\n")
        return {row.label: {k: (v if math.isfinite(v) else None) for k, v in row.means.items()} for _, row in rows}


def _scores_by_label(rows: list[tuple[str, EvalResult]]) -> dict[str, dict[str, Any]]:
    """What ``eval.json`` holds: each row's mean scores by its label, with its ``role``
    (``input``, ``baseline`` or ``network``), so readers find rows without parsing labels."""
    return {row.label: {"role": role, **row.means} for role, row in rows}
