"""Reading and writing photos: every file becomes an H×W×3 uint8 RGB array, or a clear error.

Decoding uses OpenCV from the file's bytes (so non-ASCII paths work and the bytes can be
hashed for the soft-label cache). What each kind of file becomes:

* grayscale and palette images are expanded to RGB;
* an alpha channel is composited over white (a transparent pixel has no colour to restore,
  and white is what a viewer shows behind it); a palette's transparent entries count as alpha;
* 16-bit PNG/TIFF are scaled to 8 bits (``value / 257``, rounded); float TIFFs are read as
  [0, 1] when their maximum is at most 1, else as [0, 255];
* JPEG EXIF orientation is applied, so the pixels stand as the camera meant;
* an image of more than :data:`MAX_PIXELS` pixels is refused before it is decoded (a
  "decompression bomb": a small file that would expand to many gigabytes), whatever its
  format: the size is read from the header of each format restorekit reads (PNG, JPEG, TIFF,
  BMP, WebP, Netpbm, GIF), and bytes of any other format are not decoded;
* a GIF becomes its first frame (an animated one too: :func:`is_animated_gif` tells);
* anything that does not decode raises :class:`~restorekit.errors.ImageReadError` naming the
  file and the reason (missing, unreadable, empty, not an image, too large).

File names that are not valid UTF-8 (possible on Linux) are shown with ``\\xNN`` escapes, so
a report can always be printed and logged.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import cv2
import numpy as np

from .. import _atomic
from ..errors import DataError, ImageReadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "list_images",
    "shown_path",
    "read_bytes",
    "decode_image",
    "read_image",
    "write_image",
    "downscale_long_side",
    "content_digest",
    "declared_size",
    "is_animated_gif",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})

#: Largest image accepted, in pixels (250 MP; a 12000×9000 panorama is 108 MP; decoded RGB
#: takes 3 bytes a pixel). Raise it here if you really train on larger scans.
MAX_PIXELS = 250_000_000

# OpenCV logs each decoding failure itself (warnings and errors without a file name, in the
# middle of the progress display); restorekit reports every failure with the file and the
# reason instead, so OpenCV's log is silenced. (libpng still prints "libpng error: ..." lines.)
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def shown_path(path: str | Path) -> str:
    """``path`` as printable text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_image_file(p: Path) -> bool:
    # A broken link with an image extension is listed, so that it is reported rather than ignored.
    return p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or (p.is_symlink() and not p.exists()))


def _walk(root: Path, recursive: bool, unreadable: list[Path]) -> list[Path]:
    """Every non-folder entry under ``root`` (links to folders are not followed); folders that
    cannot be listed are added to ``unreadable`` instead of being silently passed over."""

    def failed(exc: OSError) -> None:
        unreadable.append(Path(exc.filename) if exc.filename else root)

    if not recursive:
        try:
            return [Path(e.path) for e in os.scandir(root) if not e.is_dir(follow_symlinks=False) or e.is_symlink()]
        except OSError as exc:
            failed(exc)
            return []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        found += (Path(dirpath) / name for name in filenames)
        found += (Path(dirpath) / name for name in dirnames if os.path.islink(os.path.join(dirpath, name)))
    return found


