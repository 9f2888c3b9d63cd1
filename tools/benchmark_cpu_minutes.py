#!/usr/bin/env python
"""Quality per CPU-minute: train the CPU preset on real rainy photos, score held-out synthetic pairs.

One ``restorekit train`` run (the preset with ``train.iters`` large enough never to end first)
writes a checkpoint every ``--checkpoint-every`` iterations and is stopped with SIGTERM at the
last mark (it then writes a final checkpoint). For each mark (10, 20, 40 and 60 minutes by
default) the newest checkpoint written by then is scored on the paired test folder: the weight
average (the model a run saves), PSNR-Y / SSIM-Y against the rainy input's, and the brightness
bias (mean of restored minus mean of truth, grey levels 0-255). Minutes are wall-clock minutes
from the start of the training command, data loading and soft labels included: run it on a
quiet machine, since other jobs on the same cores stretch every minute.

Real rain in training, synthetic rain in the score: the cross-domain claim of the paper. The
default folders are the reproduction study's (``python tools/reproduce.py prepare --source
/photos``): its real rainy training photos, its clean backgrounds and its held-out test
pairs, none of which may have been used to choose the preset's settings.

    python tools/benchmark_cpu_minutes.py                       # 60 minutes: on a quiet machine
    python tools/benchmark_cpu_minutes.py --minutes 2,5         # a shorter real run
    python tools/benchmark_cpu_minutes.py --quick               # seconds, on generated images

To choose among the marks' checkpoints without looking at the test pairs (the shipped real-rain
model was chosen so), score validation pairs beside them: ``--val FOLDER --val-every N`` scores
every Nth pair (sorted by name) of a paired folder that no training photo comes from, for
example ``--val runs/reproduce/data/rain/paired --val-every 4``.

Prints a table with the CPU model and its flags; writes ``<out>/cpu_minutes.json`` and, when
matplotlib is installed, ``<out>/cpu_minutes.png`` (PSNR-Y gain over the input against minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from restorekit import _atomic  # noqa: E402
from restorekit.device import CPU_FLAGS, cpu_description  # noqa: E402

STUDY = ROOT / "runs" / "reproduce" / "data"
DEFAULTS = {
    "rainy": STUDY / "real_rain" / "train",
    "clean": STUDY / "rain" / "clean",
    "test": STUDY / "rain" / "test",
}
def make_quick_data(root: Path) -> dict[str, Path]:
    """Generated photos: rainy and clean training folders and a paired test folder (seconds to train on)."""
    from restorekit.testing import make_paired_folder, make_unpaired_folders

    rainy, clean = make_unpaired_folders(root, n_rainy=4, n_clean=4, size=80)
    return {"rainy": rainy, "clean": clean, "test": make_paired_folder(root / "test", n=2, size=64)}


def train(args: argparse.Namespace, data: dict[str, Path], work: Path, marks: list[float]) -> dict[int, float]:
    """Run the training until the last mark; returns {checkpoint iteration: minutes since start}."""
    cmd = [
        sys.executable, "-m", "restorekit", "train", args.config, "--work-dir", str(work),
        f"data.rainy={data['rainy']}", f"data.clean={data['clean']}", "eval.data=null",
        f"train.iters={args.max_iters}", f"train.checkpoint_every={args.checkpoint_every}",
        "train.keep_checkpoints=100000", "train.sample_every=0", f"runtime.threads={args.threads}",
        *args.set,
    ]
    print("$ " + " ".join(cmd[1:]), flush=True)
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(work / "benchmark_train.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CI": "true"})
        deadline = start + marks[-1] * 60
        latest = work / "checkpoints" / "latest"
        # Until the last mark, and in any case until the first checkpoint (the trainer handles
        # SIGTERM only once it is training: a signal during start-up would just kill it).
        while proc.poll() is None and (time.time() < deadline or not latest.is_file()):
            time.sleep(min(1.0, max(0.05, deadline - time.time())))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the trainer finishes its iteration and writes a checkpoint
        if proc.wait() not in (0, 143):  # 143: stopped by our SIGTERM, checkpoint written
            raise SystemExit(f"training failed (exit {proc.returncode}); see {work / 'benchmark_train.log'}")
    times = {}
    for folder in sorted((work / "checkpoints").glob("iter_*")):
        if (folder / "state.json").is_file():
            times[int(folder.name.removeprefix("iter_"))] = ((folder / "state.json").stat().st_mtime - start) / 60
    if not times:
        raise SystemExit(f"no checkpoint was written before the last mark; see {work / 'benchmark_train.log'}")
    return times


def score(restore, pairs) -> dict[str, float]:
    """Mean PSNR-Y, SSIM-Y and brightness bias over ``pairs`` ((name, degraded, clean) triples).

    ``bias_rain`` and ``bias_rain_free`` split the bias into what the rainy pixels and the
    rain-free pixels contribute (:func:`restorekit.metrics.brightness_split`): rain left in the
    output shows in the first, a shift the network adds everywhere in the second.
    """
    from restorekit.metrics import brightness_split, score_pair

    psnr, ssim, bias, split = [], [], [], []
    for _, degraded, clean in pairs:
        restored = restore(degraded)
        s = score_pair(restored, clean)
        psnr.append(s.psnr_y)
        ssim.append(s.ssim_y)
        bias.append(s.brightness)
        split.append(brightness_split(restored, degraded, clean))
    rain, rain_free = np.mean(split, axis=0)
    return {"psnr_y": float(np.mean(psnr)), "ssim_y": float(np.mean(ssim)), "bias": float(np.mean(bias)),
            "bias_rain": float(rain), "bias_rain_free": float(rain_free)}


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = results["marks"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot([r["minutes"] for r in rows], [r["psnr_y"] - results["input"]["psnr_y"] for r in rows], "o-")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"minutes of training ({results['cpu']['cores']} cores, {results['threads']} thread(s))")
    ax.set_ylabel("PSNR-Y gain over the input (dB)")
    ax.set_title(results["cpu"]["model"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/dt_hagg_cpu.yaml")
    parser.add_argument("--rainy", type=Path, default=DEFAULTS["rainy"], help="real rainy training photos")
    parser.add_argument("--clean", type=Path, default=DEFAULTS["clean"], help="clean background photos")
    parser.add_argument("--test", type=Path, default=DEFAULTS["test"], help="paired test folder (rain/ + gt/)")
    parser.add_argument("--val", type=Path, help="paired validation folder, scored beside --test (choose on it)")
    parser.add_argument("--val-every", type=int, default=1, metavar="N", help="score every Nth pair of --val")
    parser.add_argument("--minutes", default="10,20,40,60", help="comma-separated marks, in minutes")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-iters", type=int, default=1_000_000, help="train.iters of the run (never reached)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "benchmark_cpu_minutes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an extra config override")
    parser.add_argument("--quick", action="store_true", help="generated images and marks of seconds: a smoke test")
    args = parser.parse_args(argv)
    if args.val_every < 1:
        parser.error(f"--val-every must be at least 1, got {args.val_every}")
    if args.val is not None and not args.val.is_dir():
        parser.error(f"--val {args.val}: not a folder (expected a paired folder with rain/ and gt/)")

    import torch

    from restorekit.data.pairs import PairedSet
    from restorekit.device import fast_precision
    from restorekit.inference import Restorer
    from restorekit.model_file import load_model

    marks = sorted(float(m) for m in args.minutes.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            data = make_quick_data(Path(scratch))
            marks = [0.1, 0.2] if args.minutes == parser.get_default("minutes") else marks
            args.checkpoint_every = min(args.checkpoint_every, 2)
            args.set = ["data.crop_size=32", "data.batch_size=2", "backbone.channels=4", "backbone.num_blocks=2",
                        "dt.soft_label.kernel_size=5", *args.set]
        else:
            data = {"rainy": args.rainy, "clean": args.clean, "test": args.test}
            missing = [f"{k}: {v}" for k, v in data.items() if not Path(v).is_dir()]
            if missing:
                raise SystemExit("missing folder(s) " + "; ".join(missing)
                                 + " (python tools/reproduce.py prepare --source /photos makes the defaults)")
        work = args.out / "run"
        if work.exists():
            raise SystemExit(f"{work} exists: remove it or pass another --out")
        times = train(args, data, work, marks)
        pairs = PairedSet(data["test"]).pairs
        # --quick scores its generated test pairs as validation pairs too: the smoke test covers both.
        val_folder = data["test"] if args.quick else args.val
        val_pairs = PairedSet(val_folder).pairs[:: args.val_every] if val_folder is not None else None
        results: dict[str, Any] = {
            "cpu": cpu_description(),
            "threads": args.threads,
            "config": args.config,
            "overrides": args.set,
            "quick": args.quick,
            "input": score(lambda image: image, pairs),
            "marks": [],
        }
        if val_pairs is not None:
            results["val"] = {"folder": str(val_folder), "every": args.val_every,
                              "input": score(lambda image: image, val_pairs)}
        torch.set_num_threads(args.threads)
        for mark in marks:
            written = [(it, m) for it, m in times.items() if m <= mark + 1e-9] or [min(times.items(), key=lambda kv: kv[1])]
            iteration, minutes = max(written)
            # a checkpoint loads as its weight average: the model the run would have saved there
            model = load_model(work / "checkpoints" / f"iter_{iteration:08d}").backbone
            restore = Restorer(model, "cpu")
            row = {"mark_minutes": mark, "minutes": round(minutes, 3), "iteration": iteration, **score(restore, pairs)}
            if val_pairs is not None:
                row["val"] = score(restore, val_pairs)
            results["marks"].append(row)
    cpu = results["cpu"]
    results.update(torch=torch.__version__, precision=fast_precision("cpu"), last_iteration=max(times))
    print(f"\nCPU: {cpu['model']} ({cpu['cores']} cores; flags: {' '.join(cpu['flags']) or 'none of ' + ', '.join(CPU_FLAGS)}); "
          f"threads {args.threads}; torch {torch.__version__}; fast precision here {results['precision']}; "
          f"last iteration {max(times)}")
    base = results["input"]
    val = results.get("val")
    val_head = f" {'val PSNR-Y':>10} {'val gain':>8}" if val else ""
    # bias = rain + rain-free: the brightness error, and what the rainy and rain-free pixels add to it
    print(f"{'mark':>6} {'minutes':>8} {'iteration':>9} {'PSNR-Y':>7} {'gain':>6} {'SSIM-Y':>7} {'bias':>6} "
          f"{'rain':>6} {'free':>6}{val_head}")
    val_input = f" {val['input']['psnr_y']:10.2f} {'':>8}" if val else ""
    print(f"{'input':>6} {'':>8} {'':>9} {base['psnr_y']:7.2f} {'':>6} {base['ssim_y']:7.4f} {base['bias']:+6.2f} "
          f"{base['bias_rain']:+6.2f} {base['bias_rain_free']:+6.2f}{val_input}")
    for row in results["marks"]:
        val_cols = f" {row['val']['psnr_y']:10.2f} {row['val']['psnr_y'] - val['input']['psnr_y']:+8.2f}" if val else ""
        print(f"{row['mark_minutes']:6g} {row['minutes']:8.2f} {row['iteration']:9d} {row['psnr_y']:7.2f} "
              f"{row['psnr_y'] - base['psnr_y']:+6.2f} "
              f"{row['ssim_y']:7.4f} {row['bias']:+6.2f} {row['bias_rain']:+6.2f} {row['bias_rain_free']:+6.2f}{val_cols}")
    args.out.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(args.out / "cpu_minutes.json", json.dumps(results, indent=2) + "\n")
    drawn = plot(results, args.out / "cpu_minutes.png")
    print(f"wrote {args.out / 'cpu_minutes.json'}" + (f" and {args.out / 'cpu_minutes.png'}" if drawn else " (no matplotlib: no plot)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
