"""tools/benchmark.py measures what it says (no timing here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("_test_benchmark_tool", ROOT / "tools" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_child_peak_rss_is_its_own_not_the_parents() -> None:
    # On Linux a child's getrusage ru_maxrss starts at its parent's high-water mark, so a tiled
    # restore run from a benchmark that had fitted seven networks reported 2817 MiB that were the
    # parent's. The child must report the peak of its own address space.
    benchmark = load_benchmark()
    child = benchmark.PEAK_RSS_SOURCE + "print(peak_rss_mib())\n"
    parent = textwrap.dedent(
        f"""
        import subprocess, sys
        import numpy as np
        held = np.ones(512 * 2**20 // 8)  # 512 MiB, touched
        print(subprocess.run([sys.executable, "-c", {child!r}], capture_output=True, text=True, check=True).stdout)
        """
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout
    assert float(out.split()[-1]) < 256  # a bare interpreter: tens of MiB, far below the parent's 512


def test_only_runs_the_parts_asked_for(monkeypatch, capsys) -> None:
    benchmark = load_benchmark()
    called = []
    fake = {"peak_rss_mib": 1.0, "seconds": 1.0, "image": [3, 4], "tile": 2, "max_abs_diff": 0.0}
    monkeypatch.setattr(benchmark, "bench_tiled", lambda args, device: called.append("tiled") or fake)
    for name in ("bench_inference", "bench_train_step", "bench_soft_label", "demo_pairs"):
        monkeypatch.setattr(benchmark, name, lambda *a, name=name, **k: pytest.fail(f"{name} should not run"))
    assert benchmark.main(["--only", "tiled_restore"]) == 0
    assert benchmark.main(["--only", "tiled"]) == 0
    assert called == ["tiled", "tiled"]
    assert "peak RSS 1 MiB" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        benchmark.main(["--only", "tiles"])
