#!/usr/bin/env python
"""Size and CPU speed of every registered backbone: the paper's Table IV in relative form.

For each backbone (default: all of ``restorekit.BACKBONES.names()``, plugins included) this
prints its parameters under its published counting convention and as plain trainable
parameters, the multiply-accumulates of one ``size×size`` RGB image (counted with forward
hooks on Conv2d/Linear, so weight sharing across stages is counted once per use), and the CPU
time of one forward pass: the median of ``--repeats`` runs after a warm-up, in fp32 under
``torch.inference_mode()``. Absolute times depend on the machine, so each time is also given
as a ratio to ``hagg`` measured in the same run, the number comparable with the paper.

    python tools/benchmark_backbones.py                       # 512×512, 5 repeats
    python tools/benchmark_backbones.py --size 256 --repeats 3 --backbones hagg,ddn --json out.json

Not a test: JORDER-E at 512² takes tens of seconds per run on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import restorekit  # noqa: E402
from restorekit.device import cpu_description  # noqa: E402
from restorekit.models.contract import count_parameters, run_backbone  # noqa: E402

REFERENCE = "hagg"
# The paper's Table IV, CPU seconds for a 512×512 image, divided by its own network's 1.45 s.
# Its RESCAN has 54,735 parameters: the ConvRNN variant, rescan_rnn.
PAPER_CPU_SECONDS = {
    "hagg": 1.45, "ddn": 1.56, "prenet": 24.66, "jordere": 55.21,
    "rescan_rnn": 4.62, "didmdn": 5.73, "spanet": 8.53, "umrl": 15.50,
}


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass over Conv2d and Linear layers.

    A convolution costs ``output elements × in_channels / groups × kh × kw``; a linear layer
    ``output elements × in_features``. Other operations (activations, the guided filter of
    DDN, elementwise gates) are not counted.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.inference_mode():
            run_backbone(model, x)
    finally:
        for h in handles:
            h.remove()
    return total


def time_forward(model: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of ``repeats`` timed forward passes, after ``warmup`` untimed ones."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            run_backbone(model, x)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times.append(elapsed)
    return times


def measure(name: str, size: int, repeats: int, warmup: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = restorekit.BACKBONES.build(name).eval()
    convention = getattr(model, "param_convention", "trainable")
    x = torch.rand(1, 3, size, size)
    macs = count_macs(model, x)  # also serves as a first warm-up pass
    times = time_forward(model, x, repeats, warmup)
    return {
        "name": name,
        "convention": convention,
        "params_published": count_parameters(model, convention),
        "params_trainable": count_parameters(model, "trainable"),
        "macs": macs,
        "seconds_median": statistics.median(times),
        "seconds_all": times,
    }


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def print_table(rows: list[dict[str, Any]], size: int, repeats: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Backbones on one {size}×{size} RGB image (CPU, fp32, median of {repeats})")
    for header, justify in [
        ("backbone", "left"),
        ("params", "right"),
        ("counted as", "left"),
        ("trainable", "right"),
        ("MACs", "right"),
        ("CPU s", "right"),
        (f"×{REFERENCE}", "right"),
        ("paper ×", "right"),
    ]:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        paper = PAPER_CPU_SECONDS.get(row["name"])
        table.add_row(
            row["name"] + (" (ref.)" if row["name"] == REFERENCE else ""),
            f"{row['params_published']:,}",
            row["convention"],
            f"{row['params_trainable']:,}",
            _human(row["macs"]),
            f"{row['seconds_median']:.3f}",
            f"{row['ratio_to_reference']:.2f}",
            f"{paper / PAPER_CPU_SECONDS[REFERENCE]:.2f}" if paper else "",
        )
    console = Console()
    if not console.is_terminal:  # piped to a file: do not squeeze the table into 80 columns
        console = Console(width=120)
    console.print(table)
    console.print(
        "Paper, Table IV (CPU, 512×512): "
        + ", ".join(
            f"{name} {sec:.2f} s ({sec / PAPER_CPU_SECONDS[REFERENCE]:.2f}×)"
            for name, sec in PAPER_CPU_SECONDS.items()
        )
        + ". Compare ratios, not seconds. MACs count Conv2d/Linear only (not DDN's guided filter)."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512, as in the paper)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per backbone; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (after the MAC-count pass)")
    parser.add_argument("--backbones", type=str, default="", help="comma-separated names (default: all registered)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.size < 8 or args.repeats < 1 or args.warmup < 0:
        raise SystemExit("--size must be >= 8, --repeats >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    known = restorekit.BACKBONES.names()
    names = [n.strip() for n in args.backbones.split(",") if n.strip()] or known
    unknown = [n for n in names if n not in restorekit.BACKBONES]
    if unknown:
        raise SystemExit(f"unknown backbone(s): {', '.join(unknown)}. Known: {', '.join(known)}")
    # The reference is always measured in the same run, even when not asked for.
    order = [REFERENCE] + [n for n in names if n != REFERENCE]

    rows = []
    for name in order:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, args.size, args.repeats, args.warmup))
    reference_seconds = rows[0]["seconds_median"]
    for row in rows:
        row["ratio_to_reference"] = row["seconds_median"] / reference_seconds
    print_table(rows, args.size, args.repeats)

    if args.json:
        report = {
            "size": args.size,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "reference": REFERENCE,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.platform(),
            "processor": cpu_description()["model"],
            "paper_cpu_seconds": PAPER_CPU_SECONDS,
            "results": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
