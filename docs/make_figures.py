#!/usr/bin/env python
"""Make the docs' before/after pictures from a trained run.

Restores the held-out demo pairs (``demo:rain/test``: scikit-image's bundled sample photos
with rain rendered by restorekit) with the run's network and writes, for each pair, one PNG
with four panels side by side: the rainy input, the median filter that made the soft labels,
the trained network's output, and the clean original, each labelled with its PSNR-Y. The
panels are an unscaled crop of the photo, because thin rain streaks vanish when an image is
shrunk. It also copies the run's last sample grid (its first rows) for the training page and
its ``curves.png`` for the quick start, takes a screenshot of the results report
``restorekit test --report`` writes for the run (in headless Chromium, where one is installed),
and writes ``provenance.json``: the run's settings and scores, from which the docs write the
pictures' captions (``docs/_ext/restorekit_docs``), so a caption cannot describe another run.

    python docs/make_figures.py runs/dt_hagg_cpu                # writes docs/_static/figures/
    python docs/make_figures.py /tmp/run --out /tmp/figures --crop 200 --all

Every picture is restorekit's own rendering of the demo photos; none is a third-party image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # run from a checkout

from restorekit.data.demo import resolve_demo  # noqa: E402
from restorekit.data.io import read_image, write_image  # noqa: E402
from restorekit.data.pairs import PairedSet  # noqa: E402
from restorekit.inference import Restorer  # noqa: E402
from restorekit.metrics import psnr, y_channel  # noqa: E402
from restorekit.model_file import load_model  # noqa: E402
from restorekit.registries import FILTERS  # noqa: E402

HEADER = 40  # pixels of white above each panel for its two label lines
MAX_BYTES = 300_000  # the docs keep each picture small


def labelled(image: np.ndarray, title: str, detail: str = "") -> np.ndarray:
    """``image`` with a title and a detail line written in a white band above it."""
    band = np.full((HEADER, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.46, (0, 0, 0), 1, cv2.LINE_AA)
    if detail:
        cv2.putText(band, detail, (6, 33), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (70, 70, 70), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def centre_crop(image: np.ndarray, size: int, offset: tuple[int, int] | None = None) -> np.ndarray:
    """A ``size``×``size`` window (the centre unless ``offset`` gives its top-left corner)."""
    h, w = image.shape[:2]
    size = min(size, h, w)
    top, left = offset if offset is not None else ((h - size) // 2, (w - size) // 2)
    return image[top : top + size, left : left + size]


def busiest_window(rainy: np.ndarray, clean: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the window where the rain changed the photo most (so it shows)."""
    diff = np.abs(rainy.astype(np.float32) - clean.astype(np.float32)).mean(axis=2)
    h, w = diff.shape
    size = min(size, h, w)
    integral = cv2.integral(diff)
    best, corner = -1.0, (0, 0)
    step = max(8, size // 8)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            total = (
                integral[top + size, left + size] - integral[top, left + size]
                - integral[top + size, left] + integral[top, left]
            )
            if total > best:
                best, corner = total, (top, left)
    return corner


def soft_label_filter(run: Path):
    """The run's own soft-label filter (from its resolved ``config.yaml``), or the paper's median."""
    spec = {"type": "median", "kernel_size": 31}
    config = run / "config.yaml"
    if config.is_file():
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        spec = (data.get("dt") or {}).get("soft_label") or spec
    return FILTERS.build(spec), spec


def before_after(run: Path, out: Path, crop: int, data: str = "demo:rain/test", every_render: bool = False) -> list[Path]:
    """One four-panel PNG per test pair (by default only the first rendering of each photo)."""
    loaded = load_model(run)
    restorer = Restorer(loaded.backbone)
    label_filter, spec = soft_label_filter(run)
    pairs = PairedSet(resolve_demo(data) if data.startswith("demo:") else Path(data))
    written = []
    for name, rainy, clean in pairs.pairs:
        if not every_render and not Path(name).stem.endswith("_1"):
            continue
        filtered = label_filter(rainy)
        restored = restorer(rainy)
        corner = busiest_window(rainy, clean, crop)
        panels = []
        for title, image in (
            ("rainy input", rainy),
            (f"soft label ({spec['type']})", filtered),
            (f"restorekit ({loaded.spec.get('type', 'network')})", restored),
            ("clean original", clean),
        ):
            score = "" if image is clean else f"PSNR-Y {psnr(y_channel(image), y_channel(clean)):.2f} dB"
            panels.append(labelled(centre_crop(image, crop, corner), title, score))
        gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        figure = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
        path = out / f"before_after_{Path(name).stem}.png"
        write_image(path, figure)
        written.append(path)
    return written


def sample_grid(run: Path, out: Path, rows: int = 2) -> Path | None:
    """The run's last sample grid, cut to its label band and first ``rows`` rows."""
    grids = sorted((run / "samples").glob("iter_*.png"))
    if not grids:
        return None
    grid = read_image(grids[-1])
    header = 22  # restorekit.engine.visualize writes a 22-pixel label band
    columns = 6 if grid.shape[1] % 6 == 0 else 4
    row_height = grid.shape[1] // columns  # square crops
    kept = grid[: header + rows * row_height]
    path = out / "sample_grid.png"
    write_image(path, kept)
    return path


