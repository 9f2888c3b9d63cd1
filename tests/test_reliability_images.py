"""Issue #8, images: every kind of file a messy photo folder holds, fed for real.

Each bad file must be reported by path and reason and skipped (or stop the run when the config
says so); each odd-but-valid file must decode to the documented H×W×3 uint8 RGB. The files are
made here, byte by byte where OpenCV cannot write them (palette PNGs, EXIF orientation).
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from restorekit.data import io as rkio
from restorekit.data.batches import UnpairedBatches, unpack_batch
from restorekit.data.pairs import PairedSet, paired_files
from restorekit.data.photos import PhotoSet
from restorekit.data.report import SkipReport, skip_summary
from restorekit.data.io import decode_image, list_images, read_image
from restorekit.errors import ConfigError, DataError, ImageReadError
from restorekit.methods.soft_labels import SoftLabelCache
from restorekit.registries import FILTERS

RNG = np.random.default_rng(8)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)  # the reference pixels, RGB order


# --------------------------------------------------------------------------- file makers
def encode(ext: str, image: np.ndarray, *params: int) -> bytes:
    """OpenCV-encoded bytes of an RGB (or gray, or RGBA) image."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[..., ::-1]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., [2, 1, 0, 3]]
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image), list(params))
    assert ok
    return data.tobytes()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bytes(samples: np.ndarray, color_type: int, bit_depth: int = 8, palette=None, trns=None, size=None) -> bytes:
    """A PNG written by hand, for the colour types OpenCV cannot write (palette, gray+alpha)."""
    h, w = samples.shape[:2]
    if size is not None:
        w, h = size
    rows = samples.astype(">u2" if bit_depth == 16 else "u1").reshape(samples.shape[0], -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))
    if trns is not None:
        out += _chunk(b"tRNS", bytes(trns))
    return out + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment holding only the Orientation tag (0x0112) after SOI."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\0\0" + b"MM\0\x2a" + struct.pack(">I", 8) + ifd
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def labels() -> SoftLabelCache:
    """Soft labels computed afresh (no cache folder), as degraded photos have them."""
    return SoftLabelCache(FILTERS.build({"type": "median", "kernel_size": 3}))


def good_png(seed: int = 0, size: tuple[int, int] = (48, 48)) -> bytes:
    return encode(".png", np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))


def test_write_image_jpeg_quality_trades_size_for_fidelity(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rkio.write_image(tmp_path / "low.jpg", image, jpeg_quality=20)
    rkio.write_image(tmp_path / "high.jpg", image, jpeg_quality=95)
    rkio.write_image(tmp_path / "default.jpg", image)  # OpenCV's default is 95
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    assert (tmp_path / "default.jpg").read_bytes() == (tmp_path / "high.jpg").read_bytes()
    error = {q: np.abs(read_image(tmp_path / f"{q}.jpg").astype(int) - image).mean() for q in ("low", "high")}
    assert error["high"] < error["low"]
    rkio.write_image(tmp_path / "lossless.png", image, jpeg_quality=20)  # ignored for PNG
    assert np.array_equal(read_image(tmp_path / "lossless.png"), image)


# --------------------------------------------------------------------------- odd but valid files
def test_grayscale_expands_to_three_equal_channels():
    out = decode_image(encode(".png", RGB[..., 0]))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], RGB[..., 0]) and np.array_equal(out[..., 1], out[..., 2])


def test_rgba_is_composited_over_white():
    alpha = RNG.integers(0, 256, RGB.shape[:2], dtype=np.uint8)
    out = decode_image(encode(".png", np.dstack([RGB, alpha])))
    a = alpha[..., None] / 255.0
    expected = np.clip(RGB * a + 255.0 * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1
    transparent = decode_image(encode(".png", np.dstack([RGB, np.zeros_like(alpha)])))
    assert (transparent == 255).all()  # fully transparent: white, not the hidden colour


def test_palette_png_with_and_without_transparency():
    index = np.array([[0, 1, 2, 3]] * 2, np.uint8)
    palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]
    out = decode_image(png_bytes(index, 3, palette=palette))
    assert out[0].tolist() == palette
    # tRNS: entry 1 fully transparent (white), entry 2 half transparent (blue towards white)
    out = decode_image(png_bytes(index, 3, palette=palette, trns=[255, 0, 128, 255]))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    assert out[0, 2].tolist() == [127, 127, 255] and out[0, 3].tolist() == [10, 20, 30]


