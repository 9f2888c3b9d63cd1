"""Compute each training photo's soft label once, and keep it on disk for later runs.

A median of kernel 31 costs ~20 ms per 512×512 photo with OpenCV but ~40× a whole training
step as a tensor op (DESIGN §5), so labels are never computed inside the training step. The
disk cache is keyed by the photo file's content and the filter's settings: renaming a file
reuses its label; editing it, or changing the filter, makes a new one. Runs (and the ranks of a
multi-process run) that share the cache folder share labels.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .base import SoftLabelFilter

__all__ = ["SoftLabelCache", "content_digest"]

#: Bump when image decoding changes in a way that changes pixels (invalidates cached labels).
DECODE_VERSION = "1"


def content_digest(data: bytes) -> str:
    """Hex digest of a file's bytes, used as its cache key."""
    return hashlib.sha256(data).hexdigest()[:32]


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
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(encoded.tobytes())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            pass  # a read-only or full cache folder only costs recomputation next time