def curves_picture(run: Path, out: Path) -> Path | None:
    """The run's ``curves.png``, drawn afresh from its ``metrics.jsonl`` (as ``restorekit curves`` does)."""
    from restorekit.engine.metrics_log import CURVES_FILE, METRICS_FILE, plot_curves

    target = out / "curves.png"
    if (run / METRICS_FILE).is_file():
        return plot_curves(run / METRICS_FILE, target)
    if (run / CURVES_FILE).is_file():
        target.write_bytes((run / CURVES_FILE).read_bytes())
        return target
    return None


def report_screenshot(
    run: Path, out: Path, data: str, width: int = 1100, height: int = 1180, scale: float = 0.7
) -> dict | None:
    """Write the run's results report on ``data`` to a temporary folder and photograph its top.

    The same page ``restorekit test --checkpoint RUN --data DATA --report DIR`` writes. The
    screenshot is ``width``×``height`` CSS pixels of headless Chromium, shrunk by ``scale``.
    """
    import tempfile

    from restorekit._browser import find_browser, screenshot
    from restorekit.evaluation import evaluate
    from restorekit.report import TestReport, model_facts, run_baselines

    if find_browser() is None:
        print("no headless Chromium (apt-get install chromium): no screenshot of the report")
        return None
    loaded = load_model(run)
    restorer = Restorer(loaded.backbone)
    pairs = PairedSet(resolve_demo(data) if data.startswith("demo:") else Path(data))
    with tempfile.TemporaryDirectory() as folder:
        facts = [*model_facts(loaded, "cpu, fp32"), ("data", f"{data}: {len(pairs)} pairs")]
        facts = [(k, v) for k, v in facts if k != "command"]  # the page's own command line would name this script
        facts[0] = ("model", f"{run.name}/{loaded.path.name}")  # not this machine's folders
        report = TestReport(folder, pairs.pairs, title=f"{loaded.spec.get('type', 'model')} on {data}", facts=facts)
        result = evaluate(pairs, restorer, f"{loaded.spec.get('type', 'network')} ({loaded.path.name})",
                          on_image=report.on_image)
        page, _ = report.finish(result, run_baselines(loaded.path))
        shot = screenshot(page, Path(folder) / "shot.png", width=width, height=height)
        picture = read_image(shot)
    small = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    path = out / "report.jpg"  # photos on a page: a PNG would be several times the docs' size budget
    write_image(path, small, jpeg_quality=90)
    return {"file": path.name, "data": data, "width": width, "height": height, "scale": scale}


def provenance(run: Path, data: str, figures: list[Path], grid: Path | None) -> dict:
    """What made the pictures: the run's settings, its iteration and its held-out scores."""
    loaded = load_model(run)
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) if (run / "config.yaml").is_file() else {}
    config = config or {}
    eval_json = run / "eval.json"
    grids = sorted((run / "samples").glob("iter_*.png"))
    return {
        "made_by": "docs/make_figures.py",
        "method": loaded.info.get("method", config.get("method")),
        "task": loaded.info.get("task", config.get("task")),
        "config": loaded.info.get("config"),
        "iteration": loaded.info.get("iteration"),
        "backbone": loaded.spec,
        "soft_label": (config.get("dt") or {}).get("soft_label"),
        "weights": (config.get("dt") or {}).get("weights"),
        "data": {k: (config.get("data") or {}).get(k) for k in ("rainy", "clean", "crop_size", "batch_size")},
        "train": {k: (config.get("train") or {}).get(k) for k in ("iters", "lr", "optimizer")},
        "precision": (config.get("runtime") or {}).get("precision"),
        "eval_data": data,
        "eval": json.loads(eval_json.read_text(encoding="utf-8")) if eval_json.is_file() else None,
        "before_after": [p.name for p in figures],
        "sample_grid": None if grid is None else {"file": grid.name, "iteration": int(grids[-1].stem.split("_")[1])},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained run folder (holding model.safetensors)")
    parser.add_argument("--out", type=Path, default=DOCS / "_static" / "figures", help="where to write the PNGs")
    parser.add_argument("--crop", type=int, default=184, help="side of the unscaled crop shown per panel")
    parser.add_argument("--data", default="demo:rain/test", help="paired data to restore (default: the demo test pairs)")
    parser.add_argument("--grid-rows", type=int, default=2, help="rows of the sample grid to keep")
    parser.add_argument("--all", action="store_true", help="every test pair, not only the first rendering of each photo")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stale = [*args.out.glob("before_after_*.png"), *(args.out / n for n in ("sample_grid.png", "curves.png", "report.jpg"))]
    for old in stale:
        old.unlink(missing_ok=True)  # pictures of an earlier run must not outlive its provenance
    figures = before_after(args.run, args.out, args.crop, args.data, every_render=args.all)
    grid = sample_grid(args.run, args.out, args.grid_rows)
    curves = curves_picture(args.run, args.out)
    report = report_screenshot(args.run, args.out, args.data)
    record = provenance(args.run, args.data, figures, grid)
    config = yaml.safe_load((args.run / "config.yaml").read_text(encoding="utf-8")) if (args.run / "config.yaml").is_file() else {}
    every = ((config or {}).get("eval") or {}).get("every")
    record["curves"] = None if curves is None else {"file": curves.name, "eval_every": every}
    record["report"] = report
    (args.out / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    written = [*figures, *([grid] if grid is not None else []), *([curves] if curves is not None else [])]
    written += [args.out / report["file"]] if report is not None else []
    for path in written:
        size = path.stat().st_size
        flag = "  (over the docs' size budget: use a smaller --crop or fewer --grid-rows)" if size > MAX_BYTES else ""
        print(f"{path}  {size / 1000:.0f} kB{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
