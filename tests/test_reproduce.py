"""tools/reproduce.py: the study files hold their budgets, every row is a valid run, and the
runner trains, scores and renders end to end (on the demo data, a few iterations)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from restorekit.config import load_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from restorekit_docs import pages  # noqa: E402


def _load_tool():
    spec = importlib.util.spec_from_file_location("reproduce_tool", ROOT / "tools" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reproduce = _load_tool()
STUDIES = reproduce.load_studies()


def test_the_paper_tables_and_figures_each_have_a_study():
    kinds = {name: s.kind for name, s in STUDIES.items()}
    for table in ("table3", "table5", "table6", "table7", "table8"):
        assert kinds.get(table) == "table"
    assert kinds.get("figure5") == "figure5"
    assert kinds.get("real_rain") == "gallery"


def test_budgets_fit_an_hour_per_table_and_four_hours_in_all():
    for study in STUDIES.values():
        own = sum(r.budget_minutes for r in study.rows)
        assert 0 <= own <= study.budget_minutes <= 60, study.name
    assert sum(r.budget_minutes for s in STUDIES.values() for r in s.rows) <= 240


@pytest.mark.parametrize(
    "row", [r for s in STUDIES.values() for r in s.rows if not r.same_as], ids=lambda r: r.key
)
def test_every_row_is_a_valid_config(row, tmp_path):
    """A typo in a row's overrides must fail here, not an hour into the study."""
    args = argparse.Namespace(out=str(tmp_path), demo=True, smoke=False)
    overrides = reproduce.row_overrides(row, args, threads=1)
    load_config(ROOT / row.config, reproduce.override_args(overrides))


def test_table_vi_covers_every_published_backbone():
    labels = " ".join(r.label for r in STUDIES["table6"].rows)
    for name in ("hagg", "ddn", "prenet", "jordere"):
        assert f"{name} (dt)" in labels and f"{name} (sv)" in labels


def test_a_misspelt_study_key_is_named_with_a_suggestion(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("title: x\nbudget_minutes: 5\nrows:\n  - {name: a, config: configs/dt_hagg_cpu.yaml, budget_minute: 3}\n")
    with pytest.raises(reproduce.StudyError, match=r"unknown key 'budget_minute'.*Did you mean 'budget_minutes'"):
        reproduce.load_study(bad)


def test_a_table_over_an_hour_is_refused(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("title: x\nbudget_minutes: 90\nrows:\n  - {name: a, config: configs/dt_hagg_cpu.yaml, budget_minutes: 80}\n")
    with pytest.raises(reproduce.StudyError, match="at most an hour"):
        reproduce.load_study(bad)


def test_same_as_must_name_a_run(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "title: x\nbudget_minutes: 5\nrows:\n  - {name: dt, config: configs/dt_hagg_cpu.yaml, budget_minutes: 3}\n"
    )
    (tmp_path / "b.yaml").write_text("title: y\nrows:\n  - {name: r, same_as: a/td}\n")
    with pytest.raises(reproduce.StudyError, match=r"same_as 'a/td'.*Did you mean 'a/dt'"):
        reproduce.load_studies(tmp_path)


def test_prepare_splits_photos_without_overlap_and_renders_paired_rain(tmp_path):
    from restorekit.data.io import read_image, write_image

    rng = np.random.default_rng(0)
    source = tmp_path / "src"
    for i in range(40):
        write_image(source / "clean" / f"photo_{i:02d}.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    for i in range(12):
        write_image(source / "real_rain_train" / f"real_{i:02d}.png", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    manifest = reproduce.prepare(source, tmp_path / "out", side=32)
    groups = [set(manifest[k]) for k in ("rain_sources", "backgrounds", "test")]
    assert sum(len(g) for g in groups) == 40 and len(set.union(*groups)) == 40
    data = tmp_path / "out" / "data" / "rain"
    test_rain = sorted(p.name for p in (data / "test" / "rain").iterdir())
    assert test_rain == sorted(p.name for p in (data / "test" / "gt").iterdir()) and len(test_rain) == 4
    rainy, clean = read_image(data / "test" / "rain" / test_rain[0]), read_image(data / "test" / "gt" / test_rain[0])
    assert max(rainy.shape[:2]) == 32 and rainy.shape == clean.shape and (rainy != clean).any()
    real = manifest["real_rain"]
    assert len(real["held_out"]) == 2 and not set(real["held_out"]) & set(real["train"])


def test_smoke_run_writes_results_and_the_docs_render_them(tmp_path, capsys):
    out = tmp_path / "repro"
    assert reproduce.main(["run", "--demo", "--smoke", "--out", str(out), "table3", "figure5"]) == 0
    result = json.loads((out / "results" / "table3" / "dt.json").read_text())
    assert result["smoke"] and result["iters"] == 4 and "hagg (dt)" in result["eval"]
    # The recorded command is the row's real one (what a user reruns), not the smoke settings.
    assert result["command"] == "restorekit train configs/dt_hagg_cpu.yaml train.checkpoint_every=100 train.keep_checkpoints=9"
    assert (out / "figures" / "figure5.png").is_file()
    snapshots = json.loads((out / "results" / "figure5" / "figure.json").read_text())["snapshots"]
    assert [s["iteration"] for s in snapshots] == [2, 4]

    # A finished row is not trained again.
    mtime = (out / "results" / "table3" / "dt.json").stat().st_mtime_ns
    assert reproduce.main(["run", "--demo", "--smoke", "--out", str(out), "table3"]) == 0
    assert (out / "results" / "table3" / "dt.json").stat().st_mtime_ns == mtime

    target = tmp_path / "docs" / "reproduce.json"
    assert reproduce.main(["render", "--out", str(out), "--json", str(target)]) == 0
    payload = json.loads(target.read_text())
    table3 = payload["studies"]["table3"]
    labels = [r["label"] for r in table3["rows"]]
    assert labels[:2] == ["degraded input", "median filter (soft label)"]
    assert all("metrics" in r for r in table3["rows"])
    assert "metrics" not in payload["studies"]["table5"]["rows"][1]  # k21 did not run
    assert (tmp_path / "docs" / "reproduce" / "figure5.jpg").is_file()

    page = pages.reproduce_section(payload)
    assert "The dt–sv gap" in page and "not run" in page and "/_static/reproduce/figure5.jpg" in page
    # Each run's collapse guard verdict, read from its log: these 4-iteration runs never collapse.
    assert [r["collapsed"] for r in table3["rows"] if "run" in r] == [False, False]
    assert "| collapse guard |" in page


def test_the_collapse_guard_verdict_is_read_from_the_runs_log(tmp_path):
    assert reproduce.collapse_guard_verdict(tmp_path) is None  # no log: not known
    (tmp_path / "train.log").write_text("2026-12-07 iter 100/800 ...\n2026-12-07 eval @ 100: PSNR-Y 27.00 dB\n")
    assert reproduce.collapse_guard_verdict(tmp_path) is False
    with open(tmp_path / "train.log", "a") as log:
        log.write("2026-12-07 COLLAPSE @ 700: the distilled residual is gone since about iteration 500\n")
    assert reproduce.collapse_guard_verdict(tmp_path) is True


def test_published_reproduction_pictures_are_small():
    for picture in sorted((ROOT / "docs" / "_static" / "reproduce").glob("*")):
        assert picture.stat().st_size <= 310_000, f"{picture.name} is {picture.stat().st_size // 1000} kB"
