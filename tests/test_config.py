"""Configs: inheritance, overrides and strict validation, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorekit.config import apply_overrides, load_config, load_raw, parse_override
from restorekit.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
# configs/reproduce/ holds study files of tools/reproduce.py (tests/test_reproduce.py), not train configs.
CONFIGS = [c for c in CONFIGS if "_base_" not in c.parts and "reproduce" not in c.parts]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_config_validates(config):
    if "plugins" in config.parts:
        pytest.skip("plugin configs need their plugin installed (tested in tests/plugins)")
    resolved = load_config(config)
    assert resolved.config.train.iters >= 1


def test_base_inheritance_merges_mappings_and_replaces_components(tmp_path):
    write(tmp_path / "base.yaml", "backbone: {type: hagg, num_blocks: 8}\ntrain: {iters: 10, lr: 1e-3}\n")
    child = write(tmp_path / "sub" / "child.yaml", "_base_: ../base.yaml\ntrain: {iters: 20}\n")
    raw = load_raw(child)
    assert raw["train"] == {"iters": 20, "lr": 1e-3}  # merged, and 1e-3 is a float (YAML 1.2)
    assert raw["backbone"] == {"type": "hagg", "num_blocks": 8}
    other = write(tmp_path / "other.yaml", "_base_: base.yaml\nbackbone: {type: ddn}\n")
    assert load_raw(other)["backbone"] == {"type": "ddn"}  # a new type drops the old type's keys


def test_inheritance_cycles_and_missing_bases_name_the_chain(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_raw(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "_base_: nope.yaml\n")
    with pytest.raises(ConfigError, match="'nope.yaml' not found"):
        load_raw(tmp_path / "c.yaml")


def test_duplicate_keys_and_unsafe_tags_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="duplicate key 'iters'"):
        load_raw(write(tmp_path / "dup.yaml", "train:\n  iters: 1\n  iters: 2\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_raw(write(tmp_path / "evil.yaml", "train: !!python/object/apply:os.system ['echo hi']\n"))


def test_overrides_parse_yaml_values_and_replace_component_types():
    keys, value = parse_override("train.betas=[0.9, 0.999]")
    assert keys == ["train", "betas"] and value == [0.9, 0.999]
    data = apply_overrides({"backbone": {"type": "hagg", "num_blocks": 8}}, ["backbone.type=ddn", "train.lr=2e-4"])
    assert data == {"backbone": {"type": "ddn"}, "train": {"lr": 2e-4}}
    for bad in ("train.iters", "=3", "train..iters=3", "train.iters=[1,"):
        with pytest.raises(ConfigError):
            apply_overrides({}, [bad])


@pytest.mark.parametrize(
    "override, path, fragment",
    [
        ("train.iters=-5", "train.iters", "must be >= 1"),
        ("train.iters=ten", "train.iters", "expected int"),
        ("trian.iters=5", "trian", "Did you mean 'train'"),
        ("data.crop_sise=64", "data.crop_sise", "Did you mean 'crop_size'"),
        ("backbone.type=prenett", "backbone.type", "Did you mean 'prenet'"),
        ("dt.soft_label.kernel_size=30", "dt.soft_label", "odd integer"),
        ("dt.weights.type=constant_then_linear", "dt.weights", "needs a loss_weights schedule"),
        ("runtime.precision=fp16", "runtime.precision", "one of 'fp32', 'bf16'"),
        ("data.rainy=/definitely/not/here", "data.rainy", "does not exist"),
        ("data.rainy=demo:rain/rainyy", "data.rainy", "Did you mean"),
    ],
)
def test_bad_values_fail_with_key_path_and_hint(override, path, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("configs/dt_hagg.yaml", [override])
    assert err.value.path == path
    assert fragment in str(err.value)
    assert "configs/dt_hagg.yaml" in str(err.value)


def test_sv_needs_a_paired_folder():
    with pytest.raises(ConfigError, match="needs a data folder") as err:
        load_config("configs/dt_hagg.yaml", ["method=sv"])
    assert err.value.path == "data.paired"


def test_imports_key_registers_local_components(tmp_path):
    write(
        tmp_path / "my_parts.py",
        "from torch import nn\nimport restorekit\n\n"
        "@restorekit.LOSSES.register('my_local_l1')\n"
        "class MyL1(nn.Module):\n"
        "    def forward(self, pred, target, **ctx):\n"
        "        return (pred - target).abs().mean()\n",
    )
    config = write(
        tmp_path / "c.yaml",
        f"_base_: {Path('configs/dt_hagg.yaml').resolve()}\nimports: [my_parts.py]\ndt: {{hard_loss: {{type: my_local_l1}}}}\n",
    )
    import restorekit

    with restorekit.LOSSES.scoped():
        assert load_config(config, imports="run").config.dt.hard_loss == {"type": "my_local_l1"}
    with pytest.raises(ConfigError, match="not found") as err:
        load_config(config, ["imports=[missing.py]"], imports="run")
    assert err.value.path == "imports[0]"
