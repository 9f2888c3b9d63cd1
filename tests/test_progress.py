"""Issue 19, progress on every long step: a bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from restorekit.data.photos import PhotoSet
from restorekit.progress import StageProgress, TaskProgress, format_duration, plain_line
from restorekit.testing import make_paired_folder, make_unpaired_folders

ROOT = Path(__file__).resolve().parents[1]


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, markup=False, highlight=False, width=200), out


def terminal_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=160, color_system=None), out


def test_durations_and_plain_lines():
    assert [format_duration(s) for s in (0, 42.4, 185, 7260, float("nan"), float("inf"))] == [
        "0s", "42s", "3m 05s", "2h 01m", "?", "?"
    ]
    assert plain_line("restore", 40, 400, 10.0, "images") == "restore: 40/400 images (10%), 4 images/s, 1m 30s left"
    assert plain_line("restore", 400, 400, 100.0, "images") == "restore: 400/400 images (100%), 4 images/s, done in 1m 40s"
    # slow items read as time per item
    assert plain_line("reproduce", 1, 4, 300.0, "rows") == "reproduce: 1/4 rows (25%), 5m 00s per row, 15m 00s left"


def test_plain_lines_every_tenth_of_a_large_count_and_only_the_end_of_a_small_one():
    console, out = plain_console()
    with TaskProgress(console, "restore", 100) as progress:
        for _ in range(100):
            progress.advance()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split()[0] for line in lines] == [f"{n}/100" for n in range(10, 101, 10)]
    assert lines[-1].endswith("left") is False and "done in" in lines[-1]

    console, out = plain_console()
    with TaskProgress(console, "test demo", 4) as progress:
        for _ in range(4):
            progress.advance()
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]] and "test demo: 4/4 images" in out.getvalue()


def test_a_terminal_gets_a_bar_with_the_count():
    console, out = terminal_console()
    with TaskProgress(console, "restore", 7) as progress:
        for _ in range(7):
            progress.advance()
    text = out.getvalue()
    assert "restore" in text and "7/7" in text and "ETA" in text
    assert "images/s" not in text  # the bar, not the plain lines


def test_stage_progress_reports_each_stage_of_photo_loading(tmp_path):
    rainy, _ = make_unpaired_folders(tmp_path, n_rainy=60, n_clean=1, size=16)
    console, out = plain_console()

    class Labels:
        def get(self, image, digest):
            return image

    with StageProgress(console) as progress:
        PhotoSet(rainy, crop_size=8, label_cache=Labels(), progress=progress)
    lines = out.getvalue().splitlines()
    photos = [line for line in lines if "loading photos" in line]
    labels = [line for line in lines if "loading soft labels" in line]
    assert len(photos) == 10 and "60/60 images" in photos[-1]
    assert len(labels) == 10 and "60/60 labels" in labels[-1]

    console, out = terminal_console()
    with StageProgress(console, prefix="loading rainy") as progress:
        PhotoSet(rainy, crop_size=8, label_cache=Labels(), progress=progress)
    text = out.getvalue()
    assert "loading rainy photos" in text and "loading rainy soft labels" in text and "60/60" in text


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from restorekit.model_file import save_model
    from restorekit.registries import BACKBONES

    spec = {"type": "hagg", "channels": 4, "num_blocks": 2}
    folder = tmp_path_factory.mktemp("model")
    return save_model(folder / "model.safetensors", {"backbone": BACKBONES.build(spec)}, {"backbone": spec})


def test_restore_and_test_commands_report_progress(tmp_path, model):
    paired = make_paired_folder(tmp_path / "paired", n=3, size=32)
    run = [sys.executable, "-m", "restorekit"]
    done = subprocess.run([*run, "test", "--checkpoint", str(model), "--data", str(paired), "--csv", str(tmp_path / "t.csv")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test paired: 3/3 images (100%)" in done.stdout
    done = subprocess.run([*run, "restore", "--checkpoint", str(model), "--input", str(paired / "rain"), "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restore: 3/3 images (100%)" in done.stdout and "restored 3 image(s)" in done.stdout
