"""Plugin discovery in the registry, with throw-away distributions written to a temporary folder
on ``sys.path``: what is imported when, how broken plugins and name clashes fail, the off switch,
and the ``imports:`` config key for unpackaged modules.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from torch import nn

from plugin_helpers import CONFIGS, NET_MODULE, FakeSite
from restorekit import BACKBONES, FILTERS, LOSSES, SCHEDULERS
from restorekit.config import load_config
from restorekit.errors import ConfigError, PluginLoadError, RegistryError, RestorekitError, UnknownNameError
from restorekit.registry import PLUGINS_ENV

GROUP = "restorekit.backbones"


def add_net_plugin(site: FakeSite, dist: str, name: str, module: str, version: str = "1.0", **kw) -> None:
    site.add(dist, version, {GROUP: {name: f"{module}:Net"}}, {module: NET_MODULE.format(name="Net")}, **kw)


# --------------------------------------------------------------------------- discovery and lazy import
def test_entry_point_name_is_the_key_and_listing_imports_nothing(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-restore", "acme_net", "rk_fake_acme", version="1.2.3")

    assert "acme_net" in BACKBONES.names()
    assert BACKBONES.names("acme_*") == ["acme_net"]
    assert "acme_net" in BACKBONES
    assert "rk_fake_acme" not in sys.modules, "listing names must read metadata only"
    (found,) = [p for p in BACKBONES.plugins() if p.name == "acme_net"]
    assert (found.dist, found.version, found.value, found.status) == ("acme-restore", "1.2.3", "rk_fake_acme:Net", "found")
    assert "rk_fake_acme" not in sys.modules, "plugins() without load=True must not import"

    cls = BACKBONES.get("acme_net")
    assert cls is sys.modules["rk_fake_acme"].Net
    assert BACKBONES.info("acme_net").source == "plugin:acme-restore==1.2.3"
    net = BACKBONES.build({"type": "acme_net", "channels": 8}, in_channels=3)
    assert isinstance(net, nn.Module)
    (found,) = [p for p in BACKBONES.plugins() if p.name == "acme_net"]
    assert found.status == "loaded"


def test_only_the_requested_plugin_is_imported(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-one", "acme_one", "rk_fake_one")
    add_net_plugin(fake_site, "acme-two", "acme_two", "rk_fake_two")
    BACKBONES.get("acme_one")
    assert "rk_fake_one" in sys.modules
    assert "rk_fake_two" not in sys.modules


def test_discovery_happens_on_first_need_and_is_cached(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch):
    add_net_plugin(fake_site, "acme-cached", "acme_cached", "rk_fake_cached")
    calls = []
    real = metadata.entry_points

    def counting(**kwargs):
        calls.append(kwargs.get("group"))
        return real(**kwargs)

    monkeypatch.setattr(metadata, "entry_points", counting)
    BACKBONES.refresh()
    assert calls == []
    BACKBONES.names()
    BACKBONES.names()
    BACKBONES.get("acme_cached")
    assert calls == [GROUP], "one metadata scan per registry, then the cache"


def test_refresh_finds_a_plugin_installed_after_discovery(fake_site: FakeSite):
    assert "acme_late" not in BACKBONES.names()
    add_net_plugin(fake_site, "acme-late", "acme_late", "rk_fake_late")
    assert "acme_late" not in BACKBONES.names(), "discovery is cached"
    BACKBONES.refresh()
    assert "acme_late" in BACKBONES.names()


def test_egg_info_distributions_are_found(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-egg", "acme_egg", "rk_fake_egg", version="0.3", layout="egg-info")
    assert BACKBONES.info("acme_egg").source == "plugin:acme-egg==0.3"


def test_unknown_names_suggest_plugin_names(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-restore", "acme_unet", "rk_fake_unet")
    with pytest.raises(UnknownNameError, match=r"Did you mean 'acme_unet'.*restorekit list backbones"):
        BACKBONES.get("acme_unte")


# --------------------------------------------------------------------------- every group
SOFT_LABEL_FILTER = """
from restorekit.filters.base import SoftLabelFilter

class Copy(SoftLabelFilter):
    def apply(self, image):
        return image.copy()
"""
LOSS = """
from torch import nn

class Loss(nn.Module):
    def forward(self, pred, target, **ctx):
        return (pred - target).abs().mean()
"""
SCHEDULE = """
from restorekit.schedulers.base import LossWeightSchedule

class Halves(LossWeightSchedule):
    def __call__(self, t):
        return 0.5, 0.5
