"""Soft labels for distillation: each training photo's label computed once, and kept on disk for later runs.

A wide median costs milliseconds per photo with OpenCV but many times a whole training step
as a tensor op, so labels are never computed inside the training step. The disk cache is keyed
by the photo file's content and the filter's settings: renaming a file reuses its label;
editing it, or changing the filter, makes a new one. Runs (and the ranks of a multi-process
run) that share the cache folder share labels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .. import _atomic
from .._cache import cache_root
from ..filters.base import SoftLabelFilter

__all__ = ["SoftLabelCache", "label_cache_folder"]

#: Bump when image decoding changes in a way that changes pixels (invalidates cached labels).
DECODE_VERSION = "1"


def label_cache_folder(setting: str | None) -> Path | None:
    """The folder of ``data.soft_label_cache``: ``auto`` is ``<cache>/soft_labels``, None keeps nothing."""
    if setting is None:
        return None
    return cache_root() / "soft_labels" if setting == "auto" else Path(setting)


class SoftLabelCache:
    """Soft labels of photos by content digest, computed with ``label_filter`` on first request.

    Args:
        label_filter: the soft-label filter.
        root: cache folder; ``None`` computes every label afresh (nothing is written).
    """

    def __init__(self, label_filter: SoftLabelFilter, root: str | Path | None = None) -> None:
        self.filter = label_filter
        settings = hashlib.sha256(f"{label_filter.cache_key}|decode={DECODE_VERSION}".encode()).hexdigest()[:16]
        self.folder = Path(root) / settings if root is not None else None
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> Path:
        assert self.folder is not None
        return self.folder / digest[:2] / f"{digest}.png"

    def get(self, image: np.ndarray, digest: str) -> np.ndarray:
        """The soft label of ``image`` (H×W×3 uint8 RGB) whose file content hashes to ``digest``."""
        if self.folder is not None:
            path = self._path(digest)
            cached = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
            if cached is not None and cached.shape == image.shape:
                self.hits += 1
                return cv2.cvtColor(cached, cv2.COLOR_BGR2RGB)
        self.misses += 1
        label = self.filter(image)
        if self.folder is not None:
            self._write(self._path(digest), label)
        return label

    @staticmethod
    def _write(path: Path, label: np.ndarray) -> None:
        """Write atomically: a reader never sees a half-written label, even with concurrent writers."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(label, cv2.COLOR_RGB2BGR))
            if not ok:
                return
            _atomic.write_bytes(path, encoded.tobytes())
        except OSError:
            pass  # a read-only or full cache folder only costs recomputation next time
