"""Reading and writing photos: every file becomes an H×W×3 uint8 RGB array, or a clear error.

Decoding uses OpenCV from the file's bytes (so non-ASCII paths work and the bytes can be
hashed for the soft-label cache). What each kind of file becomes:

* grayscale and palette images are expanded to RGB;
* an alpha channel is composited over white (a transparent pixel has no colour to restore);
* 16-bit PNG/TIFF are scaled to 8 bits (``value / 257``, rounded);
* JPEG EXIF orientation is applied, so the pixels stand as the camera meant;
* anything that does not decode raises :class:`~restorekit.errors.ImageReadError` naming the
  file and the reason (missing, unreadable, empty, not an image).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError, ImageReadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "read_bytes",
    "decode_image",
    "read_image",
    "write_image",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def list_images(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by extension, case-insensitive), sorted by relative path.

    Raises DataError when the folder is missing or holds no image file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(
        (p for p in root.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(
            f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}"
            f"{' in subfolders too' if recursive else ''})"
        )
    return files


def read_bytes(path: str | Path) -> bytes:
    """The raw bytes of an image file, with errors that say which file and why."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    return data


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype in (np.float32, np.float64):
        # Float TIFF/EXR: assume [0, 1] when it looks like it, else [0, 255].
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(image) * scale + 0.5, 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported sample type {image.dtype}")


def decode_image(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode image bytes to H×W×3 uint8 RGB (see the module docstring for the conversions)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        # IMREAD_COLOR applies EXIF orientation; IMREAD_ANYDEPTH keeps 16-bit samples for exact scaling.
        oriented = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        raise ImageReadError(path, f"not a decodable image ({str(exc).strip().splitlines()[-1]})") from None
    if oriented is None:
        raise ImageReadError(path, "not a decodable image (corrupt, truncated, or not an image format)")
    try:
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        raw = None
    try:
        rgb = cv2.cvtColor(_to_uint8(oriented), cv2.COLOR_BGR2RGB)
    except ValueError as exc:
        raise ImageReadError(path, str(exc)) from None
    if raw is not None and raw.ndim == 3 and raw.shape[2] == 4 and raw.shape[:2] == oriented.shape[:2]:
        # Composite over white. (Alpha images here are PNG/TIFF, which carry no EXIF rotation.)
        alpha = _to_uint8(raw[..., 3]).astype(np.float32)[..., None] / 255.0
        rgb = np.clip(rgb.astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageReadError(path, "image has no pixels")
    return np.ascontiguousarray(rgb)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB; raises ImageReadError on any problem."""
    return decode_image(read_bytes(path), path)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an H×W×3 uint8 RGB image atomically (format from the extension, PNG recommended)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    ext = path.suffix.lower() or ".png"
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"{path}: OpenCV cannot encode images as {ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=ext)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encoded.tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
