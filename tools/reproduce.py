#!/usr/bin/env python
"""Reproduce the paper's tables at CPU scale: prepare data, train and score every row, render the docs.

Each study file in ``configs/reproduce/`` is one table (or figure) of Rain O'er Me: its rows are
``restorekit train`` runs, each a shipped config plus dotted overrides, with the CPU budget it
was sized for (minutes on 2 cores). The runner trains each row once, writes one JSON per row,
and renders what ran into ``docs/_data/reproduce.json`` and ``docs/_static/figures/``, from
which the docs' reproduction page is generated.

    python tools/reproduce.py prepare --source /photos          # /photos/clean (+ real_rain_train) -> runs/reproduce/data
    python tools/reproduce.py list                              # studies, rows and budgets
    python tools/reproduce.py run table3 table7 --jobs 2        # train + score (skips finished rows)
    python tools/reproduce.py render                            # tables/figures for the docs
    python tools/reproduce.py run --demo --smoke table7         # the built-in demo data, 2 iterations

The paired test data is restorekit's own rain rendered on held-out clean photos: ``prepare``
splits a folder of clean photos into rain sources (the rainy training inputs, unpaired),
backgrounds (the clean images of the hard pairs) and held-out test photos, and renders the
demo's Rain100L-like rain on the first and last groups. Real rainy photos, when the source has
them (``real_rain_train/``), are split into training photos and a held-out gallery. No photo
is in two groups. ``--demo`` uses the built-in demo data instead, so the runner itself is
testable anywhere.

A row whose results JSON exists is skipped (``--force`` reruns it); an interrupted row resumes
from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from restorekit import _atomic  # noqa: E402
from restorekit.device import cpu_description  # noqa: E402
from restorekit.config.schema import from_mapping, opt  # noqa: E402
from restorekit.errors import ConfigError, did_you_mean  # noqa: E402
from restorekit.progress import TaskProgress  # noqa: E402

STUDIES = ROOT / "configs" / "reproduce"
DEFAULT_OUT = ROOT / "runs" / "reproduce"
DOCS_JSON = ROOT / "docs" / "_data" / "reproduce.json"
DOCS_FIGURES = ROOT / "docs" / "_static" / "reproduce"

#: Long side of every prepared photo: keeps a 2-core evaluation of the slowest backbone in minutes.
PREPARED_SIDE = 320
#: Every TEST_EVERY-th clean photo (sorted by name) is held out for testing.
TEST_EVERY = 10
#: Every GALLERY_EVERY-th real rainy photo is held out for the gallery.
GALLERY_EVERY = 6

#: The data each row trains and is scored on, before its own overrides: prepared folders, or demo names.
DATA_DEFAULTS = {
    "prepared": {
        "data.rainy": "{data}/rain/rainy",
        "data.clean": "{data}/rain/clean",
        "data.paired": "{data}/rain/paired",
        "eval.data": "{data}/rain/test",
    },
    "demo": {
        "data.rainy": "demo:rain/rainy",
        "data.clean": "demo:rain/clean",
        "data.paired": "demo:rain/paired",
        "eval.data": "demo:rain/test",
    },
}
#: Real rainy training photos: the prepared split, or (demo) the demo's synthetic rain.
REAL_RAIN = {"prepared": "{data}/real_rain/train", "demo": "demo:rain/rainy"}
GALLERY = {"prepared": "{data}/real_rain/held_out", "demo": None}

KINDS = ("table", "figure5", "gallery")


class StudyError(ValueError):
    """A study file is malformed; the message names the file and key."""


# --------------------------------------------------------------------------- study files
# The schema of a study file, in the config schema's own terms (restorekit.config.schema):
# unknown keys fail with a did-you-mean, values are type-checked, the docs read the `doc`s.
@dataclass
class Row:
    """One row of a table: a training run of its own, or the run of another row (``same_as``)."""

    name: str = opt("", "Name of the row, unique in its study; its results are results/<study>/<name>.json.")
    label: str = opt("", "What the docs' table calls the row (default: its name).")
    config: str | None = opt(None, "The shipped config the run trains, relative to the repository.")
    set: dict[str, Any] = opt({}, "Dotted overrides of the run (key: value), after the data the runner sets.")
    budget_minutes: float | None = opt(None, "Minutes the run may take on 2 CPU cores (required for a run).", min=0)
    same_as: str | None = opt(None, "Another row's run, as <study>/<row>, instead of a run of its own.")
    real_rain: bool = opt(False, "Train on the real rainy photos instead of the synthetic rain sources.")
    paper: str | None = opt(None, "The paper's figure for the row, as the docs show it beside the measured one.")
    study: str = field(default="", init=False)

    @property
    def key(self) -> str:
        return f"{self.study}/{self.name}"

    @property
    def overrides(self) -> dict[str, Any]:
        return self.set


@dataclass
class Study:
    """A table (or figure) of the paper: its rows, its CPU budget and what the docs say of it."""

    title: str = opt("", "The table's title in the docs (default: the study's name).")
    paper: str | None = opt(None, "Where in the paper the table is.")
    kind: Literal["table", "figure5", "gallery"] = opt("table", "What the study renders: a table, Figure 5, or a gallery.")
    budget_minutes: float = opt(0.0, "Minutes the whole study may take on 2 CPU cores (at most 60).", min=0)
    note: str = opt("", "What was measured and where it differs from the paper (shown under the table).")
    baselines_from: str | None = opt(None, "A row (<study>/<row>) whose input and filter scores head the table.")
    rows: list[Row] = opt([], "The rows.")
    figure: dict[str, Any] = opt({}, "Settings of a figure study.")
    name: str = field(default="", init=False)
    path: Path = field(default=Path(), init=False)


def _parse(cls: type, data: Any, where: str) -> Any:
    try:
        return from_mapping(cls, data)
    except ConfigError as exc:
        raise StudyError(f"{where}: {exc}") from None


def load_study(path: Path) -> Study:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StudyError(f"{path}: cannot read it as YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping at the top, got {type(raw).__name__}")
    study = _parse(Study, raw, str(path))
    study.name, study.path = path.stem, path
    study.title = study.title or study.name
    study.note = study.note.strip()
    for i, row in enumerate(study.rows):
        where = f"{path}: rows[{i}]"
        if not row.name:
            raise StudyError(f"{where}: expected a mapping with a 'name'")
        row.study = study.name
        row.label = row.label or row.name
        if (row.config is None) == (row.same_as is None):
            raise StudyError(f"{where}: give exactly one of 'config' (a run of its own) or 'same_as' (another row's run)")
        if row.config is not None and not (ROOT / row.config).is_file():
            raise StudyError(f"{where}: key 'config': {row.config} does not exist")
        if row.budget_minutes is None:
            if row.same_as is None:
                raise StudyError(f"{where}: key 'budget_minutes' is required for a run of its own (minutes on 2 CPU cores)")
            row.budget_minutes = 0.0
    if not study.rows:
        raise StudyError(f"{path}: no rows")
    own = sum(r.budget_minutes for r in study.rows)
    if study.budget_minutes < own:
        raise StudyError(f"{path}: budget_minutes {study.budget_minutes:g} is less than its rows' own budgets ({own:g})")
    if study.budget_minutes > 60:
        raise StudyError(
            f"{path}: budget_minutes {study.budget_minutes:g}: one table must run in at most an hour on 2 cores"
        )
    return study


def load_studies(folder: Path = STUDIES) -> dict[str, Study]:
    loaded = [load_study(p) for p in sorted(folder.glob("*.yaml"))]
    # Tables first, then the figure, then the gallery: the order of the docs page.
    studies = {s.name: s for s in sorted(loaded, key=lambda s: (KINDS.index(s.kind), s.name))}
    rows = {r.key: r for s in studies.values() for r in s.rows}
    for row in rows.values():
        if row.same_as and (row.same_as not in rows or rows[row.same_as].same_as):
            known = sorted(k for k, r in rows.items() if not r.same_as)
            raise StudyError(
                f"{studies[row.study].path}: row {row.name!r}: same_as {row.same_as!r} is not a row with a run of "
                f"its own.{did_you_mean(row.same_as, known)}"
            )
    total = sum(r.budget_minutes for r in rows.values())
    if total > 240:
        raise StudyError(f"the studies' budgets add up to {total:g} minutes; the whole study must fit in 4 hours")
    return studies


def select(studies: dict[str, Study], names: list[str]) -> list[Study]:
    if not names:
        return list(studies.values())
    missing = [n for n in names if n not in studies]
    if missing:
        raise StudyError(f"unknown study {missing[0]!r}.{did_you_mean(missing[0], sorted(studies))} Known: {', '.join(studies)}")
    return [studies[n] for n in names]


# --------------------------------------------------------------------------- data
def prepare(source: Path, out: Path, side: int = PREPARED_SIDE) -> dict[str, Any]:
    """Split ``source/clean`` (and ``source/real_rain_train``) and render rain; returns the manifest."""
    from restorekit.data.demo import TASKS
    from restorekit.data.io import (
        downscale_long_side,
        list_images,
        read_image,
        write_image,
    )
    from restorekit.registries import SYNTHESIZERS

    clean_dir = source / "clean"
    if not clean_dir.is_dir():
        raise SystemExit(f"{clean_dir}: no such folder (expected clean photos under <source>/clean)")
    photos = sorted(list_images(clean_dir))
    if len(photos) < 3 * TEST_EVERY:
        raise SystemExit(f"{clean_dir}: {len(photos)} photos; need at least {3 * TEST_EVERY}")
    data = out / "data"
    rain = TASKS["rain"]
    train_synth = SYNTHESIZERS.build(dict(rain.train.synthesizer))
    test_synth = SYNTHESIZERS.build(dict(rain.tests["test"].synthesizer))
    test = [p for i, p in enumerate(photos) if i % TEST_EVERY == TEST_EVERY // 2]
    rest = [p for p in photos if p not in test]
    sources, backgrounds = rest[0::2], rest[1::2]
    for i, path in enumerate(sources):
        clean = downscale_long_side(read_image(path), side)
        rainy = train_synth(clean, np.random.default_rng([rain.train.seed, i]))
        write_image(data / "rain" / "rainy" / f"{path.stem}.png", rainy)
        write_image(data / "rain" / "paired" / "rain" / f"{path.stem}.png", rainy)
        write_image(data / "rain" / "paired" / "gt" / f"{path.stem}.png", clean)
    for path in backgrounds:
        write_image(data / "rain" / "clean" / f"{path.stem}.png", downscale_long_side(read_image(path), side))
    for i, path in enumerate(test):
        clean = downscale_long_side(read_image(path), side)
        rainy = test_synth(clean, np.random.default_rng([rain.tests["test"].seed, i]))
        write_image(data / "rain" / "test" / "rain" / f"{path.stem}.png", rainy)
        write_image(data / "rain" / "test" / "gt" / f"{path.stem}.png", clean)
    manifest: dict[str, Any] = {
        "source": str(source),
        "long_side": side,
        "rain_sources": [p.name for p in sources],
        "backgrounds": [p.name for p in backgrounds],
        "test": [p.name for p in test],
        "synthesizer": {"train": dict(rain.train.synthesizer), "test": dict(rain.tests["test"].synthesizer)},
    }
    real_dir = source / "real_rain_train"
    real = sorted(list_images(real_dir)) if real_dir.is_dir() else []
    if real:
        held_out = real[GALLERY_EVERY // 2 :: GALLERY_EVERY]
        for path in real:
            group = "held_out" if path in held_out else "train"
            write_image(data / "real_rain" / group / f"{path.stem}.png", downscale_long_side(read_image(path), side))
        manifest["real_rain"] = {"train": [p.name for p in real if p not in held_out], "held_out": [p.name for p in held_out]}
    (data / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------- running
def _data_mode(args: argparse.Namespace) -> str:
    return "demo" if args.demo else "prepared"


def _fill(value: Any, data: Path) -> Any:
    return value.replace("{data}", str(data)) if isinstance(value, str) else value


def row_overrides(row: Row, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """Every override of a row's run: the data, the runner's settings, then the row's own."""
    mode = _data_mode(args)
    data = Path(args.out) / "data"
    values: dict[str, Any] = dict(DATA_DEFAULTS[mode])
    if row.real_rain:
        values["data.rainy"] = REAL_RAIN[mode]
    values["runtime.threads"] = threads
    values.update(row.overrides)
    if args.smoke:
        # A few iterations and one evaluation pair: checks the plumbing, not the method.
        values.update({"train.iters": 4, "train.checkpoint_every": 2, "train.log_every": 2, "eval.max_images": 1})
        values.pop("train.sample_every", None)
    return {k: _fill(v, data) for k, v in values.items()}


