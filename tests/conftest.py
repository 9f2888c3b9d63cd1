"""Shared fixtures: every test gets its own cache folder, so nothing leaks between tests or
into the user's ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RESTOREKIT_CACHE", str(tmp_path_factory.mktemp("restorekit-cache")))
