"""The command line with plugins installed, each command in a fresh process as a user runs it:
``import restorekit`` and ``restorekit list`` import no plugin, ``info`` and ``plugins`` do,
broken plugins and clashes fail only where they matter, and ``--no-plugins`` turns them off.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import CONFIGS, NET_MODULE, QUICK_TRAINING, FakeSite, parse_json_line

from restorekit.registry import PLUGINS_ENV

EXAMPLE_ROW = "restorekit-example==0.1.0"


@pytest.fixture
def broken_site(fake_site: FakeSite) -> FakeSite:
    """The example plugin plus a throw-away distribution whose module fails to import."""
    fake_site.add(
        "acme-broken", "0.1", {"restorekit.backbones": {"broken_net": "rk_fake_broken_cli:Net"}},
        {"rk_fake_broken_cli": "raise ImportError('needs a GPU library that is not installed')\n"},
    )
    return fake_site


def test_import_restorekit_imports_no_plugin_and_reads_no_metadata(run_cli):
    probe = """
import importlib.metadata, json, sys
scans = []
real = importlib.metadata.entry_points
importlib.metadata.entry_points = lambda **kw: scans.append(kw.get("group")) or real(**kw)
import restorekit
after_import = list(scans)
names = restorekit.BACKBONES.names() + restorekit.FILTERS.names()
plugin_modules = sorted(m for m in sys.modules if m.startswith("restorekit_example"))
print(json.dumps({"after_import": after_import, "names": names, "plugin_modules": plugin_modules}))
"""
    result = run_cli(python=probe)
    assert result.returncode == 0, result.output
    report = parse_json_line(result.stdout)
    assert report["after_import"] == [], "import restorekit must not even read entry points"
    assert {"example_net", "example_opening"} <= set(report["names"])
    assert report["plugin_modules"] == [], "listing names must not import plugin code"


def test_list_shows_plugin_names_without_importing_them(run_cli):
    probe = """
