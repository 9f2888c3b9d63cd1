"""RESCAN, SPANet, DID-MDN and UMRL: their parts, their published counts where those need a
convention, their own losses, and the contract for networks that predict the clean image.
(The parametrised zoo tests of tests/test_backbone_zoo.py cover shapes, training and files.)
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import restorekit
from restorekit.inference import Restorer
from restorekit.losses.backbones import density_class
from restorekit.models.contract import Restoration, count_parameters, run_backbone
from restorekit.models.irnn import RowScan, irnn_reference, irnn_scan
from restorekit.receptive_field import NonLocalBackboneError


def build(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return restorekit.BACKBONES.build({"type": name, **kwargs})


def rainy_pair(h: int = 24, w: int = 24, seed: int = 0, density: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    clean = torch.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 - 0.3 * xx * yy])[None]
    streaks = (torch.rand(1, 1, h, w, generator=g) < density).float() * 0.4
    degraded = (clean + streaks).clamp(0, 1)
    return degraded, clean, degraded - clean


def n_params(*modules: nn.Module) -> int:
    return sum(count_parameters(m) for m in modules)


# --------------------------------------------------------------------------- contract
class Direct(nn.Module):
    def forward(self, x):
        return {"restored": x * 0.5, "extra": x}


def test_a_backbone_may_return_the_restored_image_itself():
    x = torch.rand(1, 3, 5, 7, dtype=torch.bfloat16)
    out = run_backbone(Direct(), x)
    assert torch.equal(out.restored, x * 0.5)  # the network's own output, not x - (x - y)
    assert torch.equal(out.residual, x - x * 0.5) and set(out.aux) == {"extra"}
    assert torch.equal(Restoration(x, x).restored, torch.zeros_like(x))  # residual-only as before


def test_a_backbone_must_not_return_both_residual_and_restored():
    class Both(nn.Module):
        def forward(self, x):
            return {"restored": x, "residual": x}

    with pytest.raises(TypeError, match="exactly one of the keys 'residual' and 'restored'.*keys"):
        run_backbone(Both(), torch.rand(1, 3, 4, 4))


# --------------------------------------------------------------------------- IRNN
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 6, 6), (1, 2, 1, 6), (1, 4, 6, 1)])
def test_irnn_scan_equals_the_direct_loop(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    c = shape[1]
    # Weights of both signs and above 1, biases of both signs: every branch of the ReLU recurrence.
    weight = (torch.rand(4, c, generator=g, dtype=torch.float64) * 1.6 - 0.4).requires_grad_()
    bias = (torch.randn(4, c, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    fast, slow = irnn_scan(x, weight, bias), irnn_reference(x, weight, bias)
    for direction, a, b in zip(("up", "right", "down", "left"), fast, slow):
        torch.testing.assert_close(a, b, msg=direction)
    # The hand-written backward agrees with autograd through the loop.
    probe = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(4)]
    grads_fast = torch.autograd.grad(sum((o * p).sum() for o, p in zip(fast, probe)), (x, weight, bias))
    grads_slow = torch.autograd.grad(sum((o * p).sum() for o, p in zip(slow, probe)), (x, weight, bias))
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b)


def test_irnn_directions_accumulate_from_their_side():
    x = torch.zeros(1, 1, 3, 4)
    x[0, 0, 1, 2] = 1.0  # one spike; weight 1, bias 0: each scan carries it on in its own direction
    up, right, down, left = irnn_scan(x, torch.ones(4, 1), torch.zeros(4, 1))
    assert torch.equal(right[0, 0, 1], torch.tensor([0.0, 0.0, 1.0, 1.0]))  # from the left edge rightwards
    assert torch.equal(left[0, 0, 1], torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert torch.equal(down[0, 0, :, 2], torch.tensor([0.0, 1.0, 1.0]))  # from the top downwards
    assert torch.equal(up[0, 0, :, 2], torch.tensor([1.0, 1.0, 0.0]))


def test_row_scan_gradcheck_and_bfloat16():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(2, 3, generator=g, dtype=torch.float64).requires_grad_()
    b = (torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.2).requires_grad_()
    assert torch.autograd.gradcheck(RowScan.apply, (x, w, b))
    # bfloat16 in, bfloat16 out, computed in float32 (close to the float32 result).
    xb = torch.randn(1, 3, 8, 9, generator=g).bfloat16()
    weight, bias = torch.full((4, 3), 0.2), torch.zeros(4, 3)
    for lo, hi in zip(irnn_scan(xb, weight, bias), irnn_scan(xb.float(), weight, bias)):
        assert lo.dtype == torch.bfloat16
        torch.testing.assert_close(lo.float(), hi, atol=0.05, rtol=0.02)


# --------------------------------------------------------------------------- RESCAN
def test_rescan_units_and_sizes():
    assert count_parameters(build("rescan", unit="conv")) == 28_695  # the authors' plain-conv setting
    # ConvGRU unit 24->24: 3 input + 3 state convs of 5,208, SE 318; each extra depth adds one.
    assert count_parameters(build("rescan", depth=8)) == 149_823 + 6 * 5_208 + 318
    assert count_parameters(build("rescan", stages=7)) == 149_823  # stages share weights
    with pytest.raises(ValueError, match="key 'unit': expected one of 'gru', 'lstm', 'rnn', 'conv'"):
        build("rescan", unit="transformer")  # the registry checks the argument against its Literal
    from restorekit.models.rescan import RESCAN

    with pytest.raises(ValueError, match="rescan unit must be one of"):
        RESCAN(unit="transformer")


def test_rescan_stages_restart_from_the_input_minus_the_rain():
    model = build("rescan", channels=8, stages=3, depth=4).eval()
    x = torch.rand(1, 3, 13, 11)
    with torch.no_grad():
        stages = run_backbone(model, x).aux["stage_rain"]
        one = build("rescan", channels=8, stages=1, depth=4).eval()(x)["stage_rain"]
    torch.testing.assert_close(stages[:, 0], one[:, 0])  # the first stage does not see later ones
    assert not torch.allclose(stages[:, 1], stages[:, 0])


# --------------------------------------------------------------------------- SPANet
def test_spanet_predicts_the_clean_image_without_a_skip():
    model = build("spanet", channels=8).eval()
    with torch.no_grad():
        model.conv_out.weight.zero_()
        out = run_backbone(model, torch.rand(1, 3, 9, 10))
    assert torch.equal(out.restored, torch.zeros(1, 3, 9, 10))  # a residual network would return x
    assert 0 < out.aux["attention"].min() and out.aux["attention"].max() < 1


def test_spanet_direction_attention_is_the_only_difference():
    with_branch, without = build("spanet"), build("spanet", direction_attention=False)
    branch = with_branch.sam.direction_weights
    assert count_parameters(without) == 276_704 == 283_716 - count_parameters(branch)
    # Weights 1 in every direction reproduce the authors' released function (their .mul is discarded).
    without.load_state_dict(with_branch.state_dict(), strict=False)
    with torch.no_grad():
        branch[4].weight.zero_()
        branch[4].bias.fill_(30.0)  # sigmoid(30) = 1 to float precision
        x = torch.rand(1, 3, 12, 9)
        torch.testing.assert_close(with_branch(x)["restored"], without(x)["restored"])


# --------------------------------------------------------------------------- DID-MDN and UMRL counts
def test_didmdn_counts_against_the_authors_module():
    fixed, full = build("didmdn", density_classifier=False), build("didmdn")
    assert count_parameters(fixed) == 365_236
    assert count_parameters(full) - count_parameters(fixed) == n_params(full.classifier, full.classifier_fc) == 7_875
    # The authors' Dense_rain also builds, per stream, five 3x3 side convolutions of which it
    # calls only the first; streams 5 and 7 an unused conv (11->20), refine conv (24->3) and two
    # BatchNorms; the fusion stage two BatchNorms: 7,603 parameters in all, 372,839 in total.
    conv = nn.Conv2d
    unused = [conv(12, 1, 3), conv(12, 1, 3), conv(24, 1, 3), conv(8, 1, 3), conv(8, 1, 3)]  # 3x3 stream
    for _ in range(2):  # the 5x5 and 7x7 streams
        unused += [conv(16, 1, 3), conv(16, 1, 3), conv(32, 1, 3), conv(16, 1, 3), conv(8, 1, 3)]
        unused += [conv(11, 20, 3), conv(24, 3, 3), nn.BatchNorm2d(20), nn.BatchNorm2d(1)]
    unused += [nn.BatchNorm2d(20), nn.BatchNorm2d(1)]
    assert n_params(*unused) == 7_603
    assert count_parameters(fixed) + 7_603 == 372_839


def test_umrl_count_against_the_published_one():
    # The authors' module (and its checkpoints) also hold two BatchNorms and a 16->16 conv of
    # the confidence module that forward never calls; with them, the published 984,356.
    assert count_parameters(build("umrl")) == 981_994
    assert 981_994 + n_params(nn.BatchNorm2d(20), nn.BatchNorm2d(1), nn.Conv2d(16, 16, 3)) == 984_356


# --------------------------------------------------------------------------- DID-MDN behaviour
def test_didmdn_label_map_is_the_classifiers_class():
    model = build("didmdn").eval()
    x = torch.rand(3, 3, 16, 24)
    with torch.no_grad():
        out = model(x)
        classes = out["density_logits"].argmax(1)
        for i, c in enumerate(classes.tolist()):
            fixed = build("didmdn", density_classifier=False, density=c).eval()
            fixed.load_state_dict(model.state_dict(), strict=False)  # everything but the classifier
            torch.testing.assert_close(fixed(x[i : i + 1])["restored"], out["restored"][i : i + 1])
        a = build("didmdn", density_classifier=False, density=0).eval()(x)["restored"]
        b = build("didmdn", density_classifier=False, density=2).eval()(x)["restored"]
    assert not torch.allclose(a, b)  # the label changes the result
    with pytest.raises(ValueError, match="density must be 0"):
        build("didmdn", density_classifier=False, density=3)


def test_density_class_reads_the_rain_coverage():
    light = rainy_pair(density=0.01)[2]
    medium = rainy_pair(density=0.1)[2]
    heavy = rainy_pair(density=0.5)[2]
    assert density_class(torch.cat([heavy, medium, light])).tolist() == [0, 1, 2]
    assert density_class(torch.zeros(1, 3, 8, 8)).tolist() == [2]


def test_umrl_scales_are_the_subsampled_image():
    model = build("umrl").eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = model(x)
    for key in ("restored", "restored_half", "restored_quarter"):
        assert 0 < out[key].min() and out[key].max() < 1
    for key in ("confidence", "confidence_half", "confidence_quarter"):
        assert 0 < out[key].min() and out[key].max() < 1
    assert out["restored_half"].shape[-2:] == (16, 24) and out["restored_quarter"].shape[-2:] == (8, 12)


@pytest.mark.parametrize("name", ["rescan", "spanet", "didmdn", "umrl"])
def test_networks_that_cannot_be_tiled_say_so(name):
    network = build(name, **({"channels": 8} if name in ("rescan", "spanet") else {})).eval()
    x = torch.rand(1, 3, 40, 40)
    whole = Restorer(network).restore_tensor(x)  # whole images work
    assert whole.shape == x.shape
    with pytest.raises(NonLocalBackboneError, match="cannot be restored tile by tile"):
        Restorer(network, tile=16).restore_tensor(x)


# --------------------------------------------------------------------------- the losses
def loss(name: str, **kwargs):
    return restorekit.LOSSES.build({"type": name, **kwargs})


def test_rescan_loss_sums_the_stages():
    degraded, clean, rain = rainy_pair()
    exact = torch.stack([rain, rain], dim=1)
    perfect = Restoration(degraded, rain, {"stage_rain": exact})
    assert loss("rescan")(clean, clean, restoration=perfect, rain=rain).item() == 0
    one_off = Restoration(degraded, rain, {"stage_rain": torch.stack([rain + 0.1, rain], dim=1)})
    both_off = Restoration(degraded, rain, {"stage_rain": exact + 0.1})
    value = loss("rescan")(clean, clean, restoration=one_off, rain=rain).item()
    assert value == pytest.approx(0.01, rel=1e-4)
    assert loss("rescan")(clean, clean, restoration=both_off, rain=rain).item() == pytest.approx(2 * value, rel=1e-4)


def test_spanet_loss_parts():
    from restorekit.losses.structured import rain_mask_target

    degraded, clean, rain = rainy_pair()
    mask = rain_mask_target(rain).float()[:, None]
    good = Restoration(degraded, rain, {"attention": mask})
    assert loss("spanet")(clean, clean, restoration=good, rain=rain).item() < 1e-6
    assert loss("spanet")(degraded, clean, restoration=good, rain=rain).item() > 1e-3  # wrong image
    wrong = Restoration(degraded, rain, {"attention": 1 - mask})
    assert loss("spanet")(clean, clean, restoration=wrong, rain=rain).item() == pytest.approx(1.0)  # MSE of 0/1 flips
    assert loss("spanet", mask_weight=0)(clean, clean, restoration=wrong, rain=rain).item() < 1e-6


def test_didmdn_loss_trains_the_classifier_on_the_known_rain():
    degraded, clean, rain = rainy_pair()  # medium coverage: class 1
    right = Restoration(degraded, rain, {"density_logits": torch.tensor([[0.0, 20.0, 0.0]])})
    wrong = Restoration(degraded, rain, {"density_logits": torch.tensor([[20.0, 0.0, 0.0]])})
    assert loss("didmdn")(clean, clean, restoration=right, rain=rain).item() < 1e-6
    assert loss("didmdn")(clean, clean, restoration=wrong, rain=rain).item() == pytest.approx(0.2, rel=1e-3)
    # Without a classifier there is nothing to classify: the L1 alone, and no rain needed.
    assert loss("didmdn")(degraded, clean, restoration=Restoration(degraded, rain)).item() == pytest.approx(
        (degraded - clean).abs().mean().item()
    )
    with pytest.raises(ValueError, match="rain="):
        loss("didmdn")(clean, clean, restoration=wrong)


def test_umrl_loss_weighs_errors_by_confidence():
    degraded, clean, _ = rainy_pair(32, 32)

    def outputs(image, confidence):
        aux = {"restored_half": image[..., ::2, ::2], "restored_quarter": image[..., ::4, ::4]}
        for suffix, step in (("", 1), ("_half", 2), ("_quarter", 4)):
            aux["confidence" + suffix] = torch.full_like(image[..., ::step, ::step], confidence)
        return Restoration(degraded, degraded - image, aux, image=image)

    fn = loss("umrl")
    exact = fn(clean, clean, restoration=outputs(clean, 1.0)).item()
    assert abs(exact) < 1e-6
    fit_only = loss("umrl", lam=0.0)
    confident = fit_only(degraded, clean, restoration=outputs(degraded, 1.0)).item()
    unsure = fit_only(degraded, clean, restoration=outputs(degraded, 0.5)).item()
    assert confident > 1e-4 and unsure < confident  # low confidence hides the error ...
    # ... but costs -λ Σ log c: at c = 0.5 everywhere the log term is 3 channels × (1 + 2/4 + 4/16) × ln 2,
    # above the authors' 0.25, so λ keeps its starting 0.1.
    penalised = fn(degraded, clean, restoration=outputs(degraded, 0.5)).item()
    assert penalised - unsure == pytest.approx(0.1 * 3 * 1.75 * math.log(2), rel=1e-5)
    # Near-certain confidences: the log term is ~0 and the authors' rule shrinks λ to 0.009·0.02.
    assert fn(degraded, clean, restoration=outputs(degraded, 1.0)).item() == pytest.approx(confident, rel=1e-5)
    with pytest.raises(ValueError, match="restoration="):
        fn(clean, clean, restoration=Restoration(degraded, degraded - clean))


@pytest.mark.parametrize("name", ["rescan", "spanet"])
def test_losses_that_need_the_rain_say_so(name):
    degraded, clean, rain = rainy_pair()
    with pytest.raises(ValueError, match="restoration=.*rain="):
        loss(name)(degraded, clean)
