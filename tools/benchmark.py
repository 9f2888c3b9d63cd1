#!/usr/bin/env python
"""How much faster restorekit's optimized modes are than the fp32 reference, on this machine.

Prints one table and, with ``--json PATH``, writes the numbers:

* **inference**, per backbone: one 512×512 photo in fp32 eager (contiguous NCHW, the
  reference) and in the optimized mode (channels-last + bf16 autocast where the CPU has native
  bf16 + ``torch.compile`` with frozen weights), their ratio, and the Y-PSNR difference of the
  two modes on the demo test pairs (``demo:rain/test``);
* **train_step**: one distillation step (the real ``Distillation`` method of
  ``configs/dt_hagg.yaml``, batch 8 of 128×128, forward + backward + Adam) in fp32 eager vs
  channels-last + bf16 autocast;
* **soft_label_ms**: the median soft label (k = 31) of one 512×512 RGB photo (a thread per
  channel), with **soft_label_plain_ms** and **soft_label_speedup** for one plain 3-channel
  OpenCV call timed alternately with it;
* **tiled_restore**: the peak resident memory of a tiled restoration of a 4000×3000 photo
  (the high-water mark of a child process's own address space, so this process's memory does
  not count: see ``PEAK_RSS_SOURCE``), and the largest
  difference between tiled and whole-image fp32 restoration of an image small enough for both.

The two modes of each comparison are timed alternately (A, B, A, B, ...) and summarised by
their medians, so that a slow spell of a shared machine hits both alike. Ratios, not absolute
times, are what carries over between machines.

The networks are the published configurations, briefly fitted (``--fit-seconds``) on the demo
training pairs so that they actually change the image (an untrained network's near-zero
residual would make any PSNR comparison meaningless); ``--checkpoint NAME=PATH`` uses a
trained model file instead.

    python tools/benchmark.py                         # everything, all built-in backbones
    python tools/benchmark.py --backbones hagg --json bench.json
    python tools/benchmark.py --quick                 # small sizes: a smoke test of the tool
    python tools/benchmark.py --only tiled_restore    # one part (comma-separate several)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from restorekit.config import load_config  # noqa: E402
from restorekit.data.batches import PairedBatches  # noqa: E402
from restorekit.data.demo import resolve_folder  # noqa: E402
from restorekit.data.pairs import PairedSet  # noqa: E402
from restorekit.device import bf16_is_fast, cpu_description, fast_precision, to_device_batch  # noqa: E402
from restorekit.engine.step import OptimisationStep, make_optimizer  # noqa: E402
from restorekit.inference import Restorer, to_tensor  # noqa: E402
from restorekit.methods.sv import Supervised  # noqa: E402
from restorekit.metrics import psnr, y_channel  # noqa: E402
from restorekit.registries import BACKBONES, FILTERS, LOSSES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BACKBONES = ("hagg", "ddn", "prenet", "prn", "prenet_r", "prn_r", "jordere")
PARTS = ("inference", "train_step", "soft_label", "tiled_restore")
PART_ALIASES = {"train": "train_step", "tiled": "tiled_restore"}


# --------------------------------------------------------------------------- helpers
def alternate(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, interleaved (A B A B ...), after ``warmup`` untimed calls each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def optimized_options(device: torch.device) -> dict[str, Any]:
    """The fastest mode found on the reference CPU (see the module notes); bf16 only where native."""
    return {
        "precision": fast_precision(device),
        "channels_last": True,
        "compile": True,
    }


def demo_pairs(name: str) -> PairedSet:
    return PairedSet(resolve_folder(name))


def square_photo(pairs: list[tuple[str, np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    """A real photo (the first test pair's rainy image) resized to size×size."""
    import cv2

    return cv2.resize(pairs[0][1], (size, size), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- networks
SMALL = {  # --quick: small versions of the big networks
    "ddn": {"num_units": 3},
    "prenet": {"stages": 2},
    "prn": {"stages": 2},
    "prenet_r": {"stages": 2},
    "prn_r": {"stages": 2},
    "jordere": {"channels": 16, "num_blocks": 2},
}


def fitted_backbone(name: str, args: argparse.Namespace, train_pairs: PairedSet, device: torch.device) -> torch.nn.Module:
    """The backbone, trained for a few seconds on demo pairs (or loaded from ``--checkpoint``).

    The fit is supervised L1 training through the engine's own optimisation step, in the fast mode.
    """
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    if name in checkpoints:
        from restorekit.model_file import load_model

        return load_model(checkpoints[name], device).backbone
    torch.manual_seed(0)
    backbone = BACKBONES.build({"type": name, **(SMALL.get(name, {}) if args.quick else {})})
    method = Supervised(backbone, LOSSES.build("l1")).to(device).to(memory_format=torch.channels_last)
    crop, batch_size = (32, 2) if args.quick else (64, 4)
    batches = PairedBatches(train_pairs, crop_size=crop, batch_size=batch_size, flip=True, seed=0)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    step = OptimisationStep(
        method.training_step, method.parameters(), optimizer, device=device, precision=fast_precision(device),
        channels_last=True,
    )
    method.train()
    deadline = time.perf_counter() + args.fit_seconds
    t = 0
    while time.perf_counter() < deadline and t < args.fit_iters:
        t += 1
        step(batches[t], t)
    return backbone.eval().to(memory_format=torch.contiguous_format)


def resized_pairs(pairs: list, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The pairs resized alike to size×size: one image shape, so the compiled network compiles once."""
    import cv2

    def fit(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    return [(name, fit(x), fit(y)) for name, x, y in pairs]


def mean_psnr_y(restorer: Restorer, pairs: list) -> float:
    return float(np.mean([psnr(y_channel(restorer(x)), y_channel(y)) for _, x, y in pairs]))


def bench_inference(name: str, args: argparse.Namespace, pairs: dict, device: torch.device) -> dict[str, Any]:
    fit_started = time.perf_counter()
    backbone = fitted_backbone(name, args, pairs["train"], device)
    fit_s = time.perf_counter() - fit_started
    reference = Restorer(copy.deepcopy(backbone), device)
    options = optimized_options(device)
    optimized = Restorer(copy.deepcopy(backbone), device, **options)
    photo = to_tensor(square_photo(pairs["test"].pairs, args.size), device)

    started = time.perf_counter()
    optimized.restore_tensor(photo)  # compiles for this shape
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    reference.restore_tensor(photo)
    slow = time.perf_counter() - started > 5.0  # JORDER-E, PReNet: fewer, still alternating, runs
    times = alternate(
        {"eager": lambda: reference.restore_tensor(photo), "optimized": lambda: optimized.restore_tensor(photo)},
        min(args.repeats, 3) if slow else args.repeats,
        warmup=1 if slow else 2,
    )
    eager_s, optimized_s = median(times["eager"]), median(times["optimized"])
    max_abs = float((reference.restore_tensor(photo) - optimized.restore_tensor(photo)).abs().max())
    # Held-out pairs, resized to the timing size (the compiled graph's shape).
    test_pairs = resized_pairs(pairs["test"].pairs, args.size)
    psnr_eager = mean_psnr_y(reference, test_pairs)
    psnr_optimized = mean_psnr_y(optimized, test_pairs)
    return {
        "eager_fp32_s": eager_s,
        "optimized_s": optimized_s,
        "speedup": eager_s / optimized_s,
        "psnr_delta_db": psnr_optimized - psnr_eager,
        "psnr_y_eager_db": psnr_eager,
        "psnr_y_optimized_db": psnr_optimized,
        "psnr_y_input_db": float(np.mean([psnr(y_channel(x), y_channel(y)) for _, x, y in test_pairs])),
        "max_abs_diff_512": max_abs,
        "mode": options,
        "compile_s": compile_s,
        "fit_s": fit_s,
        "times_s": times,
    }


# --------------------------------------------------------------------------- training
def bench_train_step(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from restorekit.methods import build_method

    config = load_config(ROOT / "configs" / "dt_hagg.yaml", [], check_data_folders=False).config
    batch_size, crop = (2, 64) if args.quick else (8, 128)
    generator = torch.Generator().manual_seed(0)
    batch = {
        k: torch.randint(0, 256, (batch_size, 3, crop, crop), dtype=torch.uint8, generator=generator)
        for k in ("degraded", "soft_label", "clean")
    }
    precision = fast_precision(device)

    def stepper(channels_last: bool, precision: str) -> Callable[[], None]:
        """The trainer's own optimisation step on this batch, in one mode."""
        torch.manual_seed(0)
        method = build_method(config).to(device)
        if channels_last:
            method = method.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(method, config.train)
        step = OptimisationStep(
            method.training_step, method.parameters(), optimizer, device=device, precision=precision,
            channels_last=channels_last,
        )
        t = [0]

        def timed() -> None:
            t[0] += 1
            step(batch, t[0])
            if device.type == "cuda":
                torch.cuda.synchronize()

        return timed

    eager, optimized = stepper(False, "fp32"), stepper(True, precision)
    times = alternate({"eager": eager, "optimized": optimized}, args.repeats, warmup=2)
    eager_s, optimized_s = median(times["eager"]), median(times["optimized"])
    result = {
        "eager_fp32_s": eager_s,
        "optimized_s": optimized_s,
        "speedup": eager_s / optimized_s,
        "mode": {"precision": precision, "channels_last": True, "compile": False},
        "batch": [batch_size, 3, crop, crop],
        "times_s": times,
    }
    if args.profile:
        result["profile"] = {"eager_fp32": where_time_goes(eager), "optimized": where_time_goes(optimized)}
        result["flop_floor"] = flop_floor(config, batch, device, precision, eager_s, optimized_s)
    return result


def where_time_goes(step: Callable[[], None]) -> dict[str, Any]:
    """One profiled step, its CPU time split into convolutions (forward, backward) and everything else."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    groups: dict[str, float] = {"conv_forward_ms": 0.0, "conv_backward_ms": 0.0, "other_ms": 0.0}
    ops: dict[str, float] = {}
    for event in prof.key_averages():
        ms = event.self_cpu_time_total / 1000.0
        if event.key in ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution_overrideable"):
            groups["conv_forward_ms"] += ms
        elif event.key == "aten::convolution_backward":
            groups["conv_backward_ms"] += ms
        else:
            groups["other_ms"] += ms
        ops[event.key] = ops.get(event.key, 0.0) + ms
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:12]
    return {**groups, "top_ops_ms": dict(top)}


def flop_floor(config: Any, batch: dict, device: torch.device, precision: str, eager_s: float, optimized_s: float) -> dict[str, Any]:
    """Multiply-accumulates of one step against this machine's measured matrix-multiply peak.

    A training step costs about three times its forward convolutions (forward, gradient of the
    input, gradient of the weights). The peak is a large square matmul, the best case for the
    same oneDNN/MKL kernels; the floor is the step's time if every convolution ran at that peak
    and nothing else cost anything.
    """
    from restorekit.methods import build_method

    method = build_method(config).to(device)
    macs = 0

    def count(module: torch.nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(count) for m in method.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        method.training_step(to_device_batch(batch, device), 1)
    for handle in handles:
        handle.remove()
    step_macs = 3 * macs

    def peak(dtype: torch.dtype) -> float:
        a = torch.randn(2048, 2048, device=device, dtype=dtype)
        b = torch.randn(2048, 2048, device=device, dtype=dtype)
        times = alternate({"mm": lambda: torch.mm(a, b)}, 5, warmup=2)
        return 2048**3 / min(times["mm"]) / 1e9

    fp32_peak, fast_peak = peak(torch.float32), peak(torch.bfloat16 if precision == "bf16" else torch.float32)
    floor_fp32, floor_fast = step_macs / 1e9 / fp32_peak, step_macs / 1e9 / fast_peak
    return {
        "step_gmac": step_macs / 1e9,
        "matmul_peak_gmac_s": {"fp32": fp32_peak, precision: fast_peak},
        "floor_s": {"fp32": floor_fp32, precision: floor_fast},
        "fraction_of_peak": {"eager_fp32": floor_fp32 / eager_s, "optimized": floor_fast / optimized_s},
        "best_possible_speedup": eager_s / floor_fast,
    }


# --------------------------------------------------------------------------- soft labels, tiles
def bench_soft_label(args: argparse.Namespace, pairs: dict) -> dict[str, float]:
    """restorekit's median soft label against one plain 3-channel OpenCV call, timed alternately."""
    import cv2

    median_filter = FILTERS.build({"type": "median", "kernel_size": 31})
    photo = square_photo(pairs["test"].pairs, args.size)
    times = alternate(
        {"plain": lambda: cv2.medianBlur(photo, 31), "median": lambda: median_filter(photo)}, max(7, args.repeats)
    )
    plain_ms, ms = median(times["plain"]) * 1000.0, median(times["median"]) * 1000.0
    return {"soft_label_ms": ms, "soft_label_plain_ms": plain_ms, "soft_label_speedup": plain_ms / ms}


# The child's peak RSS is read from /proc/self/status (VmHWM), not from getrusage's ru_maxrss:
# Linux copies the parent's high-water mark into a child's ru_maxrss when it execs, so the child
# of a benchmark process that has fitted and compiled seven networks reported that process's
# peak (2817 MiB) instead of its own. VmHWM belongs to the child's fresh address space.
# Elsewhere (no /proc) ru_maxrss is the fallback: KiB on Linux, bytes on macOS.
PEAK_RSS_SOURCE = textwrap.dedent(
    """
    import resource, sys
    def peak_rss_mib():
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    """
)
TILED_CHILD = PEAK_RSS_SOURCE + textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, torch
    sys.path.insert(0, sys.argv[1])
    from restorekit.inference import Restorer
    from restorekit.device import fast_precision
    from restorekit.registries import BACKBONES
    height, width, tile = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    network = BACKBONES.build({"type": "hagg"})
    precision = fast_precision("cpu")
    restorer = Restorer(network, precision=precision, channels_last=True, tile=tile)
    restorer.margin  # measure the receptive field before the clock starts
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    image = ((rows + cols) % 256).astype(np.uint8).repeat(3, axis=2)
    before = peak_rss_mib()
    started = time.perf_counter()
    out = restorer(image)
    elapsed = time.perf_counter() - started
    peak = peak_rss_mib()
    print(json.dumps({"peak_rss_mib": peak, "rss_before_mib": before, "seconds": elapsed,
                      "precision": precision, "shape": list(out.shape), "margin": restorer.margin}))
    """
)


def bench_tiled(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    height, width = (750, 1000) if args.quick else (3000, 4000)
    result = subprocess.run(
        [sys.executable, "-c", TILED_CHILD, str(ROOT), str(height), str(width), str(args.tile)],
        capture_output=True,
        text=True,
        check=True,
    )
    child = json.loads(result.stdout.strip().splitlines()[-1])
    # Exactness: tiled vs whole-image fp32 on a smaller image (a fitted-like hagg: scaled weights).
    torch.manual_seed(0)
    network = BACKBONES.build({"type": "hagg"})
    with torch.no_grad():
        for p in network.parameters():
            p.mul_(2.5)
    generator = torch.Generator().manual_seed(0)
    size = (1, 3, 384, 512) if args.quick else (1, 3, 768, 1024)
    x = torch.rand(size, generator=generator)
    whole = Restorer(network, device).restore_tensor(x)
    tiled = Restorer(network, device, tile=args.tile // 2).restore_tensor(x)
    return {
        **child,
        "image": [height, width],
        "tile": args.tile,
        "max_abs_diff": float((whole - tiled).abs().max()),
        "exactness_image": list(size[2:]),
    }


# --------------------------------------------------------------------------- report
def print_table(report: dict[str, Any]) -> None:
    rows = [("measurement", "fp32 eager", "optimized", "ratio", "note")]
    for name, r in report.get("inference", {}).items():
        mode = "+".join(k for k, v in (("cl", r["mode"]["channels_last"]), (r["mode"]["precision"], True), ("compile", r["mode"]["compile"])) if v)
        rows.append(
            (
                f"{name} {report['sizes']['inference']}² inference",
                f"{r['eager_fp32_s'] * 1000:.0f} ms",
                f"{r['optimized_s'] * 1000:.0f} ms",
                f"{r['speedup']:.2f}×",
                f"{mode}; ΔPSNR-Y {r['psnr_delta_db']:+.3f} dB",
            )
        )
    t = report.get("train_step", {})
    if t:
        rows.append(
            (
                f"DT train step {t['batch'][0]}×{t['batch'][2]}²",
                f"{t['eager_fp32_s'] * 1000:.0f} ms",
                f"{t['optimized_s'] * 1000:.0f} ms",
                f"{t['speedup']:.2f}×",
                f"cl+{t['mode']['precision']}",
            )
        )
    if "flop_floor" in t:
        f, prof = t["flop_floor"], t["profile"]["optimized"]
        conv = prof["conv_forward_ms"] + prof["conv_backward_ms"]
        rows.append(
            (
                "  train step FLOP floor",
                f"{f['floor_s']['fp32'] * 1000:.0f} ms",
                f"{f['floor_s'][t['mode']['precision']] * 1000:.0f} ms",
                f"{f['best_possible_speedup']:.2f}×",
                f"{f['step_gmac']:.1f} GMAC; optimized step: conv {conv:.0f} ms, rest {prof['other_ms']:.0f} ms",
            )
        )
    if "soft_label_ms" in report:
        rows.append(
            (
                f"soft label median k=31, {report['sizes']['inference']}² RGB",
                f"{report['soft_label_plain_ms']:.1f} ms",
                f"{report['soft_label_ms']:.1f} ms",
                f"{report['soft_label_speedup']:.2f}×",
                "one OpenCV call vs a thread per channel",
            )
        )
    tr = report.get("tiled_restore")
    if tr:
        rows.append(
            (
                f"tiled restore {tr['image'][1]}×{tr['image'][0]} (tile {tr['tile']})",
                "",
                f"{tr['seconds']:.1f} s",
                "",
                f"peak RSS {tr['peak_rss_mib']:.0f} MiB; tiled vs whole max |Δ| {tr['max_abs_diff']:.1e}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    env = report["environment"]
    print(
        f"\n{env['cpu']}, {env['threads']} threads, torch {env['torch']}, native bf16: {env['bf16_native']}; "
        f"load average {env['load_before']} → {env['load_after']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES), help="comma-separated backbone names")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each mode (alternating)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="small sizes and networks: checks the tool, not the speed")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--tile", type=int, default=512, help="tile side of the tiled restore")
    parser.add_argument("--fit-seconds", type=float, default=20.0, help="fit each network this long on demo pairs")
    parser.add_argument("--fit-iters", type=int, default=200, help="...or this many steps, whichever comes first")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH", help="use a trained model")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the train step and compare it with the FLOP floor"
    )
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all; 'tiled' and 'train' for short)",
    )
    args = parser.parse_args(argv)
    parts = [PART_ALIASES.get(p.strip(), p.strip()) for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        parser.error(f"--only: unknown part(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PARTS)}")
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.fit_seconds = min(args.fit_seconds, 2.0)
        args.tile = min(args.tile, 256)
        if args.backbones == ",".join(DEFAULT_BACKBONES):
            args.backbones = "hagg"
    args.size = 128 if args.quick else 512
    device = torch.device(args.device)
    names = [n.strip() for n in args.backbones.split(",") if n.strip()]

    report: dict[str, Any] = {
        "environment": {
            "cpu": cpu_description()["model"],
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "bf16_native": bf16_is_fast(device),
            "device": str(device),
            "load_before": load_average(),
        },
        "sizes": {"inference": args.size},
        "quick": args.quick,
    }
    if "inference" in parts or "soft_label" in parts:
        pairs = {"test": demo_pairs("demo:rain/test"), "train": demo_pairs("demo:rain/paired")}
    if "inference" in parts:
        report["inference"] = {}
        for name in names:
            print(f"inference: {name} ...", file=sys.stderr, flush=True)
            report["inference"][name] = bench_inference(name, args, pairs, device)
    if "train_step" in parts:
        print("train step ...", file=sys.stderr, flush=True)
        report["train_step"] = bench_train_step(args, device)
    if "soft_label" in parts:
        print("soft labels ...", file=sys.stderr, flush=True)
        report.update(bench_soft_label(args, pairs))
    if "tiled_restore" in parts:
        print("tiled restore ...", file=sys.stderr, flush=True)
        report["tiled_restore"] = bench_tiled(args, device)
    report["environment"]["load_after"] = load_average()
    print_table(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