def test_gray_with_alpha_png():
    samples = np.dstack([np.full((2, 2), 100, np.uint8), np.array([[255, 0], [0, 255]], np.uint8)])
    out = decode_image(png_bytes(samples, 4))
    assert out[0, 0].tolist() == [100] * 3 and out[0, 1].tolist() == [255] * 3


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16_bit_color_and_gray_scale_exactly_to_8_bits(ext):
    wide = np.minimum(RGB.astype(np.int64) * 257 + 100, 65535).astype(np.uint16)  # +100 < 128 rounds back
    assert np.array_equal(decode_image(encode(ext, wide)), RGB)
    gray = decode_image(encode(ext, wide[..., 0]))
    assert np.array_equal(gray[..., 1], RGB[..., 0])


def test_16_bit_rgba_png_and_float_tiff():
    wide = np.dstack([RGB.astype(np.uint16) * 257, np.full(RGB.shape[:2], 65535, np.uint16)])
    assert np.array_equal(decode_image(encode(".png", wide)), RGB)
    unit = decode_image(encode(".tiff", RGB.astype(np.float32) / 255.0))
    assert np.abs(unit.astype(int) - RGB).max() <= 1


@pytest.mark.parametrize("orientation, turns", [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_respected(orientation, turns):
    image = np.zeros((40, 80, 3), np.uint8)
    image[:20, :40] = (255, 0, 0)  # a red top-left quadrant
    jpeg = encode(".jpg", image, cv2.IMWRITE_JPEG_QUALITY, 100)
    upright = decode_image(jpeg)
    out = decode_image(with_exif_orientation(jpeg, orientation))
    assert np.array_equal(out, np.rot90(upright, turns))
    if orientation == 6:  # 90° clockwise: the red quadrant moves to the top right
        assert out.shape == (80, 40, 3) and out[:40, 20:, 0].mean() > 200 and out[:40, :20, 0].mean() < 50


def test_huge_image_decodes_and_a_decompression_bomb_is_refused(monkeypatch):
    # A 12000×9000 panorama (108 MP) is legitimate: one decode, in seconds.
    big = np.zeros((9000, 12000), np.uint8)
    big[::97] = 200
    data = encode(".png", big, cv2.IMWRITE_PNG_COMPRESSION, 1)
    del big
    started = time.perf_counter()
    out = decode_image(data, "pano.png")
    assert out.shape == (9000, 12000, 3) and out[97, 5].tolist() == [200] * 3
    assert time.perf_counter() - started < 30
    del out
    # A tiny file whose header claims 30000×30000: refused from the header, nothing allocated.
    bomb = png_bytes(np.zeros((1, 1), np.uint8), 0, size=(30000, 30000))
    with pytest.raises(ImageReadError, match=r"bomb.png: 30000×30000 is 900 megapixels, more than the 250 MP"):
        decode_image(bomb, "bomb.png")
    # The JPEG header is read too; and the limit can be lowered.
    monkeypatch.setattr(rkio, "MAX_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="48×48 is 0 megapixels, more than the 0 MP"):
        decode_image(encode(".jpg", np.zeros((48, 48, 3), np.uint8)), "x.jpg")


# --------------------------------------------------------------------------- bad files
PNG = good_png()
JPEG = encode(".jpg", RGB)
BAD_FILES = {
    "truncated.png": (PNG[: len(PNG) // 2], "not a decodable image"),
    "header-only.png": (PNG[:40], "not a decodable image"),
    "truncated.jpg": (JPEG[: len(JPEG) // 2], "not a decodable image"),
    "soi-only.jpg": (JPEG[:10], "not a decodable image"),
    "zero.png": (b"", "empty file (0 bytes)"),
    "notes.png": (b"these are my holiday notes, not a picture\n", "not a decodable image"),
    "random.jpg": (RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not a decodable image"),
    "html.webp": (b"<html><body>404 Not Found</body></html>", "not a decodable image"),
    "bad-crc.png": (PNG[:30] + bytes([PNG[30] ^ 0xFF]) + PNG[31:], "not a decodable image"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_bytes_raise_image_read_error_naming_file_and_reason(tmp_path, name):
    data, reason = BAD_FILES[name]
    path = write(tmp_path / name, data)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == str(path) and reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")


def test_missing_folder_and_unreadable_file_reasons(tmp_path, monkeypatch):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "gone.png")
    folder = write(tmp_path / "dir.png" / "x", b"").parent
    with pytest.raises(ImageReadError, match="is a folder, not a file"):
        read_image(folder)
    os.symlink("moved-away.png", tmp_path / "link.png")
    with pytest.raises(ImageReadError, match=r"broken link \(points at moved-away.png"):
        read_image(tmp_path / "link.png")
    # Permission denied, whoever runs the tests (root reads anything): the OS says no.
    locked = write(tmp_path / "locked.png", PNG)

    def deny(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ImageReadError, match="locked.png: permission denied"):
        read_image(locked)


def test_unlistable_subfolder_is_reported_not_silently_skipped(tmp_path, monkeypatch):
    write(tmp_path / "ok.png", good_png())
    write(tmp_path / "private" / "a.png", good_png(1))
    real_scandir = os.scandir

    def scandir(path="."):  # what a chmod 000 folder does to anyone but root
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    photos = PhotoSet(tmp_path, crop_size=32)
    assert [p.path.name for p in photos.photos] == ["ok.png"]
    assert photos.report.skipped == [
        (str(tmp_path / "private"), "folder cannot be listed (permission denied); its photos are left out")
    ]
    with pytest.raises(DataError, match="private: cannot list this folder"):
        PhotoSet(tmp_path, crop_size=32, on_bad_image="stop")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_chmod_000_file_and_folder_are_reported(tmp_path):
    write(tmp_path / "ok.png", good_png())
    locked = write(tmp_path / "locked.png", good_png(1))
    locked_dir = write(tmp_path / "locked_dir" / "x.png", good_png(2)).parent
    locked.chmod(0)
    locked_dir.chmod(0)
    try:
        photos = PhotoSet(tmp_path, crop_size=32)
    finally:
        locked.chmod(0o644)
        locked_dir.chmod(0o755)
    assert photos.report.skipped == [
        (str(locked), "permission denied"),
        (str(locked_dir), "folder cannot be listed (permission denied); its photos are left out"),
    ]


def test_photo_folder_of_everything_reports_each_bad_file_and_keeps_the_rest(tmp_path):
    folder = tmp_path / "photos"
    for name, (data, _) in BAD_FILES.items():
        write(folder / name, data)
    keep = {
        "plain.png": good_png(1),
        "with space and ünïcödé 雨.png": good_png(2),
        "sub dir/Nested.JPG": encode(".jpg", RGB),
        "gray.png": encode(".png", RGB[..., 0]),
        "rgba.png": encode(".png", np.dstack([RGB, RGB[..., 0]])),
        "deep.tif": encode(".tiff", RGB.astype(np.uint16) * 257),
        "rotated.jpg": with_exif_orientation(encode(".jpg", RGB), 6),
        "small.png": encode(".png", RGB[:10, :12]),
    }
    for name, data in keep.items():
        write(folder / name, data)
    write(folder / "readme.txt", b"not an image, not listed")
    os.symlink("nowhere.png", folder / "dangling.png")
    write(folder / os.fsdecode(b"caf\xe9-latin1.png"), b"garbage")  # a name that is not UTF-8

    photos = PhotoSet(folder, crop_size=32)
    assert len(photos) == len(keep)
    assert {p.path.relative_to(folder).as_posix() for p in photos.photos} == set(keep)
    skipped = dict(photos.report.skipped)
    assert len(skipped) == len(BAD_FILES) + 2
    for name, (_, reason) in BAD_FILES.items():
        assert reason in skipped[str(folder / name)]
    assert "broken link" in skipped[str(folder / "dangling.png")]
    assert str(folder) + "/caf\\xe9-latin1.png" in skipped  # printable, \xNN escaped
    summary = photos.report.summary()
    assert summary.startswith(f"{len(BAD_FILES) + 2} file(s) skipped") and "zero.png: empty file (0 bytes)" in summary
    summary.encode("utf-8")  # printable and loggable, whatever the file names
    n = len(BAD_FILES) + 2
    assert skip_summary({"rainy": photos.report, "clean": SkipReport()}) == (
        f"data: {n} file(s) skipped in all (rainy: {n}); each is listed above and in train.log"
    )
    assert skip_summary({"rainy": SkipReport()}) == "data: no file was skipped"
    with pytest.raises(ImageReadError, match="bad-crc.png: not a decodable image"):
        PhotoSet(folder, crop_size=32, on_bad_image="stop")


def test_empty_and_imageless_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no image files found \(looked for .bmp, .gif, .jpeg.*\); it is empty"):
        list_images(tmp_path / "empty")
    write(tmp_path / "texts" / "a.txt", b"x")
    write(tmp_path / "texts" / "b.md", b"x")
    with pytest.raises(DataError, match=r"no image files found .*; it holds 2 other file\(s\), e\.g\. a\.txt, b\.md"):
        PhotoSet(tmp_path / "texts", crop_size=32)
    with pytest.raises(DataError, match="nope: not a folder \\(it does not exist\\)"):
        list_images(tmp_path / "nope")
    write(tmp_path / "allbad" / "a.png", b"")
    write(tmp_path / "allbad" / "b.jpg", b"junk")
    with pytest.raises(DataError, match=r"none of the 2 image file\(s\) is usable\. 2 file\(s\) skipped\n  .*a.png: "):
        PhotoSet(tmp_path / "allbad", crop_size=32)


# --------------------------------------------------------------------------- sizes against the crop
def test_small_images_are_padded_or_skipped_and_all_small_is_a_config_error(tmp_path):
    write(tmp_path / "mixed" / "big.png", good_png(0, (48, 64)))
    write(tmp_path / "mixed" / "tiny.png", good_png(1, (1, 1)))
    write(tmp_path / "mixed" / "thin.png", good_png(2, (3, 90)))
    padded = PhotoSet(tmp_path / "mixed", crop_size=32, small_images="pad", label_cache=labels())
    assert len(padded) == 3 and not len(padded.report)
    clean = PhotoSet(tmp_path / "mixed", crop_size=32)
    batches = UnpairedBatches(padded, clean, crop_size=32, batch_size=6, flip=True, seed=0)
    batch, skipped = unpack_batch(batches[1])
    assert batch["degraded"].shape == (6, 3, 32, 32) and not skipped
    skipping = PhotoSet(tmp_path / "mixed", crop_size=32, small_images="skip")
    assert [p.path.name for p in skipping.photos] == ["big.png"]
    assert dict(skipping.report.skipped)[str(tmp_path / "mixed" / "thin.png")] == (
        "90×3 is smaller than the 32-pixel crop (small_images: skip)"
    )

    write(tmp_path / "small" / "a.png", good_png(0, (20, 30)))
    write(tmp_path / "small" / "b.png", good_png(1, (24, 24)))
    for mode in ("pad", "skip"):
        with pytest.raises(ConfigError) as info:
            PhotoSet(tmp_path / "small", crop_size=32, small_images=mode)
        assert info.value.path == "data.crop_size"
        assert "32 is larger than every image in" in str(info.value)
        assert "the largest is 24×24, whose shorter side is 24); set data.crop_size to at most 24" in str(info.value)


def test_paired_folders_list_one_sided_and_ambiguous_names_in_one_error(tmp_path):
    root = tmp_path / "pairs"
    for name in ("a", "b", "c d", "sub/e"):
        write(root / "rain" / f"{name}.png", good_png(1))
        write(root / "gt" / f"{name}.png", good_png(2))
    assert [name for name, *_ in paired_files(root)] == ["a", "b", "c d", "sub/e"]
    write(root / "rain" / "only-rain-1.png", good_png())
    write(root / "rain" / "only-rain-2.jpg", encode(".jpg", RGB))
    write(root / "gt" / "only-gt.png", good_png())
    write(root / "gt" / "a.jpg", encode(".jpg", RGB))  # gt/a.png and gt/a.jpg: which one?
    with pytest.raises(DataError) as info:
        paired_files(root)
    message = str(info.value)
    assert "unmatched file names" in message
    assert "in gt/, several files share a name (1): a (.jpg, .png)" in message or "a (.png, .jpg)" in message
    assert "only in rain/ (2): only-rain-1, only-rain-2" in message and "only in gt/ (1): only-gt" in message
    with pytest.raises(DataError, match="missing: gt/"):
        write(tmp_path / "half" / "rain" / "x.png", good_png())
        paired_files(tmp_path / "half")


def test_paired_set_reports_bad_and_mismatched_pairs(tmp_path):
    root = tmp_path / "pairs"
    write(root / "rain" / "ok.png", good_png(1))
    write(root / "gt" / "ok.png", good_png(2))
    write(root / "rain" / "broken.png", b"")
    write(root / "gt" / "broken.png", good_png(3))
    write(root / "rain" / "sizes.png", good_png(4, (40, 40)))
    write(root / "gt" / "sizes.png", good_png(5))
    pairs = PairedSet(root)
    assert [name for name, *_ in pairs.pairs] == ["ok"]
    reasons = dict(pairs.report.skipped)
    assert reasons[str(root / "rain" / "broken.png")] == "empty file (0 bytes)"
    assert "degraded 40×40 and clean 48×48" in reasons[str(root / "rain" / "sizes.png")]
    with pytest.raises(ConfigError, match="64 is larger than every image") as info:
        PairedSet(root, crop_size=64)
    assert info.value.path == "data.crop_size"


# --------------------------------------------------------------------------- files that go bad mid-run
def _photo_sets(tmp_path: Path, on_bad_image: str = "skip"):
    for i in range(4):
        write(tmp_path / "rainy" / f"r{i}.png", good_png(i))
        write(tmp_path / "clean" / f"c{i}.png", good_png(10 + i))
    options = dict(crop_size=32, in_memory=False, on_bad_image=on_bad_image)
    return PhotoSet(tmp_path / "rainy", label_cache=labels(), **options), PhotoSet(tmp_path / "clean", **options)


def test_file_deleted_after_the_scan_is_reported_and_replaced(tmp_path):
    rainy, clean = _photo_sets(tmp_path)
    batches = UnpairedBatches(rainy, clean, crop_size=32, batch_size=8, flip=True, seed=0)
    twin = UnpairedBatches(*_photo_sets(tmp_path), crop_size=32, batch_size=8, flip=True, seed=0)
    (tmp_path / "rainy" / "r1.png").unlink()
    seen = []
    for t in range(1, 6):
        batch, skipped = unpack_batch(batches[t])
        assert batch["degraded"].shape == (8, 3, 32, 32) and "_notes" not in batch
        seen += skipped
    gone = "unreadable during training: file not found (deleted or moved?)"
    assert seen == [(str(tmp_path / "rainy" / "r1.png"), gone)]
    # The replacement draws are a pure function of the iteration: a copy that meets the
    # missing file at another iteration (another worker process, a resumed run) agrees.
    for t in (5, 2):
        a, _ = unpack_batch(batches[t])
        b, _ = unpack_batch(twin[t])
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_every_file_gone_or_stop_mode_ends_the_run_with_a_clear_error(tmp_path):
    rainy, clean = _photo_sets(tmp_path)
    batches = UnpairedBatches(rainy, clean, crop_size=32, batch_size=4, flip=False, seed=0)
    for path in (tmp_path / "rainy").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"rainy: all 4 photo\(s\) have become unreadable during training"):
        unpack_batch(batches[1])

    stop_rainy, stop_clean = _photo_sets(tmp_path / "stop", on_bad_image="stop")
    batches = UnpairedBatches(stop_rainy, stop_clean, crop_size=32, batch_size=4, flip=False, seed=0)
    (tmp_path / "stop" / "clean" / "c0.png").write_bytes(b"overwritten by a broken sync")
    with pytest.raises(DataError, match=r"c0.png: not a decodable image .*\(it was readable when training started\)"):
        for t in range(1, 20):
            unpack_batch(batches[t])
