"""Desnowing and denoising as tasks of the one method: configs, filters, synthesizers, training.

A task is a choice of data, soft-label filter and evaluation, so these tests check exactly
that: each task config differs from the paper's dt_hagg.yaml only in those keys, its filter
removes its degradation, its synthesizer leaves the clean photo alone outside the
degradation's support, it trains end to end on its built-in demo data, and (denoising) the
residual the network distils is the source noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit import SYNTHESIZERS
from restorekit.config import load_config
from restorekit.data.demo import TASKS
from restorekit.data.io import write_image
from restorekit.model_file import load_model
from restorekit.engine.trainer import Trainer
from restorekit.models.contract import run_backbone
from restorekit.registries import BACKBONES, FILTERS
from restorekit.testing import make_photo

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

#: Every task config: (file, task label, method, demo task of its training data, demo task it is scored on).
TASK_CONFIGS = [
    ("desnow_hagg.yaml", "desnow", "dt", "snow", "snow"),
    ("sv_desnow_hagg.yaml", "desnow", "sv", "snow", "snow"),
    ("desnow_from_rain.yaml", "desnow", "dt", "rain", "snow"),
    ("sv_desnow_from_rain.yaml", "desnow", "sv", "rain", "snow"),
    ("denoise_hagg.yaml", "denoise", "dt", "noise", "noise"),
    ("sv_denoise_hagg.yaml", "denoise", "sv", "noise", "noise"),
]
#: Keys a task may set; everything else must be the method's (dt_hagg.yaml / sv_hagg.yaml).
TASK_KEYS = {"task", "data", "eval", "dt.soft_label"}
SIGMAS = ("test_s15", "test_s25", "test_s50")


def cpu_preset(name: str) -> str:
    return name.replace(".yaml", "_cpu.yaml")


def flatten(mapping: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and key not in ("soft_label",):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def demo_task(value: str) -> str:
    assert value.startswith("demo:"), value
    return value[len("demo:") :].split("/")[0]


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name, task, method, train_on, scored_on", TASK_CONFIGS)
def test_task_config_is_data_filter_and_evaluation_only(name, task, method, train_on, scored_on):
    cfg = load_config(CONFIGS / name).config
    assert (cfg.task, cfg.method) == (task, method)
    if method == "dt":
        assert demo_task(cfg.data.rainy) == demo_task(cfg.data.clean) == train_on
    else:
        assert demo_task(cfg.data.paired) == train_on and cfg.data.paired.endswith("/paired")
    assert demo_task(cfg.eval.data) == scored_on and cfg.eval.data.endswith("/test")
    # No fork of the method: apart from the task's own keys, the config is the paper's.
    paper = load_config(CONFIGS / f"{method}_hagg.yaml").to_dict()
    mine = load_config(CONFIGS / name).to_dict()
    differing = {k for k, v in flatten(mine).items() if flatten(paper).get(k) != v}
    assert all(k.split(".")[0] in TASK_KEYS or k in TASK_KEYS for k in differing), differing


#: The from-rain presets are the deraining presets scored on snow: they follow those.
FROM_RAIN_CPU = {"desnow_from_rain_cpu.yaml": "dt_hagg_cpu.yaml", "sv_desnow_from_rain_cpu.yaml": "sv_hagg_cpu.yaml"}


@pytest.mark.parametrize("name", [c[0] for c in TASK_CONFIGS])
def test_cpu_preset_is_its_config_sized_for_a_cpu(name):
    full = flatten(load_config(CONFIGS / name).to_dict())
    cpu = flatten(load_config(CONFIGS / cpu_preset(name)).to_dict())
    task_keys = ("task", "data.rainy", "data.clean", "data.paired", "eval.data", "eval.extra")
    for key in (*task_keys, "method", "dt.soft_label"):
        if key == "dt.soft_label" and (cpu_preset(name) in FROM_RAIN_CPU or full["method"] != "dt"):
            continue  # an sv config has no dt section
        assert cpu[key] == full[key], key
    if cpu_preset(name) in FROM_RAIN_CPU:
        rain = flatten(load_config(CONFIGS / FROM_RAIN_CPU[cpu_preset(name)]).to_dict())
        assert {k for k in cpu if cpu[k] != rain.get(k)} <= set(task_keys)
    # Never emulated bf16 (~10x slower than fp32 on CPUs without native bf16).
    assert cpu["runtime.precision"] in ("auto", "fp32")
    assert cpu["train.iters"] <= 2000 and cpu["data.crop_size"] <= 64


def test_dt_and_sv_presets_train_alike():
    # dt and sv are compared at equal iterations, crops and learning rate.
    for dt_name in ("desnow_hagg_cpu.yaml", "desnow_from_rain_cpu.yaml", "denoise_hagg_cpu.yaml"):
        # (lr schedule included: dt and sv see the same learning rate at every step)
        dt_cfg = load_config(CONFIGS / dt_name).config
        sv_cfg = load_config(CONFIGS / f"sv_{dt_name}").config
        assert (dt_cfg.train.iters, dt_cfg.train.lr, dt_cfg.train.lr_schedule, dt_cfg.data.crop_size) == (
            sv_cfg.train.iters, sv_cfg.train.lr, sv_cfg.train.lr_schedule, sv_cfg.data.crop_size
        )
        assert dt_cfg.data.batch_size == sv_cfg.data.batch_size and dt_cfg.train.ema == sv_cfg.train.ema
        assert dt_cfg.backbone == sv_cfg.backbone


def test_denoising_is_also_scored_at_the_literatures_sigmas():
    for name in ("denoise_hagg.yaml", "sv_denoise_hagg.yaml"):
        extra = load_config(CONFIGS / name).config.eval.extra
        assert extra == [f"demo:noise/{s}" for s in SIGMAS]
    sigmas = [TASKS["noise"].tests[s].synthesizer["sigma"] for s in SIGMAS]
    assert sigmas == [15.0, 25.0, 50.0]


def test_bad_extra_evaluation_sets_fail_at_load_with_the_key():
    from restorekit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"eval\.extra\[1\].*test_s50"):
        load_config(CONFIGS / "denoise_hagg.yaml", ["eval.extra=[demo:noise/test_s15, demo:noise/test_s05]"])
    with pytest.raises(ConfigError, match=r"eval\.extra.*list"):
        load_config(CONFIGS / "denoise_hagg.yaml", ["eval.extra=demo:noise/test_s15"])


# --------------------------------------------------------------------------- filters remove the degradation
def _flat(level: int, size: int = 192) -> np.ndarray:
    return np.full((size, size, 3), level, np.uint8)


def test_snow_soft_label_removes_the_demo_snow():
    snow = dict(TASKS["snow"].train.synthesizer)
    flakes_only = SYNTHESIZERS.build({**snow, "haze": (0.0, 0.0)})
    label = FILTERS.build(load_config(CONFIGS / "desnow_hagg.yaml").config.dt.soft_label)
    for level in (40, 120):
        for seed in range(3):
            snowy = flakes_only(_flat(level), seed=seed)
            before = np.abs(snowy.astype(np.int16) - level).mean()
            left = np.abs(label(snowy).astype(np.int16) - level)
            assert before > 3.0  # there was snow to remove
            assert left.mean() < 0.35 * before
            assert np.percentile(left, 99) < 0.5 * np.percentile(np.abs(snowy.astype(np.int16) - level), 99)


@pytest.mark.parametrize(
    "soft_label",
    [
        None,  # the one denoise_hagg.yaml uses
        {"type": "gaussian", "kernel_size": 9},
        {"type": "nlm", "strength": 25.0, "color_strength": 25.0},
    ],
)
def test_noise_soft_labels_remove_the_noise_and_the_bilateral_keeps_edges(soft_label):
    spec = soft_label or load_config(CONFIGS / "denoise_hagg.yaml").config.dt.soft_label
    label = FILTERS.build(spec)
    noise = SYNTHESIZERS.build({"type": "gaussian_noise", "sigma": 25.0})
    for seed in range(2):
        noisy = noise(_flat(120), seed=seed)
        assert (noisy.astype(float) - 120).std() > 20
        assert (label(noisy).astype(float) - 120).std() < 0.2 * 25
    if soft_label is None:
        # An edge-preserving label keeps a 60-level step sharp: the distilled residual is noise, not edges.
        step = _flat(120, 64)
        step[:, 32:] = 180
        profile = label(noise(step, seed=0)).astype(float)[:, :, 0].mean(axis=0)
        assert profile[29] < 130 and profile[34] > 170


# --------------------------------------------------------------------------- synthesizers
@pytest.mark.parametrize(
    "spec",
    [
        {**TASKS["snow"].train.synthesizer, "haze": (0.0, 0.0)},
        {"type": "snow", "haze": (0.0, 0.0), "motion_prob": 1.0},
        dict(TASKS["rain"].train.synthesizer),
    ],
    ids=["demo-snow-without-haze", "motion-blurred-snow", "demo-rain"],
)
def test_sparse_degradations_leave_pixels_outside_their_support_untouched(spec):
    # Rendered on black, the screen blend shows the degradation layer itself; wherever that
    # layer is zero, the photo's pixel must come through bit for bit, and elsewhere the pixel
    # may only brighten, by at most the layer.
    synth = SYNTHESIZERS.build(dict(spec))
    photo = make_photo(7, 96, 128)
    for seed in range(3):
        layer = synth(np.zeros_like(photo), seed=seed).astype(np.int16)
        degraded = synth(photo, seed=seed).astype(np.int16)
        outside = (layer == 0).all(axis=2)
        assert 0.2 < outside.mean() < 0.98  # sparse, but present
        assert (degraded[outside] == photo[outside]).all()
        lift = degraded - photo.astype(np.int16)
        assert (lift >= 0).all() and (lift <= layer + 1).all()


def test_snow_motion_blur_elongates_flakes_along_the_fall():
    def spread(motion_prob: float) -> tuple[float, float]:
        synth = SYNTHESIZERS.build(
            {"type": "snow", "haze": (0.0, 0.0), "motion_prob": motion_prob, "angle": (0.0, 0.0),
             "motion_length": (8.0, 8.0), "classes": 1, "size": (1.0, 1.0), "density": (0.002, 0.002)}
        )
        layer = synth.degrade_float(np.zeros((128, 128, 3), np.float32), np.random.default_rng(0))[:, :, 0]

        def corr(dy: int, dx: int) -> float:
            return float(np.corrcoef(layer.ravel(), np.roll(layer, (dy, dx), axis=(0, 1)).ravel())[0, 1])

        return corr(3, 0), corr(0, 3)

    still_vertical, still_horizontal = spread(0.0)
    moving_vertical, moving_horizontal = spread(1.0)
    assert abs(still_vertical - still_horizontal) < 0.1  # round flakes
    assert moving_vertical > 0.5 and moving_vertical > moving_horizontal + 0.3  # streaks along the (vertical) fall


@pytest.mark.parametrize(
    "spec", [{"type": "gaussian_noise", "sigma": 0.0}, {"type": "poisson_gaussian_noise", "a": 0.0, "b": 0.0}]
)
def test_zero_noise_leaves_the_photo_untouched(spec):
    photo = make_photo(3, 40, 56)
    np.testing.assert_array_equal(SYNTHESIZERS.build(spec)(photo, seed=1), photo)


@pytest.mark.parametrize("name", ["snow", "gaussian_noise", "poisson_gaussian_noise"])
def test_pairs_are_deterministic_for_a_seed(name):
    synth = SYNTHESIZERS.build(name)
    photo = make_photo(5, 48, 64)
    degraded, clean = synth.pair(photo, seed=11)
    again, _ = synth.pair(photo, seed=11)
    assert clean is photo
    np.testing.assert_array_equal(degraded, again)
    assert not np.array_equal(degraded, synth.pair(photo, seed=12)[0])


# --------------------------------------------------------------------------- end to end
#: A few iterations of small crops, evaluated on one image per held-out set.
TINY = [
    "train.iters=2", "data.crop_size=32", "data.batch_size=2", "train.log_every=1", "train.sample_every=0",
    "train.checkpoint_every=2", "eval.max_images=1", "data.soft_label_cache=null",
]


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """One demo cache for the module: each task's demo data is rendered once, not per test."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", [cpu_preset(c[0]) for c in TASK_CONFIGS])
def test_task_cpu_presets_train_and_evaluate_end_to_end(name, tmp_path, demo_cache, monkeypatch):
    monkeypatch.setenv("RESTOREKIT_CACHE", str(demo_cache))
    resolved = load_config(CONFIGS / name, TINY)
    result = Trainer(resolved, work_dir=tmp_path / "run").fit()
    assert result.iteration == 2 and result.model_path is not None and result.model_path.is_file()
    table = json.loads((tmp_path / "run" / "eval.json").read_text())
    method = resolved.config.method
    expected = ["degraded input", *(["median filter (soft label)"] if name.startswith("desnow") else []),
                *(["bilateral filter (soft label)"] if name.startswith("denoise") else []), f"hagg ({method})"]
    assert list(table) == expected
    extra = resolved.config.eval.extra
    if extra:
        tables = json.loads((tmp_path / "run" / "eval_extra.json").read_text())
        assert list(tables) == extra and all(list(t) == expected for t in tables.values())