"""


@pytest.mark.parametrize(
    "registry, group, source, attr",
    [
        (BACKBONES, "restorekit.backbones", NET_MODULE.format(name="Net"), "Net"),
        (FILTERS, "restorekit.filters", SOFT_LABEL_FILTER, "Copy"),
        (LOSSES, "restorekit.losses", LOSS, "Loss"),
        (SCHEDULERS, "restorekit.schedulers", SCHEDULE, "Halves"),
    ],
    ids=["backbones", "filters", "losses", "schedulers"],
)
def test_each_group_feeds_its_registry(fake_site: FakeSite, registry, group, source, attr):
    module = f"rk_fake_{group.split('.')[1]}"
    fake_site.add("acme-kinds", "2.0", {group: {"acme_thing": f"{module}:{attr}"}}, {module: source})
    assert "acme_thing" in registry.names()
    built = registry.build({"type": "acme_thing"})
    assert type(built).__name__ == attr
    assert registry.info("acme_thing").source == "plugin:acme-kinds==2.0"
    other_registries = {BACKBONES, FILTERS, LOSSES, SCHEDULERS} - {registry}
    assert all("acme_thing" not in other.names() for other in other_registries)


# --------------------------------------------------------------------------- broken plugins
def test_import_error_fails_only_for_its_own_name(fake_site: FakeSite):
    fake_site.add(
        "acme-broken", "0.1", {GROUP: {"broken_net": "rk_fake_broken:Net"}},
        {"rk_fake_broken": "import rk_fake_missing_dependency\n"},
    )
    add_net_plugin(fake_site, "acme-good", "good_net", "rk_fake_good")
    assert "broken_net" in BACKBONES.names()  # listing never imports, so it cannot fail

    with pytest.raises(PluginLoadError) as caught:
        BACKBONES.get("broken_net")
    message = str(caught.value)
    for part in ("acme-broken==0.1", "broken_net = rk_fake_broken:Net", GROUP, "ModuleNotFoundError",
                 "rk_fake_missing_dependency", "pip uninstall acme-broken", PLUGINS_ENV):
        assert part in message
    assert isinstance(caught.value, RestorekitError)  # the CLI prints it without a traceback

    assert BACKBONES.get("good_net").__name__ == "Net"
    assert BACKBONES.get("hagg").__name__ == "HAgg"
    status = {p.name: p.status for p in BACKBONES.plugins(load=True)}
    assert status["good_net"] == "loaded"
    assert status["broken_net"].startswith("error: ") and "ModuleNotFoundError" in status["broken_net"]


@pytest.mark.parametrize(
    "module_source, attr, complaint",
    [
        ("class NotANet:\n    pass\n", "NotANet", "not a subclass of Module"),
        ("NOT_CALLABLE = 3\n", "NOT_CALLABLE", "is not callable"),
        ("class Net:\n    pass\n", "Missing", "AttributeError"),
    ],
    ids=["wrong-class", "not-callable", "missing-attribute"],
)
def test_wrong_object_fails_naming_distribution_and_entry_point(fake_site: FakeSite, module_source, attr, complaint):
    fake_site.add("acme-wrong", "0.2", {GROUP: {"wrong_net": f"rk_fake_wrong:{attr}"}}, {"rk_fake_wrong": module_source})
    with pytest.raises(PluginLoadError, match=complaint) as caught:
        BACKBONES.get("wrong_net")
    assert "acme-wrong==0.2" in str(caught.value)
    assert f"wrong_net = rk_fake_wrong:{attr}" in str(caught.value)


def test_a_filter_plugin_must_be_a_soft_label_filter(fake_site: FakeSite):
    fake_site.add("acme-filter", "1.0", {"restorekit.filters": {"acme_blur": "rk_fake_blur:Net"}},
                  {"rk_fake_blur": NET_MODULE.format(name="Net")})
    with pytest.raises(PluginLoadError, match="acme-filter==1.0.*not a subclass of SoftLabelFilter"):
        FILTERS.get("acme_blur")


def test_a_factory_that_builds_the_wrong_type_names_the_plugin(fake_site: FakeSite):
    fake_site.add("acme-factory", "0.5", {GROUP: {"factory_net": "rk_fake_factory:make"}},
                  {"rk_fake_factory": "def make(in_channels: int = 3):\n    return 'not a network'\n"})
    with pytest.raises(PluginLoadError, match=r"acme-factory==0\.5.*factory_net = rk_fake_factory:make.*not a torch\.nn\.Module"):
        BACKBONES.build({"type": "factory_net"})


# --------------------------------------------------------------------------- name clashes
def test_plugin_named_like_a_builtin_is_an_error_naming_both(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-clash", "hagg", "rk_fake_clash")
    add_net_plugin(fake_site, "acme-fine", "fine_net", "rk_fake_fine")
    with pytest.raises(RegistryError) as caught:
        BACKBONES.get("hagg")
    message = str(caught.value)
    assert "acme-clash==1.0" in message and "hagg = rk_fake_clash:Net" in message
    assert "builtin backbone restorekit.models.hagg:HAgg" in message
    assert "rk_fake_clash" not in sys.modules, "a clash is found from metadata, without importing the plugin"
    assert BACKBONES.get("fine_net").__name__ == "Net"  # other names keep working
    (clash,) = [p for p in BACKBONES.plugins(load=True) if p.name == "hagg"]
    assert clash.status.startswith("error: ") and "clashes" in clash.status


def test_two_plugins_with_one_name_is_an_error_naming_both(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-left", "twin_net", "rk_fake_left")
    add_net_plugin(fake_site, "acme-right", "twin_net", "rk_fake_right", version="2.0")
    with pytest.raises(RegistryError) as caught:
        BACKBONES.get("twin_net")
    message = str(caught.value)
    assert "more than one plugin" in message
    assert "acme-left==1.0" in message and "acme-right==2.0" in message
    rows = [p for p in BACKBONES.plugins(load=True) if p.name == "twin_net"]
    assert {p.dist for p in rows} == {"acme-left", "acme-right"}
    assert all(p.status.startswith("error: ") for p in rows)


def test_plugin_named_like_a_runtime_registration_is_an_error(fake_site: FakeSite):
    add_net_plugin(fake_site, "acme-runtime", "local_net", "rk_fake_runtime")

    class LocalNet(nn.Module):
        pass

    BACKBONES.register("local_net", LocalNet)
    with pytest.raises(RegistryError, match=r"acme-runtime==1\.0.*clashes with the runtime backbone .*LocalNet"):
        BACKBONES.get("local_net")


def test_a_plugin_module_that_registers_itself_is_not_a_clash(fake_site: FakeSite):
    source = """
    from torch import nn
    from restorekit import BACKBONES

    @BACKBONES.register("self_net")
    class SelfNet(nn.Module):
        def forward(self, x):
            return x * 0
    """
    fake_site.add("acme-self", "1.1", {GROUP: {"self_net": "rk_fake_self:SelfNet"}}, {"rk_fake_self": source})
    # Through restorekit: the entry point imports the module, whose decorator registers it too.
    assert BACKBONES.get("self_net").__name__ == "SelfNet"
    assert BACKBONES.info("self_net").source == "plugin:acme-self==1.1"

    # The user imported the plugin's module before restorekit looked the name up.
    del sys.modules["rk_fake_self"]
    BACKBONES.refresh()  # forgets the loaded plugin, as in a fresh process
    import rk_fake_self  # noqa: F401

    assert BACKBONES.get("self_net") is rk_fake_self.SelfNet
    assert BACKBONES.info("self_net").source == "plugin:acme-self==1.1"


# --------------------------------------------------------------------------- the off switch
@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_environment_variable_turns_discovery_off(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch, value):
    add_net_plugin(fake_site, "acme-off", "off_net", "rk_fake_off")
    monkeypatch.setenv(PLUGINS_ENV, value)
    BACKBONES.refresh()
    assert "off_net" not in BACKBONES.names()
    assert BACKBONES.plugins() == []
    with pytest.raises(UnknownNameError, match=f"plugins are off: {PLUGINS_ENV} is set"):
        BACKBONES.get("off_net")
    assert BACKBONES.get("hagg").__name__ == "HAgg"


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_false_values_leave_discovery_on(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch, value):
    add_net_plugin(fake_site, "acme-on", "on_net", "rk_fake_on")
    monkeypatch.setenv(PLUGINS_ENV, value)
    BACKBONES.refresh()
    assert "on_net" in BACKBONES.names()


# --------------------------------------------------------------------------- imports: in a config
LOCAL_MODULE = """
from torch import nn
from restorekit import BACKBONES

