"""Shared fixtures: every test gets its own cache folder, so nothing leaks between tests or
into the user's ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RESTOREKIT_CACHE", str(tmp_path_factory.mktemp("restorekit-cache")))


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A training sets torch's thread count (runtime.threads); put it back for the next test."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three rainy and three clean 48×48 photos (``r000.png``..., ``c000.png``...) and two pairs."""
    from restorekit.data.io import write_image
    from restorekit.testing import make_paired_folder, make_photo

    root = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_image(root / "rainy" / f"r{i:03d}.png", make_photo(100 + i))
        write_image(root / "clean" / f"c{i:03d}.png", make_photo(200 + i))
    return {"rainy": root / "rainy", "clean": root / "clean", "paired": make_paired_folder(root / "paired", n=2)}
