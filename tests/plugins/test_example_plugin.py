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


@pytest.mark.usefixtures("example_plugin_in_process")
def test_method_is_found_by_name_with_its_own_config_section():
    from restorekit import METHODS
    from restorekit.config import parse_config
    from restorekit.methods import build_method

    assert "example_soft_only" in METHODS.names()
    assert METHODS.info("example_soft_only").source == "plugin:restorekit-example==0.1.0"
    config = parse_config({
        "method": "example_soft_only",
        "backbone": {"type": "example_net", "channels": 8, "num_blocks": 1},
        "example_soft_only": {"soft_label": {"type": "example_opening", "kernel_size": 5}},
    })
    method = build_method(config)
    assert type(method).__name__ == "SoftOnly" and method.module_specs() == {"backbone": config.backbone}
    assert type(method).data_folders(config, config.example_soft_only) == {"data.rainy": "photos"}
    # Learning from the soft label alone: the loss is zero when the network restores the label exactly.
    degraded = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        out = method.training_step({"degraded": degraded, "soft_label": run_backbone(method.backbone, degraded).restored}, 1)
    assert float(out.loss) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_the_plugin_method_trains_through_the_cli(run_cli, tmp_path: Path, image_folders):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train", str(CONFIGS / "dt_hagg.yaml"), *QUICK_TRAINING, "method=example_soft_only",
        "example_soft_only={soft_label: {type: example_opening, kernel_size: 5}}",
        f"data.rainy={image_folders['rainy']}", "--work-dir", str(run_dir),
    )
    assert result.returncode == 0, result.output
    assert "iter 3/3" in result.output and (run_dir / "model.safetensors").is_file()
    assert "example_soft_only:" in (run_dir / "config.yaml").read_text()
    result = run_cli("list", "methods")
    assert result.output.split() == ["dt", "example_soft_only", "sv"]
