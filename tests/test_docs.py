"""The docs cannot silently fall behind the code.

The docs site generates its reference pages from the code (``docs/_ext/restorekit_docs``);
these tests run those generators without Sphinx (CI's test step has no Sphinx) and check what
the build alone would not: every config has the header comment its docs entry is made from,
every registered name has a docstring to show, and the model zoo reads the JSON the benchmark
tools really write. ``make docs`` checks the rest (links, references, examples).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

from restorekit_docs import pages  # noqa: E402


@pytest.fixture
def builtin_registries(monkeypatch):
    """The registries with third-party plugins turned off (as the docs are built)."""
    from restorekit.registries import REGISTRIES

    monkeypatch.setenv("RESTOREKIT_DISABLE_PLUGINS", "1")
    saved = [registry.scoped() for registry in REGISTRIES.values()]
    for context in saved:
        context.__enter__().refresh()
    yield REGISTRIES
    for context in reversed(saved):
        context.__exit__(None, None, None)


# --------------------------------------------------------------------------- configs
def user_configs() -> list[Path]:
    folder = ROOT / "configs"
    skip = {"_base_", "reproduce"}  # pieces of configs, and tools/reproduce.py's study files
    return sorted(p for p in folder.rglob("*.yaml") if not skip & set(p.relative_to(folder).parts))


def test_the_configs_page_is_part_of_the_site():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert "\nconfigs\n" in index, "docs/index.md must list the configs page in a toctree"
    assert "generated/configs.md" in (DOCS / "configs.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def configs_page() -> str:
    return pages.configs_page()


@pytest.mark.parametrize("path", user_configs(), ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_every_config_is_documented(path, configs_page):
    """A config's docs entry is its header comment: a config without one would be listed blank."""
    relative = path.relative_to(ROOT).as_posix()
    header = pages.header_comment(path)
    prose = " ".join(text for kind, text in header if kind == "text")
    assert len(prose.split()) >= 5, (
        f"{relative} has no header comment saying what it is; the docs' configs page is made from it. "
        "Start the file with '# <what this config trains, and with which settings>'."
    )
    assert f"### `{relative}`" in configs_page, f"{relative} is missing from the generated configs page"
    assert f"restorekit train {relative}" in configs_page


def test_the_configs_page_lists_nothing_else():
    listed = {entry.path for entry in pages.list_configs()}
    assert listed == {p.relative_to(ROOT).as_posix() for p in user_configs()}
    assert not any("_base_" in path for path in listed)


# --------------------------------------------------------------------------- registries
def test_every_registered_name_has_a_docstring(builtin_registries):
    missing = []
    for kind, registry in builtin_registries.items():
        for name in registry.names():
            doc = registry.info(name).doc
            if not pages.summary_of(doc):
                missing.append(f"{kind} '{name}' ({registry.info(name).target})")
    assert not missing, "registered without a docstring (the docs and `restorekit info` show it): " + ", ".join(missing)


def test_registry_page_lists_every_name(builtin_registries):
    page = pages.registry_tables()
    for kind, registry in builtin_registries.items():
        assert f"(registry-{kind})=" in page
        for name in registry.names():
            assert f"| `{name}` |" in page, f"{kind} '{name}' is missing from the registries page"


# --------------------------------------------------------------------------- config reference
def test_config_reference_has_every_key():
    """Every key of the schema and of each built-in method's section (``dt.*``, ``sv.*``)."""
    from restorekit.config.schema import Config, iter_fields
    from restorekit.registries import METHODS

    page = pages.config_reference()
    keys = list(iter_fields(Config))
    for name in METHODS.builtin_table():
        keys += list(iter_fields(METHODS.get(name).options, prefix=f"{name}."))
    assert any(key.startswith("dt.") for key, *_ in keys) and any(key.startswith("sv.") for key, *_ in keys)
    for key, _annotation, _default, meta in keys:
        assert f"| `{key}` |" in page, f"config key {key} is missing from the reference"
        assert meta.get("doc"), f"config key {key} has no doc"


# --------------------------------------------------------------------------- model zoo
def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_test_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data_dir(tmp_path):
    """A docs/_data with the cited numbers only: what a fresh clone has before any benchmark."""
    (tmp_path / pages.PUBLISHED_YAML).write_text(
        (DOCS / "_data" / pages.PUBLISHED_YAML).read_text(encoding="utf-8"), encoding="utf-8"
    )
    return tmp_path


def test_zoo_without_measurements_says_so(builtin_registries, data_dir):
    page = pages.model_zoo(data_dir)
    assert page.count("not measured for this build") == 2  # CPU speed and optimized modes
    assert "No measured scores" in page
    for name in builtin_registries["backbones"].names():
        assert f"| `{name}` |" in page