import json, sys
from restorekit.cli import main
main(["list", "backbones"])
main(["list", "filters", "example_*"])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("restorekit_example"))))
"""
    result = run_cli(python=probe)
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    assert "example_net" in lines and "hagg" in lines
    assert "example_opening" in lines and "median" not in lines  # the pattern applies to plugins too
    assert lines[-1] == "[]"

    result = run_cli("list", "backbones")  # the console script itself
    assert result.returncode == 0 and "example_net" in result.stdout.split()


def test_info_imports_the_plugin_and_shows_its_source(run_cli):
    result = run_cli("info", "backbones", "example_net")
    assert result.returncode == 0, result.output
    assert "restorekit_example.network:ExampleNet(in_channels: int = 3, channels: int = 16, num_blocks: int = 2)" in result.stdout
    assert f"source: plugin:{EXAMPLE_ROW}" in result.stdout
    assert "network.py" in result.stdout  # the file of the installed copy

    result = run_cli("info", "filters", "example_opening")
    assert result.returncode == 0 and f"source: plugin:{EXAMPLE_ROW}" in result.stdout


def test_plugins_lists_kind_name_distribution_target_and_status(run_cli):
    result = run_cli("plugins")
    assert result.returncode == 0, result.output
    rows = {tuple(line.split("\t")) for line in result.stdout.splitlines()}
    assert ("backbone", "example_net", EXAMPLE_ROW, "restorekit_example.network:ExampleNet", "loaded") in rows
    assert ("filter", "example_opening", EXAMPLE_ROW, "restorekit_example.filters:OpeningFilter", "loaded") in rows


def test_plugins_exits_nonzero_and_names_the_broken_one(run_cli, broken_site: FakeSite):
    result = run_cli("plugins", python_path=[broken_site.path])
    assert result.returncode == 1, result.output
    rows = {line.split("\t")[1]: line.split("\t") for line in result.stdout.splitlines()}
    assert rows["example_net"][-1] == "loaded"
    assert rows["broken_net"][2] == "acme-broken==0.1"
    assert rows["broken_net"][-1].startswith("error: ImportError: needs a GPU library")


def test_broken_plugin_fails_only_the_configs_that_use_it(run_cli, broken_site: FakeSite):
    result = run_cli("validate", str(CONFIGS / "dt_hagg.yaml"), "eval.data=null", python_path=[broken_site.path])
    assert result.returncode == 0, result.output

    result = run_cli("validate", str(CONFIGS / "dt_hagg.yaml"), "backbone.type=broken_net",
                     python_path=[broken_site.path])
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    for part in ("acme-broken==0.1", "broken_net = rk_fake_broken_cli:Net", "needs a GPU library", PLUGINS_ENV):
        assert part in result.output


def test_clash_with_a_builtin_fails_naming_both(run_cli, fake_site: FakeSite):
    fake_site.add("acme-clash", "3.0", {"restorekit.filters": {"median": "rk_fake_clash_cli:Median"}},
                  {"rk_fake_clash_cli": NET_MODULE.format(name="Median")})
    result = run_cli("validate", str(CONFIGS / "dt_hagg.yaml"), "eval.data=null", python_path=[fake_site.path])
    assert result.returncode == 2, result.output
    assert "acme-clash==3.0" in result.output and "restorekit.filters.classic:MedianFilter" in result.output

    result = run_cli("plugins", python_path=[fake_site.path])
    assert result.returncode == 1
    assert any(line.startswith("filter\tmedian\tacme-clash==3.0") and "clashes" in line for line in result.stdout.splitlines())


def test_no_plugins_flag_and_environment_variable(run_cli):
    for args, env in ((["--no-plugins", "list", "backbones"], {}), (["list", "backbones"], {PLUGINS_ENV: "1"})):
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.output
        names = result.stdout.split()
        assert "hagg" in names and "example_net" not in names

    result = run_cli("--no-plugins", "plugins")
    assert result.returncode == 0 and f"plugin discovery is off ({PLUGINS_ENV} is set)" in result.stdout

    result = run_cli("--no-plugins", "validate", str(CONFIGS / "dt_hagg.yaml"), "backbone.type=example_net", "eval.data=null")
    assert result.returncode == 2
    assert "unknown backbone 'example_net'" in result.output and "plugins are off" in result.output

    # The flag reaches the processes restorekit starts (e.g. data-loader workers) through the environment.
    probe = "import os, sys; from restorekit.cli import main; main(sys.argv[1:]); print(os.environ.get('%s'))" % PLUGINS_ENV
    result = run_cli("--no-plugins", "list", "losses", python=probe)
    assert result.stdout.splitlines()[-1] == "1"


def test_imports_key_through_the_command_line(run_cli, tmp_path: Path, image_folders):
    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "my_nets.py").write_text(
        "from torch import nn\nfrom restorekit import BACKBONES\n\n"
        "@BACKBONES.register('my_local_net')\nclass MyNet(nn.Module):\n"
        "    def __init__(self, in_channels: int = 3):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)\n\n"
        "    def forward(self, x):\n        return self.conv(x)\n"
    )
    config = folder / "local.yaml"
    config.write_text(f"_base_: {CONFIGS / 'dt_hagg.yaml'}\nimports: [my_nets.py]\nbackbone: {{type: my_local_net}}\n")
    data = [f"data.rainy={image_folders['rainy']}", f"data.clean={image_folders['clean']}", "eval.data=null"]
    marker = folder / "ran"
    with open(folder / "my_nets.py", "a") as module:  # to see whether the module's code ran
        module.write(f"\nopen({str(marker)!r}, 'w').close()\n")
    # validate and print-config never run a config's code; they say what they could not check.
    result = run_cli("validate", str(config), *data)
    assert result.returncode == 0, result.output
    assert "backbone my_local_net" in result.stdout and "my_nets.py not run" in result.stdout
    assert run_cli("print-config", str(config)).returncode == 0
    assert not marker.exists()
    # train runs it only when allowed on the command line, for that run.
    result = run_cli("train", str(config), *data, *QUICK_TRAINING, "--work-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "unless you allow it for this run: add --allow-imports" in result.output
    assert not marker.exists()
    result = run_cli("train", str(config), *data, *QUICK_TRAINING, "--work-dir", str(tmp_path / "run"), "--allow-imports")
    assert result.returncode == 0, result.output
    assert marker.exists()
