"""The ``restorekit-timm`` plugin: a U-Net around a timm encoder, found by name and trained by
``dt`` and ``sv`` through the command line. It needs timm (and so PyPI's torch), so these tests
run in the environment of ``.ci/plugins.sh`` and skip elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
import torch
from plugin_helpers import CONFIGS, QUICK_TRAINING

from restorekit import BACKBONES
from restorekit.config import load_config
from restorekit.errors import ConfigError
from restorekit.models.contract import run_backbone

if os.environ.get("RESTOREKIT_REQUIRE_TIMM"):  # .ci/plugins.sh: a missing timm is a failure, not a skip
    import timm  # noqa: F401
    importlib.metadata.distribution("restorekit-timm")
else:
    pytest.importorskip(
        "timm",
        reason="timm is not installed; the timm plugin is tested by .ci/plugins.sh in an environment of its own",
    )
    try:
        importlib.metadata.distribution("restorekit-timm")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("restorekit-timm is not installed (pip install plugins/restorekit-timm)", allow_module_level=True)

CONFIG = CONFIGS / "plugins" / "dt_timm_unet.yaml"
SMALL_ENCODERS = ["resnet18", "mobilenetv3_small_100"]


def test_found_by_name_from_its_distribution():
    assert "timm_unet" in BACKBONES.names()
    info = BACKBONES.info("timm_unet")
    assert info.source.startswith("plugin:restorekit-timm==")
    assert info.target == "restorekit_timm.unet:TimmUNet"


@pytest.mark.parametrize("encoder", SMALL_ENCODERS)
def test_meets_the_backbone_contract_at_odd_sizes(encoder):
    torch.manual_seed(0)
    net = BACKBONES.build({"type": "timm_unet", "encoder": encoder, "decoder_channels": 8}, path="backbone")
    assert net.default_loss == "ssim"
    x = torch.rand(2, 3, 37, 53)
    restoration = run_backbone(net, x)
    assert restoration.residual.shape == x.shape
    # The head starts at zero: a new network returns its input, and learns the residual from there.
    assert torch.equal(restoration.restored, x)

    # Gradients reach every layer once the zero-initialised layers have moved: the head after
    # one step, then timm's residual blocks, whose last norm layer timm also starts at zero.
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        run_backbone(net, x).restored.sub(0.5).square().mean().backward()
        optimizer.step()
    frozen = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert frozen == []
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(run_backbone(net, torch.rand(1, 3, 5, 70)).residual).all()


def test_out_indices_choose_the_encoder_levels():
    net = BACKBONES.build({"type": "timm_unet", "encoder": "resnet18", "out_indices": [0, 1, 2]}, path="backbone")
    assert net.stride == 8  # the deepest level kept is 1/8, so inputs are padded to multiples of 8
    assert run_backbone(net, torch.rand(2, 3, 13, 9)).residual.shape == (2, 3, 13, 9)


def test_config_validates_and_bad_encoder_names_get_suggestions():
    resolved = load_config(CONFIG, check_data_folders=False)
    assert resolved.config.backbone["type"] == "timm_unet"
    assert resolved.config.method == "dt"
    with pytest.raises(ConfigError, match=r"timm has no model 'resnet_18'\. Did you mean 'resnet18'") as caught:
        load_config(CONFIG, ["backbone.encoder=resnet_18"], check_data_folders=False)
    assert caught.value.path == "backbone"
    with pytest.raises(ConfigError, match="has no argument 'decoder_width'"):
        load_config(CONFIG, ["backbone.decoder_width=8"], check_data_folders=False)


@pytest.mark.slow
def test_dt_training_through_the_command_line(run_cli, tmp_path: Path, image_folders):
    result = run_cli(
        "train", str(CONFIG), *QUICK_TRAINING,
        f"data.rainy={image_folders['rainy']}", f"data.clean={image_folders['clean']}",
        "--work-dir", str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.output
    assert "dt timm_unet" in result.output and "iter 3/3" in result.output
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.slow
def test_sv_training_through_the_command_line(run_cli, tmp_path: Path, image_folders):
    result = run_cli(
        "train", str(CONFIG), *QUICK_TRAINING, "method=sv", "backbone.encoder=mobilenetv3_small_100",
        f"data.paired={image_folders['paired']}",
        "--work-dir", str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.output
    assert "sv timm_unet" in result.output
    assert (tmp_path / "run" / "model.safetensors").is_file()
