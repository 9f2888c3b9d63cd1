"""Built-in demo datasets: names, layout, disjoint splits, caching and atomic builds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from restorekit.data import demo
from restorekit.data.demo import check_demo_name, demo_names, demo_root, is_demo, resolve_demo
from restorekit.errors import DataError


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def png_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache with the rain and noise tasks built (each takes well under a second)."""
    pytest.importorskip("skimage")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(demo.CACHE_ENV, str(cache))
        resolve_demo("demo:rain/rainy")
        resolve_demo("demo:noise/test")
        yield cache


@pytest.fixture
def use_cache(built_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(demo.CACHE_ENV, str(built_cache))
    return built_cache / "demo" / demo.DEMO_VERSION


# --------------------------------------------------------------------------- names
def test_is_demo() -> None:
    assert is_demo("demo:rain/rainy")
    assert not is_demo("data/rain")
    assert not is_demo("rain/demo:x")


def test_demo_names_cover_every_task_and_test_set() -> None:
    names = demo_names()
    for task in ("rain", "snow", "noise"):
        for subset in ("rainy", "clean", "test"):
            assert f"demo:{task}/{subset}" in names
    for sigma in (15, 25, 50):
        assert f"demo:noise/test_s{sigma}" in names
    assert "demo:rain/test_s50" not in names
    for name in names:
        check_demo_name(name)


@pytest.mark.parametrize(
    "value, hint",
    [
        ("demo:rian/rainy", "Did you mean 'rain'"),
        ("demo:derain/rainy", "Did you mean 'rain'"),
        ("demo:noise/test_s5", "Did you mean 'test_s50'"),
        ("demo:rain/tset", "Did you mean 'test'"),
        ("demo:rain", "needs a subset"),
        ("rain/rainy", "not a demo name"),
    ],
)
def test_check_demo_name_lists_names_and_suggests(value: str, hint: str) -> None:
    with pytest.raises(ValueError) as info:
        check_demo_name(value)
    message = str(info.value)
    assert hint in message
    assert "demo:rain/rainy" in message and "demo:noise/test_s50" in message


def test_names_are_checked_without_scikit_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)  # makes `import skimage` fail
    check_demo_name("demo:snow/test")
    with pytest.raises(ValueError):
        check_demo_name("demo:snow/test_s15")


