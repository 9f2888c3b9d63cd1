"""The paper's network: published counts, the residual contract, the authors' checkpoint layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import restorekit
from restorekit.cli import main
from restorekit.model_file import load_model
from restorekit.models import count_parameters, run_backbone


def test_published_parameter_counts():
    hagg = restorekit.BACKBONES.build({"type": "hagg"})
    assert count_parameters(hagg, "weights") == 51_552  # paper Table IV: conv weights only
    assert count_parameters(hagg, "trainable") == 51_843  # with the 291 biases
    assert count_parameters(restorekit.DETAIL_BLOCKS.build("deb")) == 3_203
    assert count_parameters(restorekit.DETAIL_BLOCKS.build("deb_did")) == 883
    # 55,046 = the authors' Rain1400/Rain200L generator checkpoint (network + DEB)
    assert count_parameters(hagg) + 3_203 == 55_046


@pytest.mark.parametrize("blocks, weights", [(4, 33_120), (6, 51_552), (8, 69_984), (10, 88_416)])
def test_block_count_variants_of_table_viii(blocks, weights):
    # each extra pair of blocks adds 2 MSDC blocks (4 convs) and 2 nodes: 4·2304 + 2·4608
    assert count_parameters(restorekit.BACKBONES.build({"type": "hagg", "num_blocks": blocks}), "weights") == weights


def test_residual_contract_on_odd_sizes():
    net = restorekit.BACKBONES.build({"type": "hagg"}).eval()
    x = torch.rand(2, 3, 37, 53)
    out = run_backbone(net, x)
    assert out.residual.shape == x.shape
    assert out.residual.abs().max() < 1  # tanh head
    assert torch.equal(out.restored, x - out.residual)


def test_zero_head_starts_as_the_identity_and_still_learns():
    torch.manual_seed(0)
    net = restorekit.BACKBONES.build({"type": "hagg", "init": "kaiming", "head_init": "zero"})
    x = torch.rand(2, 3, 32, 32)
    out = run_backbone(net, x)
    assert torch.equal(out.restored, x)  # residual exactly 0: tanh starts unsaturated
    out.residual.sum().backward()  # tanh'(0) = 1: the head gets a gradient at once
    assert net.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="head_init"):
        restorekit.BACKBONES.build({"type": "hagg", "head_init": "ones"})


def test_identity_detail_block_passes_the_residual_where_the_authors_init_attenuates_it():
    torch.manual_seed(0)
    r = torch.randn(2, 3, 32, 32) * 0.1
    authors = restorekit.DETAIL_BLOCKS.build("deb")
    identity = restorekit.DETAIL_BLOCKS.build({"type": "deb", "init": "identity"})
    with torch.no_grad():
        assert float(authors(r).abs().mean() / r.abs().mean()) < 0.01
        assert float((identity(r) - r).abs().mean() / r.abs().mean()) < 0.3
    assert count_parameters(identity) == 3_203
    with pytest.raises(ValueError, match="channels >= 2"):
        restorekit.DETAIL_BLOCKS.build({"type": "deb", "init": "identity", "channels": 4})


def test_odd_block_count_is_rejected():
    with pytest.raises(ValueError, match="even number"):
        restorekit.BACKBONES.build({"type": "hagg", "num_blocks": 5})


# --------------------------------------------------------------------------- authors' layout
def authors_state_dict(did: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the key names and shapes of the authors' released generator."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, cin, cout):
        state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.1
        state[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.1

    conv("inc.0", 3, 16)
    for k in (1, 2, 3):
        for j in (1, 2):
            conv(f"block{k}.conv{j}.conv1.0", 16, 16)
            conv(f"block{k}.conv{j}.dilated_conv", 16, 16)
        conv(f"block{k}.merge.0", 32, 16)
    conv("merge11.0", 32, 16)
    conv("merge12.0", 32, 16)
    conv("outc.0", 16, 3)
    if did:
        conv("out2.0", 3, 16)
        conv("out2.2", 16, 3)
    else:
        conv("out2.0", 3, 16)
        conv("out2.2", 16, 16)
        conv("out2.4", 16, 3)
    return state


def functional_forward(s: dict[str, torch.Tensor], x: torch.Tensor, did: bool = False):
    """The authors' topology (docs: model zoo, hagg) evaluated directly on their tensors."""

    def conv(name, t, dilation=1):
        return F.conv2d(t, s[f"{name}.weight"], s[f"{name}.bias"], padding=dilation, dilation=dilation)

    def msdc(prefix, f):
        f1 = F.relu(conv(f"{prefix}.conv1.0", f))
        return F.relu(conv(f"{prefix}.dilated_conv", f - f1, dilation=3) + f1)

    def node(name, a, b):
        return F.relu(conv(name, torch.cat([a, b], 1)))

    def agg(k, f):
        a1 = msdc(f"block{k}.conv1", f)
        return node(f"block{k}.merge.0", a1, msdc(f"block{k}.conv2", a1))

    fi = F.relu(conv("inc.0", x))
    a1 = agg(1, fi)
    n12 = node("merge11.0", a1, agg(2, a1))
    n3 = node("merge12.0", n12, agg(3, n12))
    r = torch.tanh(conv("outc.0", n3))
    if did:
        r2 = F.relu(conv("out2.2", F.relu(conv("out2.0", r))))
    else:
        r2 = conv("out2.4", F.relu(conv("out2.2", F.relu(conv("out2.0", r)))))
    return r, r2


@pytest.mark.parametrize("did", [False, True])
def test_convert_authors_checkpoint_matches_functional_topology(tmp_path, did):
    state = authors_state_dict(did)
    src = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}" if did else k: v for k, v in state.items()}, src)
    assert main(["convert", "--from", "rain-over-me", str(src), str(tmp_path / "converted.safetensors")]) == 0

    loaded = load_model(tmp_path / "converted.safetensors", with_detail_block=True)
    assert loaded.spec == {"type": "hagg", "channels": 16, "num_blocks": 6}
    x = torch.rand(1, 3, 29, 41)
    r_ref, r2_ref = functional_forward(state, x, did)
    with torch.no_grad():
        r = loaded.backbone(x)
        r2 = loaded.detail_block(r)
    torch.testing.assert_close(r, r_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(r2, r2_ref, rtol=0, atol=1e-6)


def test_convert_rejects_foreign_state_dicts(tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, src)
    assert main(["convert", "--from", "rain-over-me", str(src), str(tmp_path / "x.safetensors")]) == 2
    assert main(["convert", "--from", "unknown-format", str(src), str(tmp_path / "x.safetensors")]) == 2
