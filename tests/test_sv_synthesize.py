"""Supervised training on clean photos degraded afresh each batch (``sv.synthesize``), as DnCNN is trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from restorekit.config import load_config
from restorekit.data.batches import SynthesizedPairBatches, unpack_batch
from restorekit.data.io import write_image
from restorekit.data.photos import PhotoSet
from restorekit.errors import ConfigError
from restorekit.registries import SYNTHESIZERS
from restorekit.testing import make_photo

ROOT = Path(__file__).resolve().parents[1]
NOISE = "sv.synthesize={type: gaussian_noise, sigma: 25}"


def grey_folder(root: Path, n: int = 2, size: int = 48) -> Path:
    for i in range(n):
        write_image(root / f"g{i}.png", np.full((size, size, 3), 128, np.uint8))
    return root


def batches(folder: Path, sigma: object, seed: int = 0) -> SynthesizedPairBatches:
    synthesizer = SYNTHESIZERS.build({"type": "gaussian_noise", "sigma": sigma})
    return SynthesizedPairBatches(
        PhotoSet(folder, crop_size=32), synthesizer, crop_size=32, batch_size=16, flip=True, seed=seed
    )


def noise_of(batch: dict) -> np.ndarray:
    return batch["degraded"].numpy().astype(np.float64) - batch["target"].numpy()


def test_each_crop_is_its_clean_target_plus_noise_of_the_configured_strength(tmp_path):
    batch, skipped = unpack_batch(batches(grey_folder(tmp_path), 25)[3])
    assert not skipped and batch["degraded"].shape == batch["target"].shape == (16, 3, 32, 32)
    assert (batch["target"] == 128).all()  # the target is the clean crop itself
    noise = noise_of(batch)
    # 49,152 draws: the mean is 0 within 0.5 and the standard deviation 25 within 0.5 (the
    # rounding to uint8 adds 1/12 of variance, grey 128 is far from clipping at 25)
    assert abs(noise.mean()) < 0.5 and abs(noise.std() - 25) < 0.5


def test_noise_is_fresh_every_batch_yet_the_same_for_the_same_iteration(tmp_path):
    folder = grey_folder(tmp_path)
    source, twin = batches(folder, 25), batches(folder, 25)
    first = noise_of(unpack_batch(source[7])[0])
    # a resumed run (a new batch source) draws exactly what an uninterrupted one would
    assert np.array_equal(first, noise_of(unpack_batch(twin[7])[0]))
    # a fixed set of noisy pairs would repeat its noise; here the next batch's is new
    assert not np.array_equal(first, noise_of(unpack_batch(source[8])[0]))
    assert not np.array_equal(first, noise_of(unpack_batch(batches(folder, 25, seed=1)[7])[0]))


def test_a_sigma_range_is_drawn_per_crop(tmp_path):
    noise = noise_of(unpack_batch(batches(grey_folder(tmp_path), [5, 55])[0])[0])
    stds = noise.reshape(16, -1).std(axis=1)
    assert stds.min() > 4 and stds.max() < 56  # inside the range (32²·3 draws per crop)
    assert stds.max() - stds.min() > 15  # and it varies: 16 uniform draws over a range of 50


def test_a_synthesizing_sv_config_reads_data_clean_and_needs_no_pairs(tmp_path):
    write_image(tmp_path / "clean" / "a.png", make_photo(0, 48, 48))
    # data.paired is not read (here it names no folder at all), data.clean is
    overrides = [NOISE, f"data.clean={tmp_path / 'clean'}", "data.paired=/definitely/not/here"]
    config = load_config("configs/sv_denoise_dncnn_cpu.yaml", overrides).config
    assert config.sections["sv"].synthesize == {"type": "gaussian_noise", "sigma": 25}
    with pytest.raises(ConfigError, match="does not exist") as err:
        load_config("configs/sv_denoise_dncnn_cpu.yaml", [NOISE, "data.clean=/definitely/not/here"])
    assert err.value.path == "data.clean"


def test_an_unknown_synthesizer_fails_before_any_work_with_a_hint():
    with pytest.raises(ConfigError, match="Did you mean 'gaussian_noise'") as err:
        load_config("configs/sv_denoise_dncnn_cpu.yaml", ["sv.synthesize={type: gausian_noise}"])
    assert err.value.path == "sv.synthesize.type"


@pytest.mark.slow
def test_sv_trained_on_synthesized_noise_denoises_held_out_noisy_photos(tmp_path):
    clean = tmp_path / "clean"
    for i in range(6):
        write_image(clean / f"c{i}.png", make_photo(400 + i, 64, 64))
    # held-out pairs: other photos, the same noise model, a fixed seed
    noise = SYNTHESIZERS.build({"type": "gaussian_noise", "sigma": 25})
    for i in range(3):
        photo = make_photo(500 + i, 64, 64)
        write_image(tmp_path / "test" / "gt" / f"t{i}.png", photo)
        write_image(tmp_path / "test" / "rain" / f"t{i}.png", noise(photo, seed=i))
    work = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable, "-m", "restorekit", "train", "configs/sv_denoise_hagg.yaml", NOISE,
            "backbone={type: dncnn, features: 16, depth: 4, batch_norm: false}",
            f"data.clean={clean}", f"eval.data={tmp_path / 'test'}", "eval.extra=[]",
            "data.crop_size=32", "data.batch_size=8", "train.iters=150", "train.lr=2e-3", "train.ema=null",
            "train.sample_every=0", "train.checkpoint_every=150",
            "runtime.threads=1", "runtime.precision=fp32", "--work-dir", str(work),
        ],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = json.loads((work / "eval.json").read_text())
    # it learnt to remove noise it only ever drew itself: clearly above the noisy input
    assert table["dncnn (sv)"]["psnr_rgb"] > table["degraded input"]["psnr_rgb"] + 1