@pytest.mark.slow
def test_restorekit_test_scores_a_model_at_each_sigma(tmp_path, demo_cache, monkeypatch):
    from restorekit.cli import main

    monkeypatch.setenv("RESTOREKIT_CACHE", str(demo_cache))
    run = tmp_path / "run"
    Trainer(load_config(CONFIGS / "denoise_hagg_cpu.yaml", [*TINY, "train.iters=1", "eval.data=null", "eval.extra=[]"]),
            work_dir=run).fit()
    scores = tmp_path / "scores.json"
    sets = [f"demo:noise/{s}" for s in SIGMAS]
    assert main(["test", "--checkpoint", str(run), "--data", *sets, "--baselines", "--json", str(scores)]) == 0
    means = json.loads(scores.read_text())
    assert list(means) == sets and all(set(m) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "brightness"} for m in means.values())
    assert all((run / f"test_noise_{s}.csv").is_file() for s in SIGMAS)
    # Sets with the same folder name (demo:snow/test, demo:rain/test) keep apart.
    assert main(["test", "--checkpoint", str(run), "--data", "demo:snow/test", "demo:rain/test"]) == 0
    assert (run / "test_snow_test.csv").is_file() and (run / "test_rain_test.csv").is_file()
    assert main(["test", "--checkpoint", str(run), "--data", *sets, "--csv", str(tmp_path / "one.csv")]) == 2