def test_missing_scikit_image_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(demo.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(DataError, match=r'pip install "restorekit\[demo\]"'):
        resolve_demo("demo:rain/rainy")


def test_cache_root_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(demo.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert demo_root() == tmp_path / ".cache" / "restorekit" / "demo" / "v2"
    monkeypatch.setenv(demo.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert demo_root() == tmp_path / "elsewhere" / "demo" / "v2"


def test_unwritable_cache_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("skimage")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(demo.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(DataError, match=demo.CACHE_ENV):
        resolve_demo("demo:rain/rainy")


# --------------------------------------------------------------------------- layout
def test_layout(use_cache: Path) -> None:
    task_dir = use_cache / "rain"
    assert resolve_demo("demo:rain/rainy") == task_dir / "rainy"
    assert resolve_demo("demo:rain/clean") == task_dir / "clean"
    assert resolve_demo("demo:rain/test") == task_dir / "test"
    assert png_names(task_dir / "rainy") == sorted(f"{p}.png" for p in demo.RAINY_PHOTOS)
    assert png_names(task_dir / "clean") == sorted(f"{p}.png" for p in demo.CLEAN_PHOTOS)
    test_names = png_names(task_dir / "test" / "rain")
    assert test_names == png_names(task_dir / "test" / "gt")
    assert test_names == ["chelsea_1.png", "chelsea_2.png", "rocket_1.png", "rocket_2.png"]
    assert (task_dir / "manifest.json").is_file()
    assert sorted(p.name for p in use_cache.iterdir()) == ["noise", "rain"]  # no staging folders left
    for path in task_dir.rglob("*.png"):
        image = read_rgb(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, path
        assert max(image.shape[:2]) <= demo.MAX_SIDE, path


def test_noise_task_has_the_literature_test_sets(use_cache: Path) -> None:
    stds = {}
    for sigma in (15, 25, 50):
        folder = resolve_demo(f"demo:noise/test_s{sigma}")
        assert png_names(folder / "rain") == png_names(folder / "gt")
        noisy = read_rgb(folder / "rain" / "chelsea_1.png").astype(np.float64)
        clean = read_rgb(folder / "gt" / "chelsea_1.png").astype(np.float64)
        stds[sigma] = (noisy - clean).std()
    # Clipping at 0 and 255 trims the tails a little, most at sigma 50.
    assert 13 < stds[15] < 16 and 22 < stds[25] < 26 and 40 < stds[50] < 51


def test_splits_use_different_photos(use_cache: Path) -> None:
    task_dir = use_cache / "rain"
    rainy = {p.stem: read_rgb(p) for p in (task_dir / "rainy").glob("*.png")}
    clean = {p.stem: read_rgb(p) for p in (task_dir / "clean").glob("*.png")}
    gt = {p.stem: read_rgb(p) for p in (task_dir / "test" / "gt").glob("*.png")}
    test_sources = {name.rsplit("_", 1)[0] for name in gt}
    assert not (set(rainy) & set(clean)) and not (set(rainy) | set(clean)) & test_sources
    # And by content: no clean image is a test ground truth, and no rainy image is a clean or
    # test photo with rain added (rain only brightens, so that would read as rainy >= photo).
    for clean_image in clean.values():
        assert not any(c.shape == g.shape and np.array_equal(c, g) for c in [clean_image] for g in gt.values())
    for rainy_image in rainy.values():
        for photo in [*clean.values(), *gt.values()]:
            assert not (rainy_image.shape == photo.shape and (rainy_image >= photo).all())


def test_rain_test_pairs_match(use_cache: Path) -> None:
    folder = use_cache / "rain" / "test"
    for name in png_names(folder / "gt"):
        rainy, clean = read_rgb(folder / "rain" / name), read_rgb(folder / "gt" / name)
        assert rainy.shape == clean.shape
        assert (rainy >= clean).all() and (rainy != clean).any(axis=2).mean() > 0.05
    # Two renders of one photo: same ground truth, different rain.
    assert np.array_equal(read_rgb(folder / "gt" / "chelsea_1.png"), read_rgb(folder / "gt" / "chelsea_2.png"))
    assert not np.array_equal(read_rgb(folder / "rain" / "chelsea_1.png"), read_rgb(folder / "rain" / "chelsea_2.png"))


# --------------------------------------------------------------------------- caching
def _stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in [folder, *folder.rglob("*")]}


def test_second_resolve_does_not_rebuild(use_cache: Path) -> None:
    before = _stamps(use_cache / "rain")
    resolve_demo("demo:rain/test")
    resolve_demo("demo:rain/rainy")
    assert _stamps(use_cache / "rain") == before


def test_losing_a_build_race_keeps_the_winners_folder(use_cache: Path) -> None:
    # A second process that finishes rendering after the first renamed its copy into place
    # must keep the existing folder and leave no staging folder behind.
    task_dir = use_cache / "rain"
    before = _stamps(task_dir)
    demo._build_task("rain", task_dir)
    assert _stamps(task_dir) == before
    assert sorted(p.name for p in use_cache.iterdir()) == ["noise", "rain"]


def test_rebuild_is_byte_identical(use_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(demo.CACHE_ENV, str(tmp_path))
    fresh = resolve_demo("demo:rain/rainy").parent
    original = use_cache / "rain"
    files = sorted(str(p.relative_to(original)) for p in original.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
    for name in files:
        assert (original / name).read_bytes() == (fresh / name).read_bytes(), name


def test_incomplete_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("skimage")
    monkeypatch.setenv(demo.CACHE_ENV, str(tmp_path))
    stray = demo_root() / "snow" / "rainy"
    stray.mkdir(parents=True)
    (stray / "partial.png").write_bytes(b"")
    with pytest.raises(DataError, match="delete it"):
        resolve_demo("demo:snow/rainy")
    assert sorted(os.listdir(demo_root())) == ["snow"]


def test_paired_subset_holds_the_rainy_training_photos_with_their_truth(tmp_path, monkeypatch) -> None:
    """``sv`` trains on the same photos ``dt`` sees, plus the clean originals ``dt`` never sees."""
    monkeypatch.setenv("RESTOREKIT_CACHE", str(tmp_path))
    paired, rainy = resolve_demo("demo:rain/paired"), resolve_demo("demo:rain/rainy")
    names = sorted(p.name for p in (paired / "rain").iterdir())
    assert names == sorted(p.name for p in rainy.iterdir()) == sorted(p.name for p in (paired / "gt").iterdir())
    for name in names:
        assert (paired / "rain" / name).read_bytes() == (rainy / name).read_bytes()
