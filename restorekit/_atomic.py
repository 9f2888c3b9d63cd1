"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file restorekit writes that someone relies on afterwards (model files, checkpoints,
restored photos, cached soft labels, result JSONs) goes through :func:`replacing`: the content
is written to a temporary file in the same folder, flushed to disk, and renamed over the
destination, and the folder is flushed too, so that the rename survives a power cut. A crash
or a full disk mid-write leaves the destination as it was and removes the temporary file.

The result gets the permissions the user's umask gives any new file, whatever the writer did
(``tempfile.mkstemp``, and safetensors' writer, make private 0600 files).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing", "write_bytes", "write_text", "fsync_dir", "fsync_file"]

_counter = itertools.count()
_counter_lock = threading.Lock()


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries to disk (a rename into it survives a crash); best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Flush a written file's content to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _umask() -> int:
    # /proc tells without changing anything (os.umask can only be read by setting it, which
    # races with other threads creating files); elsewhere, set it back at once.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_name(path: Path) -> Path:
    # Unique per process and call, so that threads and processes writing the same file
    # (ranks sharing a soft-label cache) never share a temporary file.
    with _counter_lock:
        n = next(_counter)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}-{n}")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path``.

    The caller writes the temporary file in any way it likes (``save_file(..., tmp)``,
    ``tmp.write_bytes(...)``). When the block ends without an error the file is flushed and
    renamed over ``path``; when it raises, the temporary file is removed and ``path`` is left
    as it was. The folder must exist.
    """
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "xb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