@BACKBONES.register("{name}")
class LocalNet(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""


def write_config(folder: Path, imports: list[str], backbone: str) -> Path:
    config = folder / "local.yaml"
    config.write_text(
        f"_base_: {CONFIGS / 'dt_hagg.yaml'}\n"
        f"imports: {imports}\n"
        f"backbone: {{type: {backbone}, width: 8}}\n"
        "eval: {data: null}\n"
    )
    return config


@pytest.mark.parametrize("form", ["file", "module"])
def test_imports_key_loads_local_modules_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form):
    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "rk_fake_local_nets.py").write_text(LOCAL_MODULE.format(name=f"rk_local_{form}"))
    entry = "rk_fake_local_nets.py" if form == "file" else "rk_fake_local_nets"
    config = write_config(folder, [entry], f"rk_local_{form}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the config file, not to the working folder

    resolved = load_config(config, check_data_folders=False, imports="run")
    assert resolved.config.backbone == {"type": f"rk_local_{form}", "width": 8}
    assert BACKBONES.info(f"rk_local_{form}").source == "runtime"
    assert isinstance(BACKBONES.build(resolved.config.backbone)(torch.rand(1, 3, 5, 7)), torch.Tensor)


@pytest.mark.parametrize(
    "entry, source, complaint",
    [
        ("rk_fake_absent.py", None, "rk_fake_absent.py' not found"),  # named by its path beside the config
        ("rk_fake_absent_module", None, "cannot import 'rk_fake_absent_module': ModuleNotFoundError"),
        ("rk_fake_raises.py", "raise RuntimeError('half-written experiment')\n", "RuntimeError: half-written experiment"),
    ],
    ids=["missing-file", "missing-module", "module-raises"],
)
def test_imports_key_fails_hard(tmp_path: Path, entry, source, complaint):
    if source is not None:
        (tmp_path / entry).write_text(source)
    config = write_config(tmp_path, [entry], "hagg")
    with pytest.raises(ConfigError, match=complaint) as caught:
        load_config(config, check_data_folders=False, imports="run")
    assert caught.value.path == "imports[0]"
