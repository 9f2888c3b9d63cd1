"""The one atomic-write helper: a failed write leaves the old file and no debris, and what is
written gets the permissions of the user's umask (not the 0600 of a private temporary file)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from restorekit import _atomic
from restorekit.data.io import write_image
from restorekit.model_file import save_model


@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    image = np.zeros((4, 5, 3), np.uint8)
    write_image(tmp_path / "restored.png", image)
    save_model(tmp_path / "model.safetensors", {"backbone": torch.nn.Conv2d(3, 3, 1)}, {"backbone": {"type": "x"}})
    _atomic.write_text(tmp_path / "eval.json", "{}\n")
    for name in ("restored.png", "model.safetensors", "eval.json"):
        assert mode(tmp_path / name) == expected, name


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "scores.json"
    _atomic.write_text(target, "old\n")

    class DiskFull(OSError):
        pass

    with pytest.raises(DiskFull):
        with _atomic.replacing(target) as tmp:
            tmp.write_text("half of the new conte")
            raise DiskFull("no space left")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    _atomic.write_text(target, "new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
