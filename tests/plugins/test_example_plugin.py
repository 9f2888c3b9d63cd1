"""The template plugin, ``plugins/restorekit-example``, installed non-editable: its components
meet restorekit's contracts, and ``restorekit train`` uses them by name with ``dt`` and ``sv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from plugin_helpers import CONFIGS, QUICK_TRAINING

from restorekit import BACKBONES, FILTERS
from restorekit.models.contract import run_backbone


@pytest.mark.usefixtures("example_plugin_in_process")
def test_backbone_meets_the_contract_at_odd_sizes():
    torch.manual_seed(0)
    net = BACKBONES.build({"type": "example_net", "channels": 8, "num_blocks": 1}, path="backbone")
    assert BACKBONES.info("example_net").source == "plugin:restorekit-example==0.1.0"
    assert net.default_loss == "ssim"
    x = torch.rand(2, 3, 37, 53, requires_grad=True)
    restoration = run_backbone(net, x)
    assert restoration.residual.shape == x.shape
    assert torch.isfinite(restoration.restored).all()
    restoration.restored.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.usefixtures("example_plugin_in_process")
def test_filter_meets_the_contract_and_erases_thin_bright_streaks():
    opening = FILTERS.build({"type": "example_opening", "kernel_size": 5}, path="dt.soft_label")
    background = np.full((31, 45, 3), 90, np.uint8)
    rainy = background.copy()
    rainy[:, 10] = 240  # a one-pixel streak
    rainy[5, :] = 240
    label = opening(rainy)
    assert label.shape == rainy.shape and label.dtype == np.uint8
    np.testing.assert_array_equal(label, background)
    assert "kernel_size=5" in opening.cache_key  # the soft-label cache tells settings apart
    with pytest.raises(ValueError, match="odd integer"):
        FILTERS.build({"type": "example_opening", "kernel_size": 4})


@pytest.mark.slow
def test_dt_training_with_the_plugin_backbone_and_filter_then_restore(run_cli, tmp_path: Path, image_folders):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train", str(CONFIGS / "dt_hagg.yaml"), *QUICK_TRAINING,
        "backbone={type: example_net, channels: 8, num_blocks: 1}",
        "dt.soft_label={type: example_opening, kernel_size: 5}",
        f"data.rainy={image_folders['rainy']}", f"data.clean={image_folders['clean']}",
        "--work-dir", str(run_dir),
    )
    assert result.returncode == 0, result.output
    assert "iter 3/3" in result.output
    assert (run_dir / "model.safetensors").is_file()
    assert "example_opening" in (run_dir / "config.yaml").read_text()

    # The model file names its backbone; loading it finds the plugin again by that name.
    restored = tmp_path / "restored"
    result = run_cli("restore", "--checkpoint", str(run_dir), "--input", str(image_folders["rainy"]),
                     "--output", str(restored), "--device", "cpu")
    assert result.returncode == 0, result.output
    assert len(list(restored.glob("*.png"))) == 3


@pytest.mark.slow
def test_sv_training_with_the_plugin_backbone(run_cli, tmp_path: Path, image_folders):
    result = run_cli(
        "train", str(CONFIGS / "dt_hagg.yaml"), *QUICK_TRAINING, "method=sv",
        "backbone={type: example_net, channels: 8, num_blocks: 1}",
        f"data.paired={image_folders['paired']}",
        "--work-dir", str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.output
    assert (tmp_path / "run" / "model.safetensors").is_file()