def test_zoo_parameter_counts_match_the_published_ones(builtin_registries, data_dir):
    page = pages.model_zoo(data_dir)
    assert "✗" not in page, "a backbone's parameter count differs from the published one"
    assert "51,552\u00a0✓" in page  # the paper's network, conv weights only


def test_zoo_explains_the_published_counts_it_does_not_reproduce(builtin_registries, data_dir):
    page = pages.model_zoo(data_dir)
    assert "984,356\u00a0(see below)" in page and "135,800\u00a0(see below)" in page
    assert "- `umrl`: published 984,356; the authors' module" in page


def test_zoo_reads_what_benchmark_backbones_writes(builtin_registries, data_dir, capsys):
    """Run the real tool on a tiny image, so a change of its JSON breaks this test, not the docs build."""
    tool = load_tool("benchmark_backbones")
    assert tool.main(["--size", "16", "--repeats", "1", "--warmup", "0", "--backbones", "hagg",
                      "--json", str(data_dir / pages.BACKBONES_JSON)]) == 0
    page = pages.model_zoo(data_dir)
    assert page.count("not measured for this build") == 1
    assert "One forward pass over a 16×16 RGB image" in page
    assert "| `hagg` | 51,552 |" in page


def test_zoo_reads_benchmark_json(builtin_registries, data_dir):
    # The keys tools/benchmark.py writes (see its main() and bench_* functions).
    report = {
        "environment": {"cpu": "test CPU", "threads": 2, "torch": "2.x", "bf16_native": False, "device": "cpu"},
        "sizes": {"inference": 512},
        "quick": False,
        "inference": {
            "hagg": {
                "eager_fp32_s": 0.4, "optimized_s": 0.2, "speedup": 2.0, "psnr_delta_db": -0.001,
                "mode": {"precision": "fp32", "channels_last": True, "compile": True},
            }
        },
        "train_step": {"eager_fp32_s": 0.9, "optimized_s": 0.5, "speedup": 1.8,
                       "mode": {"precision": "fp32", "channels_last": True, "compile": False},
                       "batch": [8, 3, 128, 128]},
        "soft_label_ms": 21.0,
        "tiled_restore": {"peak_rss_mib": 300.0, "seconds": 12.0, "image": [3000, 4000], "tile": 512,
                          "max_abs_diff": 0.0},
    }
    (data_dir / pages.BENCHMARK_JSON).write_text(json.dumps(report), encoding="utf-8")
    page = pages.model_zoo(data_dir)
    assert "| `hagg` inference, 512² | 400 ms | 200 ms | 2.00× |" in page
    assert "distillation training step, 8×128²" in page
    assert "4000×3000 photo" in page


def test_performance_targets_say_met_or_missed_and_how_far():
    bench = {
        "environment": {"bf16_native": False},
        "inference": {"hagg": {"eager_fp32_s": 0.8, "optimized_s": 0.4, "speedup": 2.0, "psnr_delta_db": 0.0}},
        "train_step": {
            "eager_fp32_s": 1.7, "optimized_s": 1.5, "speedup": 1.13,
            "flop_floor": {"step_gmac": 120.0, "matmul_peak_gmac_s": {"fp32": 150.0}, "floor_s": {"fp32": 0.8},
                           "fraction_of_peak": {"eager_fp32": 0.47}, "best_possible_speedup": 2.1},
        },
        "soft_label_ms": 25.0,
        "tiled_restore": {"peak_rss_mib": 584.0, "max_abs_diff": 0.0},
    }
    backbones = {"results": [{"name": "hagg", "macs": 13.5e9}]}
    page = pages.performance_targets(bench, backbones)
    assert "| dt training step 8×128²: ≥ 3× fp32 eager | 1.13× | **missed** |" in page
    assert "| 584 MiB, 0.0e+00 | met |" in page and "| 25.0 ms | met |" in page
    assert "at most 2.10× faster" in page  # the FLOP floor of the step
    assert "13.5 GMAC: 90 ms at peak" in page  # and of hagg's inference
    assert "no native bfloat16" in page


def test_main_job_scores_are_shown_when_recorded(data_dir):
    eval_json = {
        "degraded input": {"psnr_y": 26.1, "ssim_y": 0.85, "psnr_rgb": 24.0, "ssim_rgb": 0.84},
        "median filter (soft label)": {"psnr_y": 23.0, "ssim_y": 0.7, "psnr_rgb": 22.0, "ssim_rgb": 0.69},
        "hagg (dt)": {"psnr_y": 27.5, "ssim_y": 0.88, "psnr_rgb": 25.0, "ssim_rgb": 0.87, "brightness": 1.234},
    }
    for data in (eval_json, {"eval": eval_json, "config": "configs/dt_hagg_cpu.yaml", "minutes": 9.5}):
        (data_dir / pages.MAIN_JOB_JSON).write_text(json.dumps(data), encoding="utf-8")
        for text in (pages.main_job_fragment(data_dir), pages.reproduction(data_dir)):
            assert "| hagg (dt) | 27.50 | 0.8800 |" in text
            assert "No measured scores" not in text and "No run of the main job" not in text
        # the brightness error where the run recorded it, a dash where it did not (older runs)
        assert "| 0.8700 | +1.23 |" in pages.main_job_fragment(data_dir)
        assert "| 0.8400 | — |" in pages.main_job_fragment(data_dir)


