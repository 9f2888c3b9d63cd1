#!/usr/bin/env python
"""CPU time of SPANet's four-direction IRNN: restorekit's row scan against the direct loop.

Three implementations of the same function (:mod:`restorekit.models.irnn`), each timed for a
forward pass and for a forward plus backward pass on one N×C×H×W feature map in fp32:

* ``loop``: :func:`~restorekit.models.irnn.irnn_reference`, one step per pixel (the
  definition, as the authors' CUDA kernel states it);
* ``rows+autograd``: a loop over rows with whole-row tensor operations, differentiated by
  autograd (one graph node per row and step);
* ``rows`` (what SPANet uses): the same row loop writing in place, with a hand-written
  reverse scan for the gradients (:class:`~restorekit.models.irnn.RowScan`).

    python tools/benchmark_irnn.py                     # 1×32×64×64, the SAM at a 64² crop
    python tools/benchmark_irnn.py --size 32 --repeats 3 --threads 1

Medians of ``--repeats`` runs after one warm-up; on a shared machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from restorekit.models.irnn import irnn_reference, irnn_scan  # noqa: E402


def rows_autograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The row-loop scan without the custom backward: autograd records every row."""

    def down(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        rows = [torch.relu(t[:, :, 0])]
        for i in range(1, t.shape[2]):
            rows.append(torch.relu(w.view(1, -1, 1) * rows[-1] + b.view(1, -1, 1) + t[:, :, i]))
        return torch.stack(rows, dim=2)

    t = x.transpose(2, 3)
    return (
        down(x.flip(2), weight[0], bias[0]).flip(2),
        down(t, weight[1], bias[1]).transpose(2, 3),
        down(x, weight[2], bias[2]),
        down(t.flip(2), weight[3], bias[3]).flip(2).transpose(2, 3),
    )


def timed(fn, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, backward: bool, repeats: int) -> float:
    times = []
    for i in range(repeats + 1):
        xs, ws, bs = (t.detach().requires_grad_(backward) for t in (x, weight, bias))
        start = time.perf_counter()
        if backward:
            sum(o.sum() for o in fn(xs, ws, bs)).backward()
        else:
            with torch.no_grad():
                fn(xs, ws, bs)
        if i:  # the first run warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="height and width of the feature map (default 64)")
    parser.add_argument("--channels", type=int, default=32, help="channels (default 32, SPANet's)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-loop", action="store_true", help="leave out the per-pixel loop (slow at large sizes)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=g)
    weight, bias = torch.full((4, args.channels), 0.2), torch.randn(4, args.channels, generator=g) * 0.1
    for a, b in zip(irnn_scan(x, weight, bias), rows_autograd(x, weight, bias)):
        torch.testing.assert_close(a, b)
    impls = {"rows": irnn_scan, "rows+autograd": rows_autograd}
    if not args.skip_loop:
        impls["loop"] = irnn_reference
    print(f"IRNN on {args.batch}×{args.channels}×{args.size}×{args.size}, fp32, {torch.get_num_threads()} thread(s), "
          f"median of {args.repeats}")
    results = {}
    for name, fn in impls.items():
        results[name] = (timed(fn, x, weight, bias, False, args.repeats), timed(fn, x, weight, bias, True, args.repeats))
    fast = results["rows"]
    for name, (fwd, both) in results.items():
        print(f"  {name:<14} forward {fwd * 1e3:9.1f} ms ({fwd / fast[0]:7.1f}×)   "
              f"forward+backward {both * 1e3:9.1f} ms ({both / fast[1]:7.1f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