def _yaml_value(value: Any) -> str:
    return value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def override_args(overrides: dict[str, Any]) -> list[str]:
    """``key=value`` command-line overrides, values in flow YAML (what ``restorekit train`` parses)."""
    return [f"{k}={_yaml_value(v)}" for k, v in overrides.items()]


def run_dir(out: Path, row: Row) -> Path:
    return out / "runs" / row.study / row.name


def result_path(out: Path, row: Row) -> Path:
    return out / "results" / row.study / f"{row.name}.json"


def train_command(row: Row, args: argparse.Namespace, overrides: dict[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", "restorekit", "train", row.config, "--work-dir", str(run_dir(Path(args.out), row))]
    cmd += override_args(overrides)
    return cmd


def _write_json(path: Path, payload: Any, sort_keys: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(path, json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n")


def run_row(row: Row, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    out = Path(args.out)
    done = result_path(out, row)
    if done.is_file() and not args.force:
        return json.loads(done.read_text(encoding="utf-8"))
    work = run_dir(out, row)
    overrides = row_overrides(row, args, threads)
    cmd = train_command(row, args, overrides)
    if (work / "checkpoints" / "latest").is_file() and not args.force:
        cmd.append("--resume")
    shown = " ".join(shlex.quote(str(c)) for c in cmd[1:]).replace(str(ROOT) + "/", "")
    print(f"[{row.key}] python {shown}", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(work / "runner.log", "a", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CI": "true"})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"[{row.key}] training failed (exit {proc.returncode}); see {work / 'runner.log'}")
    config = yaml.safe_load((work / "config.yaml").read_text(encoding="utf-8"))
    result = {
        "row": row.key,
        "label": row.label,
        "config": row.config,
        "overrides": {k: v for k, v in overrides.items() if k != "runtime.threads"},
        "command": " ".join(["restorekit", "train", row.config, *override_args(row.overrides)]),
        "data": _data_mode(args),
        "smoke": bool(args.smoke),
        "threads": threads,
        "jobs": max(1, args.jobs),
        "iters": config["train"]["iters"],
        "batch": [config["data"]["batch_size"], config["data"]["crop_size"]],
        "wall_s": round(wall, 1),  # of this invocation only: a resumed row's earlier part is not counted
        "resumed": "--resume" in cmd,
        "budget_minutes": row.budget_minutes,
        "eval": json.loads((work / "eval.json").read_text(encoding="utf-8")),
    }
    # A budget is minutes on the whole machine; with N rows at once each gets 1/N of it.
    if wall > row.budget_minutes * 60 * max(1, args.jobs) and not args.smoke:
        print(f"[{row.key}] over budget: {wall / 60:.1f} min with {args.jobs} job(s) at once, budget {row.budget_minutes:g}", flush=True)
    _write_json(done, result)
    print(f"[{row.key}] done in {wall / 60:.1f} min", flush=True)
    return result


def run(studies: list[Study], all_studies: dict[str, Study], args: argparse.Namespace) -> int:
    rows = {r.key: r for s in all_studies.values() for r in s.rows}
    wanted: dict[str, Row] = {}
    for study in studies:
        for row in study.rows:
            target = rows[row.same_as] if row.same_as else row
            wanted[target.key] = target
    jobs = max(1, args.jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    failures = []

    def one(row: Row) -> None:
        try:
            run_row(row, args, threads)
        except RuntimeError as exc:
            failures.append(str(exc))
            print(exc, flush=True)
        progress.advance()

    # In the order the studies were named: the first finish first. A bar (rows done, time left)
    # on a terminal, a line per finished row elsewhere; the rows' own lines print above it.
    with TaskProgress(Console(markup=False, highlight=False), "reproduce", len(wanted), unit="rows", every=1) as progress:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, wanted.values()))
    for study in studies:
        if study.kind == "figure5":
            figure5(study, rows, args)
        elif study.kind == "gallery":
            gallery(study, rows, args)
    return 1 if failures else 0


# --------------------------------------------------------------------------- figures
def _load_checkpoint_models(run: Path):
    from restorekit.model_file import load_model

    for folder in sorted((run / "checkpoints").glob("iter_*")):
        if (folder / "state.json").is_file():
            yield int(folder.name.removeprefix("iter_")), load_model(folder, with_detail_block=True)


def figure5(study: Study, rows: dict[str, Row], args: argparse.Namespace) -> Path | None:
    """The paper's Figure 5: the residuals R and g(R) of one test photo at several iterations of one run."""
    import torch

    from restorekit.data.demo import resolve_demo
    from restorekit.data.io import read_image
    from restorekit.engine.visualize import save_grid
    from restorekit.inference import to_tensor
    from restorekit.models.contract import run_backbone

    source = rows[study.rows[0].same_as or study.rows[0].key]
    run = run_dir(Path(args.out), source)
    test = resolve_demo("demo:rain/test")  # a demo photo, so the figure may be published
    name = study.figure.get("image", "chelsea_1.png")
    rainy = read_image(test / "rain" / name)
    clean = read_image(test / "gt" / name)
    y, x, size = *study.figure.get("crop_origin", (60, 120)), int(study.figure.get("crop", 160))
    rainy_t = to_tensor(rainy[y : y + size, x : x + size])
    clean_t = to_tensor(clean[y : y + size, x : x + size])
    true_rain = rainy_t - clean_t
    # The photo's own detail: what a 5×5 box blur takes away from it.
    detail = (clean_t - torch.nn.functional.avg_pool2d(clean_t, 5, stride=1, padding=2, count_include_pad=False)).mean(1)
    shown = set(study.figure.get("iterations", [])) or None
    snapshots: dict[int, tuple] = {}
    stats = []
    with torch.no_grad():
        for iteration, model in _load_checkpoint_models(run):
            residual = run_backbone(model.backbone, rainy_t).residual
            enhanced = model.detail_block(residual) if model.detail_block is not None else residual
            # Signed residuals are drawn as 0.5 + 2·value: mid-grey is zero, rain is bright.
            snapshots[iteration] = (rainy_t, 0.5 + 2 * true_rain, 0.5 + 2 * residual, 0.5 + 2 * enhanced)
            # What the residual holds besides rain: a brightness offset, and image detail (the
            # correlation of its error with the photo's own detail: 0 when no detail leaks in).
            error = (residual - true_rain).mean(1)
            centred = error - error.mean()
            corr = float((centred * (detail - detail.mean())).sum() / (centred.norm() * (detail - detail.mean()).norm() + 1e-12))
            stats.append(
                {
                    "iteration": iteration,
                    "offset_255": round(float(error.mean()) * 255, 2),
                    "error_std_255": round(float(centred.std()) * 255, 2),
                    "detail_correlation": round(corr, 3),
                }
            )
    picked = [snapshots[i] for i in sorted(snapshots) if shown is None or i in shown] or list(snapshots.values())
    images = {name: torch.cat(column) for name, column in zip(("rainy", "true rain", "R", "g(R)"), zip(*picked))}
    path = Path(args.out) / "figures" / f"{study.name}.png"
    save_grid(path, images, rows=len(images["R"]), min_side=size)
    _write_json(Path(args.out) / "results" / study.name / "figure.json", {"source": source.key, "image": name, "snapshots": stats})
    print(f"[{study.name}] wrote {path}", flush=True)
    return path


def gallery(study: Study, rows: dict[str, Row], args: argparse.Namespace) -> None:
    """Restore held-out real rainy photos (kept out of the repository) and the demo's rainy test photos."""
    from restorekit.data.demo import resolve_demo
    from restorekit.data.io import list_images, read_image, write_image
    from restorekit.inference import Restorer
    from restorekit.model_file import load_model

    source = rows[study.rows[0].same_as or study.rows[0].key]
    run = run_dir(Path(args.out), source)
    if not (run / "model.safetensors").is_file():
        print(f"[{study.name}] no model in {run}; run {source.key} first", flush=True)
        return
    restorer = Restorer(load_model(run).backbone)
    out = Path(args.out) / "figures" / study.name
    held_out = GALLERY[_data_mode(args)]
    folders = {"demo": resolve_demo("demo:rain/test") / "rain"}
    if held_out:
        folders["real"] = Path(_fill(held_out, Path(args.out) / "data"))
    for group, folder in folders.items():
        for path in sorted(list_images(folder)):
            rainy = read_image(path)
            restored = restorer(rainy)
            write_image(out / group / f"{path.stem}.png", np.concatenate([rainy, restored], axis=1))
    print(f"[{study.name}] wrote before|after pairs into {out}", flush=True)


# --------------------------------------------------------------------------- rendering
def _entries(evaluation: dict[str, Any], *roles: str) -> list[dict[str, Any]]:
    """The rows of an ``eval.json`` that play ``roles`` (``input``, ``baseline``, ``network``), in order."""
    return [{"method": label, **scores} for label, scores in evaluation.items() if scores.get("role") in roles]


def _method_entry(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The trained network's row of an ``eval.json``."""
    (network,) = _entries(evaluation, "network")
    return network


def collapse_guard_verdict(run: Path) -> bool | None:
    """Whether the run's collapse guard reported a collapse (a ``COLLAPSE @`` line in its ``train.log``).

    ``None`` when the run left no log (a row of another machine's results folder). Runs of
    methods without a distillation residual (sv) never report one.
    """
    log = run / "train.log"
    if not log.is_file():
        return None
    return any("COLLAPSE @" in line for line in log.read_text(encoding="utf-8", errors="replace").splitlines())


def _publish_picture(source: Path, target: Path) -> str:
    """Copy a picture for the docs as a JPEG (residual textures make PNGs of ~0.7 MB); returns its name."""
    from restorekit.data.io import read_image, write_image

    write_image(target, read_image(source), jpeg_quality=88)
    return target.name


def render(all_studies: dict[str, Study], args: argparse.Namespace) -> dict[str, Any]:
    """Collect every finished row into ``docs/_data/reproduce.json``; copy figures beside the docs."""
    import torch

    out = Path(args.out)
    figures = Path(args.json).parent / "reproduce" if args.json else DOCS_FIGURES
    rows = {r.key: r for s in all_studies.values() for r in s.rows}
    cpu = cpu_description()
    payload: dict[str, Any] = {
        "environment": {
            "cpu": cpu["model"],
            "cpu_flags": cpu["flags"],
            "cores": cpu["cores"],
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "studies": {},
    }
    for study in all_studies.values():
        entries = []
        if study.baselines_from:
            base = result_path(out, rows[study.baselines_from])
            if base.is_file():
                for entry in _entries(json.loads(base.read_text(encoding="utf-8"))["eval"], "input", "baseline"):
                    entries.append({"label": entry["method"], "metrics": entry, "baseline": True})
        for row in study.rows:
            source = rows[row.same_as] if row.same_as else row
            path = result_path(out, source)
            result = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            entry = {"label": row.label, "paper": row.paper, "run": source.key}
            if result is not None:
                entry.update(
                    metrics=_method_entry(result["eval"]),
                    wall_s=result["wall_s"],
                    iters=result["iters"],
                    batch=result["batch"],
                    command=result["command"],
                    smoke=result["smoke"],
                    data=result["data"],
                    jobs=result.get("jobs", 1),
                    resumed=result.get("resumed", False),
                    collapsed=collapse_guard_verdict(run_dir(out, source)),
                )
            entries.append(entry)
        info: dict[str, Any] = {
            "title": study.title,
            "kind": study.kind,
            "paper": study.paper,
            "budget_minutes": study.budget_minutes,
            "note": study.note,
            "command": f"python tools/reproduce.py run {study.name}",
            "rows": entries,
        }
        figure = out / "figures" / f"{study.name}.png"
        if study.kind == "figure5" and figure.is_file():
            info["figure"] = _publish_picture(figure, figures / f"{study.name}.jpg")
            stats = out / "results" / study.name / "figure.json"
            if stats.is_file():
                info["snapshots"] = json.loads(stats.read_text(encoding="utf-8"))["snapshots"]
        demo_pairs = sorted((out / "figures" / study.name / "demo").glob("*.png"))
        if study.kind == "gallery" and demo_pairs:
            info["figure"] = _publish_picture(demo_pairs[0], figures / f"{study.name}.jpg")
        payload["studies"][study.name] = info
    target = Path(args.json) if args.json else DOCS_JSON
    _write_json(target, payload, sort_keys=False)  # the studies in page order
    print(f"wrote {target}", flush=True)
    return payload


def print_tables(payload: dict[str, Any]) -> None:
    for name, study in payload["studies"].items():
        print(f"\n{study['title']}  ({name}, budget {study['budget_minutes']:g} min)")
        for entry in study["rows"]:
            metrics = entry.get("metrics")
            if metrics is None:
                print(f"  {entry['label']:<40} not run")
                continue
            extra = f"  {entry['wall_s'] / 60:5.1f} min" if "wall_s" in entry else ""
            print(f"  {entry['label']:<40} {metrics['psnr_y']:6.2f} dB  {metrics['ssim_y']:.4f}{extra}")


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="split and render the study's photos")
    p.add_argument("--source", type=Path, required=True, help="folder with clean/ (and real_rain_train/)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--side", type=int, default=PREPARED_SIDE, help="long side of the prepared photos")
    p = sub.add_parser("list", help="studies, rows and budgets")
    p = sub.add_parser("run", help="train and score the rows of some studies (all by default)")
    p.add_argument("studies", nargs="*")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--jobs", type=int, default=1, help="rows trained at once (threads are split between them)")
    p.add_argument("--demo", action="store_true", help="the built-in demo data instead of prepared photos")
    p.add_argument("--smoke", action="store_true", help="4 iterations and one test pair per row (plumbing only)")
    p.add_argument("--force", action="store_true", help="rerun rows that have results")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    p = sub.add_parser("render", help="write docs/_data/reproduce.json and copy the figures")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--json", default=None, help="write here instead of docs/_data/reproduce.json")
    args = parser.parse_args(argv)

    try:
        studies = load_studies()
        if args.command == "prepare":
            manifest = prepare(args.source, Path(args.out), args.side)
            counts = {k: len(v) for k, v in manifest.items() if isinstance(v, list)}
            counts.update({f"real_rain.{k}": len(v) for k, v in manifest.get("real_rain", {}).items()})
            print(f"prepared {Path(args.out) / 'data'} (long side {manifest['long_side']} px): {counts}")
            return 0
        if args.command == "list":
            for study in studies.values():
                print(f"{study.name}: {study.title} (budget {study.budget_minutes:g} min)")
                for row in study.rows:
                    what = f"same run as {row.same_as}" if row.same_as else f"{row.config} {row.overrides or ''}"
                    print(f"  {row.name:<12} {row.budget_minutes:5.1f} min  {what}")
            print(f"total: {sum(r.budget_minutes for s in studies.values() for r in s.rows):g} min")
            return 0
        if args.command == "run":
            chosen = select(studies, args.studies)
            if not args.demo and not (Path(args.out) / "data" / "manifest.json").is_file():
                raise SystemExit(f"no prepared data in {Path(args.out) / 'data'}: run `prepare --source ...` first, or pass --demo")
            if args.dry_run:
                threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
                for study in chosen:
                    for row in study.rows:
                        if not row.same_as:
                            cmd = train_command(row, args, row_overrides(row, args, threads))
                            print(" ".join(shlex.quote(c) for c in cmd[1:]))
                return 0
            return run(chosen, studies, args)
        payload = render(studies, args)
        print_tables(payload)
        return 0
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