def list_images(folder: str | Path, *, recursive: bool = True, unreadable: list[Path] | None = None) -> list[Path]:
    """Image files under ``folder`` (by extension, case-insensitive), sorted by relative path.

    Args:
        folder: the folder to search.
        recursive: search subfolders too.
        unreadable: when given, subfolders that cannot be listed (no permission) are appended
            here, so the caller can report them; they are otherwise left out silently.

    Raises:
        DataError: the folder is missing, unreadable, or holds no image file (the message says
            what else it holds).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{shown_path(root)}: not a folder" + ("" if root.exists() else " (it does not exist)"))
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"{shown_path(root)}: permission denied (cannot list the folder)")
    blocked: list[Path] = []
    found = _walk(root, recursive, blocked)
    if unreadable is not None:
        unreadable.extend(blocked)
    files = sorted((p for p in found if _is_image_file(p)), key=lambda p: p.relative_to(root).as_posix())
    if not files:
        others = sorted(p.relative_to(root).as_posix() for p in found if p.is_file())
        holds = "it is empty" if not others else (
            f"it holds {len(others)} other file(s), e.g. {', '.join(shown_path(o) for o in others[:3])}"
        )
        if blocked:
            holds += f"; {len(blocked)} subfolder(s) could not be read (permission denied): " + ", ".join(
                shown_path(b) for b in blocked[:3]
            )
        raise DataError(
            f"{shown_path(root)}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}"
            f"{' in subfolders too' if recursive else ''}); {holds}"
        )
    return files


def read_bytes(path: str | Path) -> bytes:
    """The raw bytes of an image file, with errors that say which file and why."""
    path = Path(path)
    shown = shown_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            target = shown_path(os.readlink(path))
            raise ImageReadError(shown, f"broken link (points at {target}, which does not exist)") from None
        raise ImageReadError(shown, "file not found (deleted or moved?)") from None
    except PermissionError:
        raise ImageReadError(shown, "permission denied") from None
    except IsADirectoryError:
        raise ImageReadError(shown, "is a folder, not a file") from None
    except OSError as exc:
        raise ImageReadError(shown, f"cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(shown, "empty file (0 bytes)")
    return data


# --------------------------------------------------------------------------- header sniffing
def _png_header(data: bytes) -> tuple[int, int, bool] | None:
    """``(width, height, may_have_alpha)`` from a PNG's IHDR, or None when it is not a PNG."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 26 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    color_type = data[25]
    idat = data.find(b"IDAT")
    has_trns = data.find(b"tRNS", 0, idat if idat >= 0 else len(data)) >= 0
    return width, height, color_type in (4, 6) or has_trns


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's start-of-frame segment (before EXIF rotation), or None."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers carry no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header found before the data
            return None
        i += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a TIFF's first image (what OpenCV decodes), from its first IFD."""
    if data[:4] in (b"II*\0", b"MM\0*"):
        order = "<" if data[:2] == b"II" else ">"
        if len(data) < 8:
            return None
        (offset,) = struct.unpack(order + "I", data[4:8])
        count_size, entry_size, count_fmt, value_at = 2, 12, "H", 8
    elif data[:4] in (b"II+\0", b"MM\0+"):  # BigTIFF
        order = "<" if data[:2] == b"II" else ">"
        if len(data) < 16:
            return None
        (offset,) = struct.unpack(order + "Q", data[8:16])
        count_size, entry_size, count_fmt, value_at = 8, 20, "Q", 12
    else:
        return None
    if offset + count_size > len(data):
        return None
    (entries,) = struct.unpack(order + count_fmt, data[offset : offset + count_size])
    size: dict[int, int] = {}
    for i in range(min(entries, 4096)):
        at = offset + count_size + i * entry_size
        if at + entry_size > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257) and kind in (3, 4, 16):  # ImageWidth, ImageLength as SHORT, LONG or LONG8
            fmt = {3: "H", 4: "I", 16: "Q"}[kind]
            (size[tag],) = struct.unpack_from(order + fmt, data, at + value_at)
    return (size[256], size[257]) if 256 in size and 257 in size else None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"BM") or len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """Netpbm (P1-P6) and PFM (PF, Pf): width and height are the first numbers after the magic."""
    if len(data) < 3 or data[0:1] != b"P" or data[1:2] not in b"123456Ff":
        return None
    numbers: list[int] = []
    for line in data[2:4096].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            numbers.append(int(token))
            if len(numbers) == 2:
                return numbers[0], numbers[1]
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
        return None
    return struct.unpack("<HH", data[6:10])


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` an image file declares in its header, read without decoding, or None
    when the bytes are none of the formats restorekit reads (PNG, JPEG, TIFF, BMP, WebP,
    Netpbm, GIF)."""
    png = _png_header(data)
    if png is not None:
        return png[:2]
    for sniff in (_jpeg_size, _tiff_size, _bmp_size, _webp_size, _pnm_size, _gif_size):
        size = sniff(data)
        if size is not None:
            return size
    return None


def is_animated_gif(data: bytes) -> bool:
    """Whether a GIF holds more than one frame (restorekit restores its first)."""
    return data[:3] == b"GIF" and data.count(b"\x21\xf9\x04") > 1


def _check_size(width: int, height: int, path: str | Path) -> None:
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            path,
            f"{width}×{height} is {width * height / 1e6:.0f} megapixels, more than the "
            f"{MAX_PIXELS / 1e6:.0f} MP restorekit decodes (restorekit.data.io.MAX_PIXELS); downscale it first",
        )


# --------------------------------------------------------------------------- decoding
def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype in (np.float16, np.float32, np.float64):
        # Float TIFF: assume [0, 1] when it looks like it, else [0, 255].
        finite = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        scale = 255.0 if finite.size and float(finite.max()) <= 1.0 else 1.0
        return np.clip(finite * scale + 0.5, 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported sample type {image.dtype} (expected 8- or 16-bit, or float)")


def _composite_over_white(bgra: np.ndarray) -> np.ndarray:
    """H×W×4 BGRA (8 or 16 bit) → H×W×3 uint8 BGR over a white background, in row blocks
    so that a huge image needs little memory beyond its result."""
    full = 65535.0 if bgra.dtype == np.uint16 else 255.0
    out = np.empty(bgra.shape[:2] + (3,), np.uint8)
    rows = max(1, 4_000_000 // max(1, bgra.shape[1]))
    for top in range(0, bgra.shape[0], rows):
        block = bgra[top : top + rows].astype(np.float32) / full
        alpha = block[..., 3:4]
        out[top : top + rows] = np.clip((block[..., :3] * alpha + (1.0 - alpha)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """Any OpenCV decode result (gray, BGR, BGRA; 8/16-bit or float) → H×W×3 uint8 BGR."""
    if image.ndim == 3 and image.shape[2] == 4 and image.dtype in (np.uint8, np.uint16):
        return _composite_over_white(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    image = _to_uint8(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def _imdecode(buffer: np.ndarray, flags: int, path: str | Path) -> np.ndarray:
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error as exc:
        detail = str(exc).strip().splitlines()[-1]
        if "MAX_IMAGE" in detail or "validateInputImageSize" in detail:
            raise ImageReadError(path, "image too large to decode (OpenCV's size limit)") from None
        raise ImageReadError(path, f"not a decodable image ({detail})") from None
    if image is None:
        raise ImageReadError(path, "not a decodable image (corrupt, truncated, or not an image format)")
    return image


def decode_image(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode image bytes to H×W×3 uint8 RGB (see the module docstring for the conversions).

    Raises:
        ImageReadError: the bytes are not a decodable image, or one too large.
    """
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    # The size limit holds for every format, before a single pixel is decoded: a small file
    # may declare a huge image (a "decompression bomb"), and one whose size cannot be read
    # from its header is not decoded at all.
    size = declared_size(data)
    if size is None:
        raise ImageReadError(
            path, "not a decodable image (corrupt, truncated, or not PNG, JPEG, TIFF, BMP, WebP, Netpbm or GIF)"
        )
    _check_size(*size, path)
    png = _png_header(data)
    jpeg = _jpeg_size(data) if png is None else None
    try:
        if png is not None and png[2]:
            # PNG with alpha: one unchanged decode (PNGs carry no orientation worth honouring).
            bgr = _to_bgr(_imdecode(buffer, cv2.IMREAD_UNCHANGED, path))
        else:
            # IMREAD_COLOR applies EXIF orientation; IMREAD_ANYDEPTH keeps 16 bits for exact scaling.
            bgr = _to_bgr(_imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, path))
            if png is None and jpeg is None:
                # Other formats (TIFF, WebP, BMP) may carry alpha: look at the unchanged samples too.
                raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
                if raw is not None and raw.ndim == 3 and raw.shape[2] == 4 and raw.shape[:2] == bgr.shape[:2]:
                    bgr = _to_bgr(raw)
    except (ValueError, cv2.error) as exc:
        raise ImageReadError(path, f"cannot convert to 8-bit RGB: {exc}") from None
    if bgr.shape[0] < 1 or bgr.shape[1] < 1:
        raise ImageReadError(path, "image has no pixels")
    if not bgr.flags.writeable or not bgr.flags.c_contiguous:
        bgr = np.ascontiguousarray(bgr)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)


def content_digest(data: bytes) -> str:
    """Hex digest of a file's bytes: the key under which what is derived from it is cached."""
    return hashlib.sha256(data).hexdigest()[:32]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB; raises ImageReadError on any problem."""
    return decode_image(read_bytes(path), shown_path(path))


def write_image(path: str | Path, image: np.ndarray, *, jpeg_quality: int | None = None) -> None:
    """Write an H×W×3 uint8 RGB image atomically (format from the extension, PNG recommended).

    ``jpeg_quality`` (1-100) applies to ``.jpg``/``.jpeg`` files; None keeps OpenCV's default (95).
    """
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    ext = path.suffix.lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None and ext in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DataError(f"{shown_path(path)}: OpenCV cannot encode images as {ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_bytes(path, encoded.tobytes())


def downscale_long_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``image`` (area-averaged) so that its long side is at most ``max_side``; smaller ones are returned as they are."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
