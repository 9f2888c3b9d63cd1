#!/usr/bin/env python
"""Write a trained checkpoint into the package as a built-in model (restorekit/pretrained/).

Only the backbone's weights go in (the weight average when the run kept one), in fp32, with
what the model file records of its run plus where its training data came from and the command
that trained it; no image, no optimiser state. The name must be one of
``restorekit.pretrained.SHIPPED``; its model card is in docs/models.md.

    python tools/ship_model.py runs/benchmark_cpu_minutes/run/checkpoints/iter_00040000 \\
        --name real-rain --trained-on "..." --command "..."
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from restorekit.model_file import load_model, save_model  # noqa: E402
from restorekit.pretrained import SHIPPED, model_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="model file, checkpoint folder or run folder")
    parser.add_argument("--name", required=True, choices=sorted(SHIPPED))
    parser.add_argument("--trained-on", required=True, help="the training data and its provenance, one line")
    parser.add_argument("--command", required=True, help="the command that trained it")
    args = parser.parse_args(argv)

    loaded = load_model(args.checkpoint)  # a checkpoint loads as its weight average
    net = loaded.backbone.float()
    info = {**loaded.info, "builtin_name": args.name, "trained_on": args.trained_on, "command": args.command}
    path = save_model(model_file(args.name), {"backbone": net}, {"backbone": loaded.spec}, info)
    count = sum(p.numel() for p in net.parameters())
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {count:,} parameters, from {loaded.path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
