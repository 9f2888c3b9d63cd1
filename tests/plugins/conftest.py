"""Fixtures for the plugin tests: throw-away distributions, the installed example plugin,
tiny image folders, and a runner for the ``restorekit`` command line.

Two environments run these tests. In the main one (``pytest`` from the README) the example
plugin is installed non-editable into a temporary folder that only the subprocesses see, and
the timm tests skip. In ``.ci/plugins.sh`` restorekit and both plugins are installed into the
environment itself, as a user would install them, and timm is present.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import FAKE_PREFIX, PLUGINS_DIR, CliResult, FakeSite

from restorekit.registries import REGISTRIES
from restorekit.registry import PLUGINS_ENV


# --------------------------------------------------------------------------- registries
@pytest.fixture(autouse=True)
def isolated_registries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with undiscovered plugins and plugins switched on, and leaves the
    registries, ``sys.path`` and ``sys.modules`` as it found them."""
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    registries = list(REGISTRIES.values())
    scopes = [registry.scoped() for registry in registries]
    for scope in scopes:
        scope.__enter__()
    for registry in registries:
        registry.refresh()
    try:
        yield
    finally:
        for scope in reversed(scopes):
            scope.__exit__(None, None, None)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith((FAKE_PREFIX, "restorekit_local_", "restorekit_example", "restorekit_timm")):
                del sys.modules[name]
        importlib.invalidate_caches()


# --------------------------------------------------------------------------- throw-away distributions
@pytest.fixture
def fake_site(tmp_path: Path) -> FakeSite:
    """An empty site folder at the front of ``sys.path`` (removed again by ``isolated_registries``)."""
    site = tmp_path / "fake_site"
    site.mkdir()
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    return FakeSite(site)


# --------------------------------------------------------------------------- the installed example plugin
def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Where the installed ``restorekit-example`` lives for subprocesses: None when it is
    installed in this environment already (``.ci/plugins.sh``); otherwise a folder it is
    installed into now, non-editable and offline, to be put on ``PYTHONPATH``."""
    if _installed("restorekit-example"):
        return None
    pytest.importorskip("setuptools", reason="building the example plugin offline needs setuptools")
    work = tmp_path_factory.mktemp("example_plugin")
    source = work / "source"  # build from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(PLUGINS_DIR / "restorekit-example", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site-packages"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(source)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"pip could not install the example plugin:\n{result.stdout}\n{result.stderr}"
    assert (target / "restorekit_example-0.1.0.dist-info" / "entry_points.txt").is_file()
    return str(target)


@pytest.fixture
def example_plugin_in_process(example_plugin_site: str | None) -> None:
    """Make the installed example plugin visible to this test process (undone at teardown)."""
    if example_plugin_site is not None:
        sys.path.insert(0, example_plugin_site)
        importlib.invalidate_caches()
    for registry in REGISTRIES.values():
        registry.refresh()


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="session")
def image_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny PNG folders: ``rainy``, ``clean`` (unpaired) and ``paired`` (``rain/`` + ``gt/``)."""
    import cv2

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    folders = {name: root / name for name in ("rainy", "clean", "paired")}
    for sub in ("rainy", "clean", "paired/rain", "paired/gt"):
        (root / sub).mkdir(parents=True)
    yy, xx = np.mgrid[0:40, 0:44]
    for i in range(3):
        background = np.stack([80 + xx * 2, 60 + yy * 3, 120 + (xx + yy)], axis=-1)
        background = (background + rng.normal(0, 4, background.shape)).clip(0, 255).astype(np.uint8)
        rainy = background.copy()
        rainy[:, (i + 1) :: 6] = 235  # one-pixel bright streaks
        cv2.imwrite(str(folders["clean"] / f"clean_{i}.png"), np.roll(background, 7 * i, axis=1))
        cv2.imwrite(str(folders["rainy"] / f"rainy_{i}.png"), rainy)
        cv2.imwrite(str(folders["paired"] / "rain" / f"pair_{i}.png"), rainy)
        cv2.imwrite(str(folders["paired"] / "gt" / f"pair_{i}.png"), background)
    return folders


# --------------------------------------------------------------------------- the command line
def _command_prefix() -> list[str]:
    # The console script pip made for this environment, as a user runs it.
    script = Path(sys.executable).with_name("restorekit")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from restorekit.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture
def run_cli(tmp_path: Path, example_plugin_site: str | None) -> Callable[..., CliResult]:
    """Run ``restorekit ARGS`` in a subprocess with the example plugin installed.

    Keyword arguments: ``python_path`` (more folders for ``PYTHONPATH``, e.g. a fake site),
    ``env`` (more variables), ``python`` (run ``python -c CODE ARGS`` instead of the script).
    The working folder is empty, so nothing is imported from the checkout by accident.
    """
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)

    def run(*args: str, python_path: list[str] = (), env: Mapping[str, str] = {}, python: str | None = None,
            timeout: float = 300) -> CliResult:
        full_env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
        paths = [*map(str, python_path), *([example_plugin_site] if example_plugin_site else [])]
        if full_env.get("PYTHONPATH"):
            paths.append(full_env["PYTHONPATH"])
        full_env["PYTHONPATH"] = os.pathsep.join(paths)
        full_env["RESTOREKIT_CACHE"] = str(tmp_path / "cache")
        full_env["HF_HUB_OFFLINE"] = "1"  # any attempt to fetch weights fails instead of downloading
        full_env.update(env)
        command = [sys.executable, "-c", python, *args] if python is not None else [*_command_prefix(), *args]
        result = subprocess.run(command, cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout)
        return CliResult(result.returncode, result.stdout, result.stderr)

    return run
