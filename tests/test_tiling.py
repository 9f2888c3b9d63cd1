"""Tiled restoration: measured receptive fields, tile plans, tiled == whole-image, folder pipeline."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from restorekit.inference import Restorer, plan_axis, restore_files
from restorekit.receptive_field import NonLocalBackboneError, architecture_key, receptive_radius
from restorekit.registries import BACKBONES

# Small configurations of every built-in backbone (the published JORDER-E and PReNet are slow on a CPU).
SMALL = {
    "hagg": {},
    "ddn": {"num_units": 3},
    "prenet": {"stages": 2, "channels": 8},
    "prn": {"stages": 2, "channels": 8},
    "prenet_r": {"stages": 2, "channels": 8},
    "prn_r": {"stages": 2, "channels": 8},
    "jordere": {"channels": 8, "num_blocks": 2},
    "rescan": {"channels": 8, "stages": 2},
    "rescan_rnn": {"channels": 8, "stages": 2},
    "rescan_lstm": {"channels": 8, "stages": 2},
    "spanet": {"channels": 8},
}


def builtin_backbones() -> list[str]:
    return [n for n in BACKBONES.names() if BACKBONES.info(n).source == "builtin"]


def build(name: str, **overrides: object) -> nn.Module:
    torch.manual_seed(0)
    return BACKBONES.build({"type": name, **SMALL.get(name, {}), **overrides}).eval()


@pytest.mark.parametrize(
    ("spec", "radius"),
    [
        # hagg: stem 1 + 3 aggregation modules × (2 blocks × (1 + 3) + node 1) + 2 outer nodes + head 1
        ({"type": "hagg"}, 31),
        ({"type": "hagg", "num_blocks": 4}, 21),
        # ddn: guided filter (two box means of radius 15) + 2 + 2×units convolutions of radius 1
        ({"type": "ddn"}, 56),
        ({"type": "ddn", "num_units": 3}, 38),
        # PReNet: per stage conv_in + LSTM + 2 × 5 ResBlock convs + conv_out = 13; PRN has no LSTM
        ({"type": "prenet", "stages": 2, "channels": 8}, 26),
        ({"type": "prn_r", "stages": 2, "channels": 8}, 24),
    ],
)
def test_measured_radius_matches_the_architecture(spec: dict, radius: int) -> None:
    assert receptive_radius(BACKBONES.build(spec)) == radius


def test_radius_is_cached_per_architecture_and_ignores_weights() -> None:
    a, b = build("prenet"), build("prenet")
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(-3.0)  # trained weights differ; the field does not
    assert architecture_key(a) == architecture_key(b)
    assert receptive_radius(a) == receptive_radius(b)
    # A loop count that the module tree does not print still changes the key.
    assert architecture_key(build("prenet")) != architecture_key(build("prenet", stages=3))


class GlobalMean(nn.Module):
    """Subtracts the image mean: every output depends on every input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


def test_non_local_backbone_is_refused() -> None:
    with pytest.raises(NonLocalBackboneError, match="cannot be restored tile by tile"):
        receptive_radius(GlobalMean(), max_length=256)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 400), tile=st.integers(1, 120), margin=st.integers(0, 60))
def test_tile_plan_covers_once_with_margins(size: int, tile: int, margin: int) -> None:
    windows = plan_axis(size, tile, margin)
    assert windows[0].start == 0 and windows[-1].stop == size
    lengths = {w.read_stop - w.read_start for w in windows}
    assert len(lengths) == 1  # one window shape per image
    for before, after in itertools.pairwise(windows):
        assert before.stop == after.start
    for w in windows:
        assert 0 <= w.read_start <= w.start < w.stop <= w.read_stop <= size
        assert w.stop - w.start <= tile or len(windows) == 1  # one window is the whole axis anyway
        # Every kept pixel sees at least `margin` pixels of real image on each side (or the border).
        assert w.read_start == 0 or w.start - w.read_start >= margin
        assert w.read_stop == size or w.read_stop - w.stop >= margin


