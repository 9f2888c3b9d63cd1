"""Fail unless the trained network beats the degraded input and the soft-label filter on
both PSNR-Y and SSIM-Y (the main job's promise; the table it printed is in eval.json, whose
rows say their role: input, baseline or network)."""

import json
import sys

rows = json.load(open(sys.argv[1], encoding="utf-8"))
(network,) = [v for v in rows.values() if v.get("role") == "network"]
failures = [
    f"{label} {metric}: network {network[metric]:.4f} <= {scores[metric]:.4f}"
    for label, scores in rows.items()
    if scores is not network
    for metric in ("psnr_y", "ssim_y")
    if network[metric] <= scores[metric]
]
for label, scores in rows.items():
    print(f"{label:32s} PSNR-Y {scores['psnr_y']:.2f}  SSIM-Y {scores['ssim_y']:.4f}")
if failures:
    sys.exit("main job did not beat its baselines: " + "; ".join(failures))
print("main job beats the rainy input and the filter on PSNR-Y and SSIM-Y")
