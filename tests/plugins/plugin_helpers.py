"""Helpers shared by the plugin tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO / "plugins"
CONFIGS = REPO / "configs"

#: Module names of throw-away plugins start with this, so that teardown can forget them.
FAKE_PREFIX = "rk_fake_"

#: Overrides that make a training run a few seconds on a CPU.
QUICK_TRAINING = [
    "train.iters=3",
    "data.crop_size=32",
    "data.batch_size=2",
    "train.sample_every=0",
    "train.log_every=1",
    "eval.data=null",
]


@dataclass
class FakeSite:
    """A folder of hand-made installed distributions (metadata + modules) on ``sys.path``."""

    path: Path

    def add(
        self,
        dist: str,
        version: str,
        entry_points: Mapping[str, Mapping[str, str]],
        modules: Mapping[str, str] = {},
        *,
        layout: str = "dist-info",
    ) -> None:
        """Write distribution ``dist`` with ``entry_points`` ({group: {name: "module:attr"}}) and
        ``modules`` ({module name: source}), as pip would leave it (``dist-info``) or as
        setuptools' ``develop`` does (``egg-info``)."""
        folder = self.path / f"{dist.replace('-', '_')}-{version}.{layout}"
        folder.mkdir()
        metadata_file = "METADATA" if layout == "dist-info" else "PKG-INFO"
        (folder / metadata_file).write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        sections = [
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in names.items())
            for group, names in entry_points.items()
        ]
        (folder / "entry_points.txt").write_text("\n".join(sections))
        for module, source in modules.items():
            (self.path / f"{module}.py").write_text(textwrap.dedent(source))
        # importlib.metadata caches directory listings; a test adds distributions mid-way.
        importlib.invalidate_caches()


#: A minimal valid backbone module for throw-away plugins: ``{name}`` is the class name.
NET_MODULE = """
from torch import nn

class {name}(nn.Module):
    def __init__(self, in_channels: int = 3, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def parse_json_line(output: str) -> dict:
    """The last line of ``output`` that is a JSON object (what the ``python=`` snippets print)."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in:\n{output}")