@pytest.mark.parametrize("name", builtin_backbones())
def test_tiled_equals_whole_image_fp32(name: str) -> None:
    network = build(name)
    if getattr(network, "not_tileable", None):  # a whole-row scan or a corner-fixed pooling grid
        x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1))
        with pytest.raises(NonLocalBackboneError, match="cannot be restored tile by tile"):
            Restorer(network, tile=48).restore_tensor(x)
        return
    if name == "hagg":  # its initial weights (N(0, 0.02)) barely touch the image: make them matter
        with torch.no_grad():
            for p in network.parameters():
                p.mul_(2.5)
    x = torch.rand(1, 3, 150, 203, generator=torch.Generator().manual_seed(1))
    whole = Restorer(network).restore_tensor(x)
    assert (whole - x).abs().mean() > 1e-3  # the network does change the image
    tiled = Restorer(network, tile=48)
    assert tiled.margin == receptive_radius(network)
    assert (tiled.restore_tensor(x) - whole).abs().max() < 1e-4

    image = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    rounded_whole, rounded_tiled = Restorer(network)(image), tiled(image)
    # Rounding to 8 bits can only turn a < 1e-4 difference into one grey level, and rarely.
    diff = np.abs(rounded_whole.astype(int) - rounded_tiled.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_tiles_read_only_windows_of_a_large_image() -> None:
    network = build("hagg", channels=4, num_blocks=2)
    restorer = Restorer(network, tile=256)
    margin = restorer.margin  # measured before the hook is in place (the probe copies the network)
    seen: list[tuple[int, ...]] = []
    network.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    image = np.random.default_rng(0).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    out = restorer(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    side = 256 + 2 * margin
    assert set(seen) == {(1, 3, side, side)}  # every window has one shape, none the whole image
    assert len(seen) == 3 * 4


PEAK_GROWTH_CHILD = """
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from restorekit.inference import Restorer
from restorekit.registries import BACKBONES

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))

torch.manual_seed(0)
restorer = Restorer(BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2}), tile=256)
restorer(np.zeros((300, 300, 3), np.uint8))  # one-time costs (radius probe, oneDNN set-up) before measuring
image = np.random.default_rng(0).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM, the peak resident memory, to the current RSS
out = restorer(image)
print(json.dumps({"growth_mib": status("VmHWM") - before, "shape": list(out.shape)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_tiled_restore_of_a_large_photo_holds_no_full_size_float_copy() -> None:
    # A 2000×3000 photo: its uint8 result is 17 MiB, one fp32 copy of it 69 MiB. Tile by tile
    # the peak grows by the result and one window's activations (about 25 MiB measured); a
    # whole-image float input or output would add at least 69 MiB. Run in a fresh interpreter
    # so that freed memory of other tests cannot hide growth.
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", PEAK_GROWTH_CHILD], capture_output=True, text=True, env=env)
    if result.returncode and "clear_refs" in result.stderr:
        pytest.skip("cannot reset the peak RSS here: " + result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [2000, 3000, 3]
    assert report["growth_mib"] < 2000 * 3000 * 3 * 4 / 2**20  # less than one fp32 copy of the photo


def test_margin_can_be_given_and_small_images_are_not_tiled() -> None:
    network = build("hagg", channels=4, num_blocks=2)
    restorer = Restorer(network, tile=64, margin=5)
    assert restorer.margin == 5
    x = torch.rand(1, 3, 40, 60)
    assert torch.equal(restorer.restore_tensor(x), Restorer(network).restore_tensor(x))
    with pytest.raises(ValueError):
        Restorer(network, tile=0)


class _Slow:
    """Records which thread did what, and when, to show reading, computing and writing overlap."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()

    def note(self, what: str, name: str) -> None:
        with self.lock:
            self.events.append((what, name, time.perf_counter()))


def test_folder_pipeline_overlaps_and_reports_skips(tmp_path: Path) -> None:
    log = _Slow()
    jobs = [(tmp_path / f"in{i}.png", tmp_path / "out" / f"{i}.png") for i in range(6)]
    written: dict[str, np.ndarray] = {}

    def read(path: Path) -> np.ndarray:
        log.note("read-start", path.name)
        time.sleep(0.05)
        if path.name == "in3.png":
            raise OSError("unreadable")
        log.note("read-end", path.name)
        return np.full((4, 4, 3), int(path.stem[2:]), dtype=np.uint8)

    def restore(image: np.ndarray) -> np.ndarray:
        log.note("compute", str(int(image[0, 0, 0])))
        time.sleep(0.05)
        return image + 1

    def write(path: Path, image: np.ndarray) -> None:
        time.sleep(0.05)
        written[path.name] = image
        log.note("write-end", path.name)

    results = list(restore_files(restore, jobs, read=read, write=write, skip=(OSError,)))
    assert [r.source for r in results] == [s for s, _ in jobs]  # in order
    assert [r.error is not None for r in results] == [i == 3 for i in range(6)]
    assert sorted(written) == ["0.png", "1.png", "2.png", "4.png", "5.png"]
    assert all(int(written[f"{i}.png"][0, 0, 0]) == i + 1 for i in (0, 1, 2, 4, 5))
    # Overlap: image 1 was being read while image 0 was computed (lookahead), so the whole run
    # takes well under the 3 × 6 × 50 ms that strictly sequential steps would.
    start = {name: t for what, name, t in log.events if what == "read-start"}
    first_compute = next(t for what, _, t in log.events if what == "compute")
    assert start["in1.png"] < first_compute + 0.04
    span = log.events[-1][2] - log.events[0][2]
    assert span < 0.75
