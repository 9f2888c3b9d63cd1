"""The published backbones beside the paper's own: DDN, PReNet/PRN (4 variants), JORDER-E,
RESCAN (3 units), SPANet, DID-MDN and UMRL, and JORDER-E's structured loss (the other networks'
own losses and parts: tests/test_more_backbones.py). CPU only, small inputs: behaviour checks use tiny configs,
the published sizes are checked by their parameter counts (the cheapest proof that a
re-implementation matches the published network).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import restorekit
from restorekit.models.contract import Restoration, count_parameters, run_backbone

# name -> (published count, convention), as the docs' model zoo gives them (read from each paper's official model).
PUBLISHED = {
    "ddn": (58_175, "trainable+bn_stats"),
    "prenet": (168_963, "trainable"),
    "prn": (95_107, "trainable"),
    "prenet_r": (94_979, "trainable"),
    "prn_r": (21_123, "trainable"),
    "jordere": (4_169_024, "trainable"),
    "rescan": (149_823, "trainable"),  # ConvGRU, the authors' default
    "rescan_rnn": (54_735, "trainable"),  # the count in Rain O'er Me's Table IV
    "rescan_lstm": (197_367, "trainable"),
    "spanet": (283_716, "trainable"),
}
# DID-MDN and UMRL build only the layers their authors' forward passes use; their published
# counts include layers those modules build and never call (tests/test_more_backbones.py).
NEW_BACKBONES = [*PUBLISHED, "didmdn", "umrl"]
PRENET_VARIANTS = ["prenet", "prn", "prenet_r", "prn_r"]

# Small configurations for behaviour checks (the published ones are slow on 2 cores only for jordere,
# but small ones keep the whole file fast).
TINY = {
    "ddn": {"channels": 8, "num_units": 2, "radius": 3},
    "prenet": {"channels": 8, "stages": 2, "num_resblocks": 2},
    "prn": {"channels": 8, "stages": 2, "num_resblocks": 2},
    "prenet_r": {"channels": 8, "stages": 2, "num_resblocks": 2},
    "prn_r": {"channels": 8, "stages": 2, "num_resblocks": 2},
    "jordere": {"channels": 8, "num_blocks": 1},
    "rescan": {"channels": 8, "stages": 2, "depth": 4},
    "rescan_rnn": {"channels": 8, "stages": 2, "depth": 4},
    "rescan_lstm": {"channels": 8, "stages": 2, "depth": 4},
    "spanet": {"channels": 8},
    "didmdn": {},  # fixed widths (the authors'); 365K parameters but small inputs keep it fast
    "umrl": {},
}


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return restorekit.BACKBONES.build({"type": name, **kwargs})


def rainy_pair(h: int = 24, w: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth clean image, sparse bright streaks, and their sum (clipped) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    clean = torch.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 - 0.3 * xx * yy])[None]
    streaks = (torch.rand(1, 1, h, w, generator=g) > 0.9).float() * 0.4
    degraded = (clean + streaks).clamp(0, 1)
    return degraded, clean, degraded - clean


# --------------------------------------------------------------------------- registration
def test_builtin_table_matches_decorators():
    for name in NEW_BACKBONES:
        obj = restorekit.BACKBONES.get(name)
        assert restorekit.BACKBONES.builtin_table()[name] == f"{obj.__module__}:{obj.__qualname__}"
        assert restorekit.BACKBONES.info(name).source == "builtin"
    for name in ("jordere", "rescan", "spanet", "didmdn", "umrl"):
        loss = restorekit.LOSSES.get(name)
        assert restorekit.LOSSES.builtin_table()[name] == f"{loss.__module__}:{loss.__qualname__}"


@pytest.mark.parametrize(
    "name, loss",
    [
        ("ddn", "mse"), ("prenet", "ssim"), ("prn_r", "ssim"), ("jordere", "jordere"), ("rescan", "rescan"),
        ("rescan_rnn", "rescan"), ("spanet", "spanet"), ("didmdn", "didmdn"), ("umrl", "umrl"),
    ],
)
def test_default_loss_is_registered(name, loss):
    model = build(name, **TINY[name])
    assert model.default_loss == loss
    assert loss in restorekit.LOSSES.names()


# --------------------------------------------------------------------------- published counts
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_parameter_count(name):
    count, convention = PUBLISHED[name]
    model = build(name)
    assert model.param_convention == convention
    assert count_parameters(model, convention) == count


def test_ddn_count_split():
    model = build("ddn")
    assert count_parameters(model, "trainable") == 57_369  # + 806 BatchNorm running means/variances
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 26
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 26


def test_configurable_sizes_change_counts():
    # DDN: each residual unit adds two conv+BN layers of 16 channels: 2 * (2,304 + 16 + 2*16 + 2*16).
    assert count_parameters(build("ddn", num_units=11), "trainable+bn_stats") == 58_175 - 2 * 2_384
    # PReNet: each ResBlock is 18,496 parameters; stages share weights so T does not change the count.
    assert count_parameters(build("prenet", num_resblocks=4)) == 168_963 - 18_496
    assert count_parameters(build("prenet", stages=3)) == 168_963
    assert count_parameters(build("prenet_r", num_resblocks=9)) == 94_979  # one shared block
    # 16 channels: conv_in 6*16*9+16, 5 ResBlocks 2*(16*16*9+16), LSTM 4*(32*16*9+16), conv_out 16*3*9+3.
    assert count_parameters(build("prenet", channels=16)) == 880 + 5 * 4_640 + 4 * 4_624 + 435
    # JORDER-E: each contextualized block is 6 convs of 64->64 (36,928), once per stage.
    assert count_parameters(build("jordere", num_blocks=8)) == 4_169_024 - 2 * 6 * 36_928


# --------------------------------------------------------------------------- forward behaviour
@pytest.mark.parametrize("name", NEW_BACKBONES)
def test_shapes_on_odd_input(name):
    kwargs = TINY[name] if name == "jordere" else {}  # published sizes, jordere reduced for speed
    model = build(name, **kwargs).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        out = run_backbone(model, x)
    assert out.residual.shape == x.shape
    assert torch.isfinite(out.residual).all()
    for value in out.aux.values():
        assert isinstance(value, torch.Tensor) and torch.isfinite(value).all()
    if name in PRENET_VARIANTS:
        assert out.aux["stages"].shape == (2, 6, 3, 37, 53)
    if name == "jordere":
        assert out.aux["stage1"].shape == x.shape
        assert out.aux["mask_logits"].shape == (2, 2, 37, 53)
        assert out.aux["level"].shape == (2, 3, 37, 53)
    if name.startswith("rescan"):
        assert out.aux["stage_rain"].shape == (2, 4, 3, 37, 53)
        torch.testing.assert_close(out.residual, out.aux["stage_rain"][:, -1])
    if name == "spanet":
        assert out.aux["attention"].shape == (2, 1, 37, 53)
    if name in ("spanet", "didmdn", "umrl"):  # they predict the clean image itself
        assert out.image is not None and torch.equal(out.restored, out.image)
    if name == "didmdn":
        assert out.aux["density_logits"].shape == (2, 3) and out.aux["rain"].shape == x.shape
    if name == "umrl":
        assert out.aux["restored_half"].shape == out.aux["confidence_half"].shape == (2, 3, 19, 27)
        assert out.aux["restored_quarter"].shape == out.aux["confidence_quarter"].shape == (2, 3, 10, 14)


@pytest.mark.parametrize("name", PRENET_VARIANTS)
def test_prenet_restored_is_last_stage(name):
    model = build(name, **TINY[name])
    x = torch.rand(1, 3, 17, 23)
    with torch.no_grad():
        out = run_backbone(model, x)
    torch.testing.assert_close(out.restored, out.aux["stages"][:, -1])


def test_jordere_restored_is_stage2_and_modulation_starts_as_identity():
    model = build("jordere", **TINY["jordere"])
    for stage in (model.stage1, model.stage2):
        for encoder in (stage.mask_scale, stage.level_scale):
            assert torch.all(encoder[2].weight == 0) and torch.all(encoder[2].bias == 1)
    x = torch.rand(1, 3, 17, 23)
    with torch.no_grad():
        out = run_backbone(model, x)
        x1, _, _, _ = model.stage1(x, x)
    torch.testing.assert_close(out.aux["stage1"], x1)
    assert not torch.allclose(out.restored, out.aux["stage1"])


def test_ddn_clean_is_input_plus_negative_residual():
    model = build("ddn", **TINY["ddn"]).eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        n = model.head(model.units(torch.relu(model.stem(x - model.base_filter(x)))))
        torch.testing.assert_close(run_backbone(model, x).restored, x + n)


def test_guided_filter_against_direct_computation():
    from restorekit.models.ddn import box_mean, guided_filter

    x = torch.rand(1, 2, 11, 9)
    r = 2
    ref = torch.empty_like(x)
    for i in range(11):
        for j in range(9):
            ref[..., i, j] = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean((-2, -1))
    torch.testing.assert_close(box_mean(x, r), ref)
    # Radius larger than the image: every window is the whole image.
    torch.testing.assert_close(box_mean(x, 40), x.mean((-2, -1), keepdim=True).expand_as(x))
    # Tiny eps: a self-guided filter keeps the image; a constant image is kept for any eps.
    torch.testing.assert_close(guided_filter(x, x, 3, 1e-9), x, atol=1e-4, rtol=0)
    const = torch.full((1, 3, 8, 8), 0.7)
    torch.testing.assert_close(guided_filter(const, const, 15, 1.0), const)


def test_ddn_eval_is_deterministic_and_batch_independent():
    model = build("ddn", **TINY["ddn"])
    x = torch.rand(4, 3, 24, 24)
    model.train()
    for _ in range(3):  # two-pass DT style: running stats see two batches per step
        model(x)
        model(torch.rand(4, 3, 24, 24))
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
        alone = model(x[:1])
    assert torch.equal(a, b)
    torch.testing.assert_close(alone, a[:1])


def test_ddn_head_gamma_sets_the_starting_residual_scale():
    # In training mode the last BatchNorm normalises each channel of the batch, so the residual's
    # standard deviation starts at exactly γ: 1 (the authors') or a small value near the identity.
    x = torch.rand(4, 3, 24, 24)
    for gamma in (1.0, 0.05):
        residual = build("ddn", **TINY["ddn"], head_gamma=gamma).train()(x)
        std = residual.transpose(0, 1).reshape(3, -1).std(dim=1, unbiased=False)
        torch.testing.assert_close(std, torch.full((3,), gamma), rtol=1e-3, atol=1e-4)
    assert torch.equal(build("ddn", **TINY["ddn"], head_gamma=0.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="head_gamma"):
        build("ddn", head_gamma=-0.1)


def test_ddn_train_mode_uses_batch_statistics():
    model = build("ddn", **TINY["ddn"]).train()
    before = model.stem[1].running_mean.clone()
    model(torch.rand(2, 3, 16, 16))
    assert not torch.equal(before, model.stem[1].running_mean)
    assert model.stem[1].num_batches_tracked.item() == 1


@pytest.mark.parametrize("name", NEW_BACKBONES)
def test_safetensors_round_trip(name, tmp_path):
    model = build(name, **TINY[name]).eval()
    path = tmp_path / f"{name}.safetensors"
    save_file(model.state_dict(), str(path))
    torch.manual_seed(123)  # a differently initialised twin
    twin = restorekit.BACKBONES.build({"type": name, **TINY[name]}).eval()
    twin.load_state_dict(load_file(str(path)))
    x = torch.rand(1, 3, 19, 21)
    with torch.no_grad():
        a, b = run_backbone(model, x), run_backbone(twin, x)
    assert torch.equal(a.residual, b.residual) and torch.equal(a.restored, b.restored)
    for key in a.aux:
        assert torch.equal(a.aux[key], b.aux[key])


# --------------------------------------------------------------------------- jordere loss
def _consistent_restoration(degraded, clean, rain, confidence: float = 30.0) -> Restoration:
    from restorekit.losses.structured import rain_mask_target

    mask = rain_mask_target(rain)
    logits = torch.stack([(1 - mask) * confidence, mask * confidence], dim=1).float()
    aux = {"stage1": clean.clone(), "mask_logits": logits, "level": -rain}
    return Restoration(degraded, degraded - clean, aux)


def test_jordere_loss_is_zero_for_perfect_outputs():
    loss = restorekit.LOSSES.build("jordere")
    degraded, clean, rain = rainy_pair()
    restoration = _consistent_restoration(degraded, clean, rain)
    value = loss(restoration.restored, clean, restoration=restoration, rain=rain)
    assert 0 <= value.item() < 1e-6


def test_jordere_loss_is_positive_for_each_wrong_part():
    loss = restorekit.LOSSES.build("jordere")
    degraded, clean, rain = rainy_pair()
    good = _consistent_restoration(degraded, clean, rain)
    perfect = loss(clean, clean, restoration=good, rain=rain).item()
    assert loss(degraded, clean, restoration=good, rain=rain).item() > perfect + 1e-3  # final image wrong
    for key, wrong in [
        ("stage1", degraded),
        ("mask_logits", -good.aux["mask_logits"]),
        ("level", torch.zeros_like(rain)),
    ]:
        bad = Restoration(good.input, good.residual, {**good.aux, key: wrong})
        assert loss(clean, clean, restoration=bad, rain=rain).item() > perfect + 1e-5, key


def test_jordere_loss_weights_are_arguments():
    degraded, clean, rain = rainy_pair()
    good = _consistent_restoration(degraded, clean, rain)
    bad = Restoration(good.input, good.residual, {**good.aux, "level": torch.zeros_like(rain)})
    small = restorekit.LOSSES.build({"type": "jordere", "level_weight": 1e-2})
    large = restorekit.LOSSES.build({"type": "jordere", "level_weight": 1.0})
    assert large(clean, clean, restoration=bad, rain=rain) == pytest.approx(
        100 * small(clean, clean, restoration=bad, rain=rain).item(), rel=1e-5
    )


def test_jordere_loss_needs_context():
    loss = restorekit.LOSSES.build("jordere")
    degraded, clean, rain = rainy_pair()
    with pytest.raises(ValueError, match="restoration=.*rain="):
        loss(degraded, clean)
    with pytest.raises(ValueError, match="rain="):
        loss(degraded, clean, restoration=_consistent_restoration(degraded, clean, rain))
    with pytest.raises(ValueError, match="restoration="):
        loss(degraded, clean, restoration=Restoration(degraded, rain), rain=rain)  # no aux outputs


def test_mask_target_marks_rain():
    from restorekit.losses.structured import rain_mask_target

    _, _, rain = rainy_pair()
    target = rain_mask_target(rain)
    assert target.dtype == torch.long and target.shape == (1, 24, 24)
    assert torch.equal(target.bool(), rain.mean(1) > 0.02)
    assert 0 < target.float().mean() < 0.5


# --------------------------------------------------------------------------- a few training steps
@pytest.mark.parametrize("name", NEW_BACKBONES)
def test_default_loss_decreases_with_training(name):
    model = build(name, **TINY[name]).train()
    loss_fn = restorekit.LOSSES.build(model.default_loss)
    degraded, clean, rain = rainy_pair()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        out = run_backbone(model, degraded)
        loss = loss_fn(out.restored, clean, restoration=out, rain=rain)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