# --------------------------------------------------------------------------- the distilled noise
SIGMA = 25.0

#: A network small enough to train to convergence in a test: one linear 7×7 filter, which can
#: separate white noise from a smooth image. The method around it (soft label, detail block,
#: losses, schedule) is denoise_hagg_cpu.yaml's, unchanged.
TOY_BACKBONE = """
from torch import nn
from restorekit.registries import BACKBONES


@BACKBONES.register("toy_linear_denoiser")
class ToyLinearDenoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 7, padding=3, padding_mode="reflect")

    def forward(self, x):
        return self.conv(x)
"""


def _smooth_photo(seed: int, size: int) -> np.ndarray:
    """A toy photo: a mid-tone colour gradient, so the soft label is the photo itself and σ = 25
    noise on it is almost never clipped (it stays zero-mean)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(80, 176, 3) + rng.uniform(-30, 30, 3) * x[..., None] + rng.uniform(-30, 30, 3) * y[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_distilled_noise_residual_has_the_source_noise_statistics(tmp_path):
    """Train dt on a toy denoising case; the residual it adds to a clean image is the noise.

    Noisy photos carry Gaussian noise of σ = 25; after training, the residual the network
    removes from a held-out noisy photo, added to a held-out clean photo (the hard pair of the
    method), must have mean near 0, a standard deviation near 25/255, and follow the true noise.
    """
    noise = SYNTHESIZERS.build({"type": "gaussian_noise", "sigma": SIGMA})
    for i in range(6):
        write_image(tmp_path / "noisy" / f"n{i}.png", noise(_smooth_photo(100 + i, 64), seed=i))
        write_image(tmp_path / "clean" / f"c{i}.png", _smooth_photo(200 + i, 64))
    (tmp_path / "toy_backbone.py").write_text(TOY_BACKBONE)
    with BACKBONES.scoped():
        resolved = load_config(
            CONFIGS / "denoise_hagg_cpu.yaml",
            [
                f"imports=[{tmp_path / 'toy_backbone.py'}]", "backbone={type: toy_linear_denoiser}",
                f"data.rainy={tmp_path / 'noisy'}", f"data.clean={tmp_path / 'clean'}", "eval.data=null",
                "eval.extra=[]", "data.crop_size=32", "data.batch_size=4", "train.iters=800", "train.log_every=100",
                "train.sample_every=0", "train.checkpoint_every=800", "data.soft_label_cache=null",
                "runtime.threads=1",
                # The residual the method adds during training is the raw network's, not the average's.
                "train.ema=null",
                # A toy network's own schedule: faster, then decaying to 0 as the paper's does.
                "train.lr=1e-3", "train.lr_schedule={type: constant_then_linear, decay_start: 0.5}",
            ],
            imports="run",
        )
        model = load_model(Trainer(resolved, work_dir=tmp_path / "run").fit().model_path, with_detail_block=True)

    clean_x = _smooth_photo(999, 96)
    noisy_x = noise(clean_x, seed=123)
    background = _smooth_photo(998, 96)  # the unrelated clean image of the hard pair
    to_tensor = lambda a: torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    with torch.no_grad():
        residual = model.detail_block(run_backbone(model.backbone, to_tensor(noisy_x)).residual)
        hard_pair = (to_tensor(background) + residual).clamp(0, 1)
    added = (hard_pair - to_tensor(background))[0].permute(1, 2, 0).numpy()[4:-4, 4:-4]
    true_noise = ((noisy_x.astype(np.float32) - clean_x) / 255)[4:-4, 4:-4]
    print(f"distilled residual: mean {added.mean() * 255:+.2f}/255, std {added.std() * 255:.2f}/255, "
          f"correlation with the noise {np.corrcoef(added.ravel(), true_noise.ravel())[0, 1]:.2f}")

    sigma = SIGMA / 255
    assert abs(added.mean()) < 0.1 * sigma
    assert 0.8 * sigma < added.std() < 1.2 * sigma
    assert np.corrcoef(added.ravel(), true_noise.ravel())[0, 1] > 0.8
