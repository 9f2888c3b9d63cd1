"""The registry: built-ins are lazy and agree with their decorators, misses and duplicates
give messages that say what to do, and ``build`` checks arguments against the signature."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from torch import nn

import restorekit
from restorekit.errors import ConfigError, RegistryError, UnknownNameError
from restorekit.registries import REGISTRIES
from restorekit.registry import Registry


def test_import_restorekit_imports_no_network_code_nor_torch():
    code = "import sys, restorekit; print(sorted(m for m in sys.modules if m.startswith(('torch', 'restorekit.models', 'cv2'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_builtin_table_agrees_with_decorators(kind):
    """Every built-in target resolves to an object its module registered under the same name."""
    registry = REGISTRIES[kind]
    for name, target in registry.builtin_table().items():
        obj = registry.get(name)
        assert f"{obj.__module__}:{obj.__qualname__}" == target
        assert registry.info(name).source == "builtin"
    # and every restorekit object decorated into this registry is in the table
    modules = {t.split(":")[0] for t in registry.builtin_table().values()}
    for module in modules:
        importlib.import_module(module)
    registered = {n for n in registry.names() if registry.info(n).target.startswith("restorekit.")}
    assert registered == set(registry.builtin_table())


def test_unknown_name_lists_names_and_suggests():
    with pytest.raises(UnknownNameError) as err:
        restorekit.BACKBONES.get("hag")
    message = str(err.value)
    assert "Did you mean 'hagg'" in message
    assert "prenet" in message and "restorekit list backbones" in message


def test_names_with_wildcards_are_naturally_sorted():
    assert restorekit.BACKBONES.names("pr*") == ["prenet", "prenet_r", "prn", "prn_r"]
    reg = Registry("thing")
    for n in ("net10", "net2", "net1"):
        reg.register(n, lambda: None)
    assert reg.names() == ["net1", "net2", "net10"]


def test_duplicate_names_are_errors_naming_both():
    reg = Registry("thing")

    @reg.register("a")
    class First:
        pass

    with pytest.raises(RegistryError, match="already registered by .*First"):

        @reg.register("a")
        class Second:
            pass

    reg.register("a", First)  # the same object again is a no-op


def test_runtime_registration_cannot_take_a_builtin_name():
    with restorekit.BACKBONES.scoped():
        with pytest.raises(RegistryError, match="HAgg.*cannot take the same name|built-in .*HAgg"):

            @restorekit.BACKBONES.register("hagg")
            class Impostor(nn.Module):
                pass


def test_scoped_restores_the_registry():
    with restorekit.LOSSES.scoped():

        @restorekit.LOSSES.register("my_loss_for_test")
        class MyLoss(nn.Module):
            def forward(self, pred, target, **ctx):
                return (pred - target).abs().mean()

        assert "my_loss_for_test" in restorekit.LOSSES.names()
        assert restorekit.LOSSES.info("my_loss_for_test").source == "runtime"
    assert "my_loss_for_test" not in restorekit.LOSSES.names()


def test_bad_names_and_contracts_are_rejected():
    with pytest.raises(RegistryError, match="invalid backbone name"):
        restorekit.BACKBONES.register("Bad Name", nn.Identity)
    with restorekit.BACKBONES.scoped(), pytest.raises(RegistryError, match="not a subclass of Module"):
        restorekit.BACKBONES.register("not_a_module", type("NotAModule", (), {}))


def test_build_checks_arguments_against_the_signature():
    net = restorekit.BACKBONES.build({"type": "hagg", "num_blocks": 4})
    assert len(net.aggregations) == 2
    with pytest.raises(ConfigError, match="has no argument 'num_block'.*Did you mean 'num_blocks'") as err:
        restorekit.BACKBONES.build({"type": "hagg", "num_block": 4}, path="backbone")
    assert err.value.path == "backbone.num_block"
    with pytest.raises(ConfigError, match="expected int, got '6'") as err:
        restorekit.BACKBONES.build({"type": "hagg", "num_blocks": "6"}, path="backbone")
    assert err.value.path == "backbone.num_blocks"
    with pytest.raises(ConfigError, match="needs 'type"):
        restorekit.BACKBONES.build({"num_blocks": 4})
    # ints are accepted where floats are expected
    assert restorekit.SCHEDULERS.build({"type": "dynamic", "scale": 500}).scale == 500.0