def test_reproduction_page_invents_nothing(data_dir):
    """Without recorded runs the page shows the paper's numbers, each marked as not yet run."""
    page = pages.reproduction(data_dir)
    assert "No measured scores" in page and "No reproduction results" in page
    assert page.count("*Reproduction:*") == len(pages.published(data_dir)["tables"])
    assert "33.09" in page  # Rain200L, DT, from the paper's Table III


# --------------------------------------------------------------------------- markdown helpers
def test_markdown_escaping_keeps_code_and_roles():
    text = "Use `a|b` and :class:`~restorekit.errors.ConfigError` at <cache>/x_y * 2 $HOME"
    out = pages.md_text(pages.rest_roles_to_myst(text), in_table=True)
    assert "`a\\|b`" in out
    assert "{py:class}`~restorekit.errors.ConfigError`" in out
    assert "\\<cache\\>/x\\_y \\* 2 \\$HOME" in out


def test_yaml_inline_writes_config_syntax():
    assert pages.yaml_inline({"type": "median", "kernel_size": 31}) == "{type: median, kernel_size: 31}"
    assert pages.yaml_inline((0.5, 0.999)) == "[0.5, 0.999]"
    assert pages.yaml_inline(None) == "null" and pages.yaml_inline(True) == "true"
    assert pages.yaml_inline("demo:rain/rainy") == "demo:rain/rainy"
    assert pages.yaml_inline("") == '""'


# --------------------------------------------------------------------------- pictures
def test_committed_pictures_are_small_and_described():
    """Pictures come from docs/make_figures.py, whose provenance.json the captions are written from."""
    folder = DOCS / "_static" / pages.FIGURES
    pictures = sorted([*folder.glob("*.png"), *folder.glob("*.jpg")]) if folder.is_dir() else []
    for picture in pictures:
        assert picture.stat().st_size <= 310_000, f"{picture.name} is {picture.stat().st_size // 1000} kB; keep docs pictures small"
    if pictures:
        record = pages.read_provenance(DOCS / "_static")
        assert record is not None, "pictures without docs/_static/figures/provenance.json"
        listed = set(record["before_after"]) | {
            record[key]["file"] for key in ("sample_grid", "curves", "report") if record.get(key)
        }
        assert listed == {p.name for p in pictures}, "provenance.json and the pictures in docs/_static/figures disagree"


def test_pages_without_pictures_say_so(tmp_path):
    assert "No before/after pictures" in pages.demo_figures(tmp_path)
    assert "No sample grid" in pages.sample_grid_figure(tmp_path)
    assert "No training curves" in pages.curves_figure(tmp_path)
    assert "No screenshot of a results report" in pages.report_figure(tmp_path)


# --------------------------------------------------------------------------- denoising benchmark
def test_denoise_tables_read_what_benchmark_denoise_writes(tmp_path, data_dir):
    """Run the real tool in --quick mode, so a change of its JSON breaks this test, not the docs build."""
    tool = load_tool("benchmark_denoise")
    assert "No denoising benchmark" in pages.denoise_fragment(data_dir)
    assert tool.main(["score", "--quick", "--no-cbm3d", "--sigma", "15", "25",
                      "--json", str(data_dir / pages.DENOISE_JSON)]) == 0
    page = pages.denoise_fragment(data_dir)
    result = json.loads((data_dir / pages.DENOISE_JSON).read_text(encoding="utf-8"))
    noisy = next(r for r in result["rows"] if r["label"] == "noisy input")["scores"]["s25"]
    assert f"| noisy input | {_cell(result, 'noisy input', 's15', 'rgb')} | {noisy['psnr_rgb']:.2f} / {noisy['ssim_rgb']:.4f} |" in page
    assert "| method | σ = 15 | σ = 25 |" in page and page.count("| NL-means (OpenCV) |") == 2  # RGB and Y
    assert "NL-means' strength was chosen on 2 other photos" in page
    assert "python tools/benchmark_denoise.py score --quick" in page
    assert pages.fragments(data_dir)["denoise.md"] == page


def _cell(result, label, key, space):
    s = next(r for r in result["rows"] if r["label"] == label)["scores"][key]
    return f"{s['psnr_' + space]:.2f} / {s['ssim_' + space]:.4f}"
