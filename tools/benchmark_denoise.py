#!/usr/bin/env python
"""Denoising benchmark: restorekit's models beside the classic denoisers on held-out photos.

Two steps, sharing one split of a folder of clean photos so that no photo is in two groups:

    python tools/benchmark_denoise.py prepare --source /photos/clean   # -> runs/denoise_data
    python tools/benchmark_denoise.py score --source /photos/clean \\
        --model sv=runs/sv_denoise_dncnn_cpu --model dt=runs/denoise_dncnn_cpu --json docs/_data/denoise.json
    python tools/benchmark_denoise.py score --quick --json /tmp/denoise.json   # generated images, seconds

The split (:func:`split_photos`): the Kodak24 photos (``kodak24_*``) are the **test** set and
nothing else; of the other photos, in each source group sorted by name, every 8th from the 7th
on is a **tuning** photo (NL-means' ``h`` is chosen on them, and nothing else is), every 8th
from the 8th on a **validation** photo (training settings are chosen on them), and the rest
alternate between **noisy sources** (noise is rendered on them: the degraded training photos
of ``dt``, and with their originals the pairs of ``sv``) and **clean backgrounds** (the
unrelated clean photos of ``dt``'s hard pairs).

``prepare`` renders, with a fixed seed, every training and validation folder the denoising
configs name (``configs/denoise_dncnn*.yaml``): additive white Gaussian noise at σ = 15, 25
and 50 on [0, 255], a σ drawn per photo (blind), and Poisson-Gaussian noise.

``score`` adds noise to every test photo with a fixed seed (one noise image per photo and
noise level, rounded and clipped to uint8 as a saved photo is) and scores: the noisy input;
OpenCV's non-local means (``cv2.fastNlMeansDenoisingColored``, its ``h`` chosen per noise
level on the tuning photos); CBM3D given the true σ (the ``bm3d`` package: ``pip install
-e .[bench]``; skipped with a message without it); each ``dt`` model's soft-label filter; and
each model. PSNR and SSIM on RGB (the denoising literature's convention) and on the luma Y.
Scores of the classic methods are cached per image (``--cache``), so rescoring new models
does not rerun CBM3D.

Models: ``--model LABEL=RUN`` scores one model at every noise level; ``--model LABEL@25=RUN``
scores it at σ = 25 only, so per-σ models make one row (``--model dt@15=A --model dt@25=B``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from restorekit import _atomic  # noqa: E402
from restorekit.data.io import list_images, read_image, write_image  # noqa: E402
from restorekit.device import cpu_description  # noqa: E402
from restorekit.metrics import score_pair  # noqa: E402

DEFAULT_DATA = ROOT / "runs" / "denoise_data"
DEFAULT_CACHE = ROOT / "runs" / "benchmark_denoise" / "cache.json"
SIGMAS = (15.0, 25.0, 50.0)
#: Blind training noise: σ drawn per photo from this range (CDnCNN-B's is [0, 55]).
BLIND_SIGMA = (5.0, 55.0)
#: Poisson-Gaussian noise (variance a·x + b on [0, 1]): 100 photons at white plus read noise of 5/255.
POISSON_GAUSSIAN = {"a": 0.01, "b": 0.0004}
#: NL-means strengths tried on the tuning photos, as multiples of the noise's standard deviation.
NLM_FACTORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")
TEST_PREFIX = "kodak24_"


# --------------------------------------------------------------------------- the split
def _group(path: Path) -> str:
    """The source collection of a photo: the file name up to its first underscore (``sunhays80``)."""
    return path.stem.split("_", 1)[0]


def split_photos(source: str | Path) -> dict[str, list[Path]]:
    """The disjoint groups of a folder of clean photos: test, tune, val, noisy, clean.

    Test: every ``kodak24_*`` photo. Of the others, within each group (file-name prefix) sorted
    by name, index ``i``: ``i % 8 == 6`` tune, ``i % 8 == 7`` val, else even ``i`` noisy and
    odd ``i`` clean. Deterministic: the same folder always splits the same way.
    """
    photos = sorted(list_images(source))
    if not photos:
        raise SystemExit(f"{source}: no images found")
    groups: dict[str, list[Path]] = {"test": [], "tune": [], "val": [], "noisy": [], "clean": []}
    by_source: dict[str, list[Path]] = {}
    for path in photos:
        if path.name.startswith(TEST_PREFIX):
            groups["test"].append(path)
        else:
            by_source.setdefault(_group(path), []).append(path)
    for members in by_source.values():
        for i, path in enumerate(sorted(members)):
            role = {6: "tune", 7: "val"}.get(i % 8, "noisy" if i % 2 == 0 else "clean")
            groups[role].append(path)
    return groups


# --------------------------------------------------------------------------- noise
class Noise:
    """One column of the benchmark: a synthesizer spec, and the σ a non-blind method is given."""

    # A plain class, not a dataclass: tests load this file with importlib, outside sys.modules.
    def __init__(self, key: str, spec: dict[str, Any], label: str) -> None:
        self.key, self.spec, self.label = key, spec, label

    def synthesizer(self):
        from restorekit.registries import SYNTHESIZERS

        return SYNTHESIZERS.build(dict(self.spec))

    def sigma_for(self, clean: np.ndarray) -> float:
        """The noise standard deviation on [0, 255] that CBM3D is given: the true σ, or for
        signal-dependent noise the root-mean-square σ over the photo (an oracle value)."""
        if self.spec["type"] == "gaussian_noise":
            return float(self.spec["sigma"])
        x = clean.astype(np.float64) / 255.0
        return float(np.sqrt(np.mean(self.spec["a"] * x + self.spec["b"])) * 255.0)

    def nominal_sigma(self) -> float:
        """A representative σ (for scaling NL-means' strength grid)."""
        if self.spec["type"] == "gaussian_noise":
            return float(self.spec["sigma"])
        return float(math.sqrt(self.spec["a"] * 0.5 + self.spec["b"]) * 255.0)

    def noisy(self, clean: np.ndarray, seed: int, index: int) -> np.ndarray:
        """The noisy test photo ``index``: a pure function of the seed, this column and the photo."""
        rng = np.random.default_rng([seed, zlib.crc32(self.key.encode()), index])
        return self.synthesizer()(clean, rng)


def gaussian(sigma: float) -> Noise:
    return Noise(f"s{sigma:g}", {"type": "gaussian_noise", "sigma": float(sigma)}, f"σ = {sigma:g}")


def poisson_gaussian(a: float, b: float) -> Noise:
    return Noise("pg", {"type": "poisson_gaussian_noise", "a": a, "b": b}, f"Poisson-Gaussian a = {a:g}, b = {b:g}")


# --------------------------------------------------------------------------- prepare
def _render(photos: list[Path], noise_spec: dict[str, Any], seed: int, folder: Path, paired: Path | None) -> list[dict]:
    from restorekit.registries import SYNTHESIZERS

    records = []
    for index, path in enumerate(photos):
        clean = read_image(path)
        # One generator per photo: the draw of a blind σ, then the noise, are the photo's own.
        rng = np.random.default_rng([seed, index])
        spec = dict(noise_spec)
        if spec["type"] == "gaussian_noise" and isinstance(spec["sigma"], (list, tuple)):
            spec["sigma"] = float(rng.uniform(*spec["sigma"]))
        noisy = SYNTHESIZERS.build(spec)(clean, rng)
        name = path.stem + ".png"
        write_image(folder / name, noisy)
        if paired is not None:
            write_image(paired / "rain" / name, noisy)
            write_image(paired / "gt" / name, clean)
        records.append({"photo": path.name, **({"sigma": spec["sigma"]} if spec["type"] == "gaussian_noise" else {})})
    return records


#: What prepare writes: folder -> (group of photos, noise, seed). Paired folders get rain/ + gt/.
def training_sets() -> dict[str, tuple[str, dict[str, Any] | None, int]]:
    # sv_all: every training photo, clean (the noisy photos' originals and dt's clean photos): the
    # content dt sees in all, which sv learns from with fresh noise.
    sets: dict[str, tuple[str, dict[str, Any] | None, int]] = {"clean": ("clean", None, 0), "sv_all": ("noisy+clean", None, 0)}
    for sigma in SIGMAS:
        spec = {"type": "gaussian_noise", "sigma": sigma}
        sets[f"noisy_s{sigma:g}"] = ("noisy", spec, 1000 + int(sigma))
        sets[f"val_s{sigma:g}"] = ("val", spec, 2000 + int(sigma))
    sets["noisy_blind"] = ("noisy", {"type": "gaussian_noise", "sigma": list(BLIND_SIGMA)}, 1100)
    sets["noisy_pg"] = ("noisy", {"type": "poisson_gaussian_noise", **POISSON_GAUSSIAN}, 1200)
    sets["val_pg"] = ("val", {"type": "poisson_gaussian_noise", **POISSON_GAUSSIAN}, 2200)
    return sets


def prepare(source: Path, out: Path) -> dict[str, Any]:
    """Render the training and validation folders; ``noisy_*`` beside ``paired_*`` (their sv pairs)."""
    groups = split_photos(source)
    manifest: dict[str, Any] = {
        "source": str(source),
        "split": {role: [p.name for p in paths] for role, paths in groups.items()},
        "sets": {},
    }
    for name, (role, spec, seed) in training_sets().items():
        folder = out / name
        if spec is None:
            for path in sorted(p for part in role.split("+") for p in groups[part]):
                write_image(folder / (path.stem + ".png"), read_image(path))
            manifest["sets"][name] = {"photos": role}
            continue
        paired = out / name.replace("noisy_", "paired_") if name.startswith("noisy_") else None
        # Validation sets are paired folders themselves (rain/ + gt/), as eval.data expects.
        target = folder / "rain" if name.startswith("val_") else folder
        records = _render(groups[role], spec, seed, target, paired)
        if name.startswith("val_"):
            for path in groups[role]:
                write_image(folder / "gt" / (path.stem + ".png"), read_image(path))
        manifest["sets"][name] = {"photos": role, "noise": spec, "seed": seed, "rendered": records}
    out.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------- the classic denoisers
def nlm(image: np.ndarray, h: float, h_color: float) -> np.ndarray:
    """OpenCV's colour non-local means (7×7 patches, 21×21 search: OpenCV's defaults) on RGB uint8."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.fastNlMeansDenoisingColored(bgr, None, h, h_color, 7, 21), cv2.COLOR_BGR2RGB)


def cbm3d_available() -> bool:
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return False
    return True


def cbm3d(image: np.ndarray, sigma: float) -> np.ndarray:
    """CBM3D (the ``bm3d`` package's ``bm3d_rgb``, its default profile) given the noise σ on [0, 255]."""
    import bm3d

    out = bm3d.bm3d_rgb(image.astype(np.float64) / 255.0, sigma / 255.0)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def tune_nlm(
    photos: list[tuple[str, np.ndarray]], noise: Noise, seed: int, factors: Sequence[float] = NLM_FACTORS
) -> dict[str, Any]:
    """Choose NL-means' ``h`` (= ``hColor``) for ``noise`` by mean PSNR-RGB over the tuning photos."""
    sigma = noise.nominal_sigma()
    noisy = [(clean, noise.noisy(clean, seed + 7919, i)) for i, (_, clean) in enumerate(photos)]
    tried = {}
    for factor in factors:
        h = round(factor * sigma, 2)
        tried[h] = float(np.mean([score_pair(nlm(x, h, h), clean).psnr_rgb for clean, x in noisy]))
    best = max(tried, key=tried.get)
    return {"h": best, "h_color": best, "tried_psnr_rgb": {f"{h:g}": v for h, v in tried.items()}}


# --------------------------------------------------------------------------- score cache
class ScoreCache:
    """Per-image scores of the classic methods, keyed by method, noise, seed and photo content."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, float]] = {}
        if path is not None and path.is_file():
            self.entries = json.loads(path.read_text(encoding="utf-8"))

    def get(self, key: str) -> dict[str, float] | None:
        return self.entries.get(key)

    def put(self, key: str, scores: dict[str, float]) -> None:
        self.entries[key] = scores
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _atomic.write_text(self.path, json.dumps(self.entries, indent=1) + "\n")


def _digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- models
class ModelSpec:
    """A model to score: its row label, run folder, noise columns (None: every one), restorer and facts."""

    def __init__(self, label: str, path: Path, noise_keys: list[str] | None, restorer: Any,
                 info: dict[str, Any], soft_label: dict[str, Any] | None) -> None:
        self.label, self.path, self.noise_keys = label, path, noise_keys
        self.restorer, self.info, self.soft_label = restorer, info, soft_label


def parse_model(text: str) -> tuple[str, str | None, Path]:
    """``LABEL=PATH`` or ``LABEL@KEY=PATH`` (``KEY``: a σ such as 25, or ``pg``)."""
    label, eq, path = text.partition("=")
    if not eq or not label or not path:
        raise argparse.ArgumentTypeError(f"--model wants LABEL=RUN or LABEL@SIGMA=RUN, got {text!r}")
    label, at, key = label.partition("@")
    if at:
        key = key if key == "pg" else f"s{float(key):g}"
    return label, (key if at else None), Path(path)


def load_models(entries: list[tuple[str, str | None, Path]], precision: str) -> list[ModelSpec]:
    import yaml

    from restorekit.inference import Restorer
    from restorekit.model_file import load_model

    models = []
    for label, key, path in entries:
        loaded = load_model(path)
        config_file = (path if path.is_dir() else path.parent) / "config.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        soft_label = (config.get("dt") or {}).get("soft_label") if config.get("method") == "dt" else None
        info = {
            "path": str(path),
            "backbone": loaded.spec,
            "method": loaded.info.get("method", config.get("method")),
            "iterations": loaded.info.get("iteration"),
            "config": loaded.info.get("config"),
            "batch": [(config.get("data") or {}).get("batch_size"), (config.get("data") or {}).get("crop_size")],
            "train_data": (config.get("data") or {}).get("rainy" if config.get("method") == "dt" else "paired"),
        }
        restorer = Restorer(loaded.backbone, "cpu", precision=precision, channels_last=True)
        models.append(ModelSpec(label, path, None if key is None else [key], restorer, info, soft_label))
    return models


# --------------------------------------------------------------------------- scoring
def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in METRICS}


def _scores(restored: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    s = score_pair(restored, clean)
    return {"psnr_rgb": s.psnr_rgb, "ssim_rgb": s.ssim_rgb, "psnr_y": s.psnr_y, "ssim_y": s.ssim_y}


def score(
    test: list[tuple[str, np.ndarray]],
    tune: list[tuple[str, np.ndarray]],
    noises: list[Noise],
    models: list[ModelSpec],
    *,
    seed: int = 0,
    use_cbm3d: bool = True,
    cache: ScoreCache | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every row (method) at every column (noise): mean PSNR/SSIM over the test photos."""
    from restorekit.registries import FILTERS

    cache = cache or ScoreCache(None)
    rows: dict[str, dict[str, Any]] = {}

    def add(label: str, kind: str, key: str, per_image: list[dict[str, float]], **extra: Any) -> None:
        row = rows.setdefault(label, {"label": label, "kind": kind, "scores": {}, **extra})
        row["scores"][key] = {**_mean(per_image), "images": len(per_image)}

    def classic(method: str, key: str, params: str, run: Callable[[np.ndarray, np.ndarray], np.ndarray],
                noisy_images: list[np.ndarray]) -> list[dict[str, float]]:
        out = []
        for (name, clean), noisy in zip(test, noisy_images):
            cache_key = f"{method}|{params}|{key}|{seed}|{_digest(clean)}"
            hit = cache.get(cache_key)
            if hit is None:
                started = time.perf_counter()
                hit = _scores(run(noisy, clean), clean)
                cache.put(cache_key, hit)
                log(f"  {method} {key} {name}: {hit['psnr_rgb']:.2f} dB ({time.perf_counter() - started:.1f} s)")
            out.append(hit)
        return out

    nlm_choice = {}
    for noise in noises:
        log(f"{noise.label}: tuning NL-means on {len(tune)} photos")
        nlm_choice[noise.key] = tune_nlm(tune, noise, seed)
        log(f"  h = {nlm_choice[noise.key]['h']:g} ({nlm_choice[noise.key]['tried_psnr_rgb']})")
    if use_cbm3d and not cbm3d_available():
        log("CBM3D skipped: the bm3d package is not installed (pip install -e '.[bench]')")
        use_cbm3d = False

    for noise in noises:
        key = noise.key
        noisy_images = [noise.noisy(clean, seed, i) for i, (_, clean) in enumerate(test)]
        add("noisy input", "input", key, [_scores(x, c) for x, (_, c) in zip(noisy_images, test)])
        h = nlm_choice[key]["h"]
        add("NL-means (OpenCV)", "classic", key,
            classic("nlm", key, f"h={h:g}", lambda x, c: nlm(x, h, h), noisy_images))
        rows["NL-means (OpenCV)"].setdefault("h", {})[key] = h
        if use_cbm3d:
            add("CBM3D (true σ)", "classic", key,
                classic("cbm3d", key, "np", lambda x, c: cbm3d(x, noise.sigma_for(c)), noisy_images))
        for model in models:
            if model.noise_keys is not None and key not in model.noise_keys:
                continue
            if model.soft_label is not None:
                label_filter = FILTERS.build(model.soft_label)
                filter_label = f"{model.label}: soft label ({model.soft_label['type']})"
                per_image = [_scores(label_filter(x), c) for x, (_, c) in zip(noisy_images, test)]
                add(filter_label, "filter", key, per_image)
                rows[filter_label].setdefault("filter", {})[key] = model.soft_label
            started = time.perf_counter()
            per_image = [_scores(model.restorer(x), c) for x, (_, c) in zip(noisy_images, test)]
            add(model.label, "model", key, per_image)
            rows[model.label].setdefault("models", {})[key] = model.info
            log(f"  {model.label} {key}: {rows[model.label]['scores'][key]['psnr_rgb']:.2f} dB "
                f"({time.perf_counter() - started:.1f} s)")

    # Rows in a fixed order: the classic methods, then each model after its soft-label filter.
    order = ["noisy input", "NL-means (OpenCV)", "CBM3D (true σ)"]
    for model in models:
        if model.soft_label is not None:
            order.append(f"{model.label}: soft label ({model.soft_label['type']})")
        order.append(model.label)
    ranked = sorted(rows.values(), key=lambda row: order.index(row["label"]))
    return {
        "columns": [{"key": n.key, "label": n.label, "noise": n.spec} for n in noises],
        "nlm": nlm_choice,
        "rows": ranked,
    }


def table_text(result: dict[str, Any]) -> str:
    """A plain-text table: PSNR-RGB / SSIM-RGB, then PSNR-Y / SSIM-Y, per column."""
    columns = result["columns"]
    width = max(len(r["label"]) for r in result["rows"]) + 2
    lines = []
    for a, b, title in (("psnr_rgb", "ssim_rgb", "RGB"), ("psnr_y", "ssim_y", "Y")):
        lines.append(f"{'PSNR / SSIM (' + title + ')':<{width}}" + "".join(f" {c['label']:>21}" for c in columns))
        for row in result["rows"]:
            cells = []
            for c in columns:
                s = row["scores"].get(c["key"])
                cells.append(f"{s[a]:>14.2f} / {s[b]:.4f}" if s else f"{'—':>22}")
            lines.append(f"{row['label']:<{width}}" + "".join(f"{cell:>22}" for cell in cells))
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the figure
def figure(
    clean: np.ndarray, noise: Noise, seed: int, index: int, panels: list[tuple[str, Callable[[np.ndarray], np.ndarray]]],
    crop: tuple[int, int, int], path: Path,
) -> list[dict[str, Any]]:
    """A row of crops (``y, x, size``) of one test photo: each panel's output, labelled with its whole-photo PSNR-RGB."""
    noisy = noise.noisy(clean, seed, index)
    y, x, size = crop
    tiles, record = [], []
    for label, run in panels:
        out = run(noisy) if label != "truth" else clean
        s = score_pair(out, clean)
        tile = np.ascontiguousarray(out[y : y + size, x : x + size])
        caption = label if label == "truth" else f"{label} {s.psnr_rgb:.2f} dB"
        bar = np.full((22, size, 3), 255, np.uint8)
        cv2.putText(bar, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([tile, bar]))
        tiles.append(np.full((size + 22, 4, 3), 255, np.uint8))
        record.append({"panel": label, "psnr_rgb": s.psnr_rgb, "ssim_rgb": s.ssim_rgb})
    write_image(path, np.hstack(tiles[:-1]), jpeg_quality=88)
    return record


# --------------------------------------------------------------------------- command line
def _load(paths: list[Path]) -> list[tuple[str, np.ndarray]]:
    return [(p.stem, read_image(p)) for p in paths]


def _quick_photos() -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    from restorekit.testing import make_photo

    test = [(f"generated_{i}", make_photo(500 + i, 64, 64)) for i in range(3)]
    tune = [(f"generated_{i}", make_photo(600 + i, 64, 64)) for i in range(2)]
    return test, tune


def environment() -> dict[str, Any]:
    import torch

    cpu = cpu_description()
    return {"cpu": cpu["model"], "cpu_flags": cpu["flags"], "cores": cpu["cores"], "torch": torch.__version__,
            "opencv": cv2.__version__, "bm3d": _bm3d_version()}


def _bm3d_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("bm3d")
    except Exception:
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="render the training and validation folders of the denoising configs")
    p.add_argument("--source", type=Path, required=True, help="folder of clean photos (kodak24_* are held out)")
    p.add_argument("--out", type=Path, default=DEFAULT_DATA, help=f"where to write (default {DEFAULT_DATA})")

    s = sub.add_parser("score", help="score the classic denoisers and restorekit models on the test photos")
    s.add_argument("--source", type=Path, help="folder of clean photos: the kodak24_* test set, the tuning photos")
    s.add_argument("--quick", action="store_true", help="generated 64×64 images instead of --source (a smoke test)")
    s.add_argument("--model", action="append", default=[], type=parse_model, metavar="LABEL[@SIGMA]=RUN")
    s.add_argument("--sigma", type=float, nargs="+", default=list(SIGMAS), help="Gaussian σ on [0, 255]")
    s.add_argument("--poisson-gaussian", action="store_true", help="add a column of Poisson-Gaussian noise "
                   f"(a = {POISSON_GAUSSIAN['a']}, b = {POISSON_GAUSSIAN['b']})")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--limit", type=int, help="score only the first N test photos")
    s.add_argument("--no-cbm3d", action="store_true", help="leave CBM3D out (it takes about a minute a photo)")
    s.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"], help="models' inference precision")
    s.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="per-image scores of the classic methods")
    s.add_argument("--no-cache", action="store_true")
    s.add_argument("--json", type=Path, help="write the results here (docs: docs/_data/denoise.json)")
    s.add_argument("--figure", type=Path, help="write a JPEG row of crops: noisy | NL-means | CBM3D | models | truth")
    s.add_argument("--figure-photo", default="kodak24_kodim23", help="test photo of the figure")
    s.add_argument("--figure-sigma", default="25", help="noise column of the figure (a σ, or pg)")
    s.add_argument("--figure-crop", default="150,180,160", help="y,x,size of the crop")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "prepare":
        manifest = prepare(args.source, args.out)
        sizes = {k: len(v) for k, v in manifest["split"].items()}
        print(f"split of {args.source}: {sizes}; folders in {args.out}: {', '.join(manifest['sets'])}")
        return 0

    cv2.setNumThreads(1)
    if args.quick:
        test, tune = _quick_photos()
        source = "generated (restorekit.testing.make_photo, 64×64)"
    else:
        if args.source is None:
            raise SystemExit("score needs --source (or --quick)")
        groups = split_photos(args.source)
        if not groups["test"]:
            raise SystemExit(f"{args.source}: no {TEST_PREFIX}* test photos")
        test, tune = _load(groups["test"][: args.limit]), _load(groups["tune"])
        source = f"{args.source}: {len(test)} Kodak24 photos; NL-means tuned on {len(tune)} other photos"
    noises = [gaussian(s) for s in args.sigma] + (
        [poisson_gaussian(POISSON_GAUSSIAN["a"], POISSON_GAUSSIAN["b"])] if args.poisson_gaussian else []
    )
    models = load_models(args.model, args.precision)
    cache = ScoreCache(None if args.no_cache or args.quick else args.cache)
    result = score(test, tune, noises, models, seed=args.seed, use_cbm3d=not args.no_cbm3d, cache=cache)
    result.update({
        "test_set": source,
        "test_photos": [name for name, _ in test],
        "tuning_photos": [name for name, _ in tune],
        "seed": args.seed,
        "quick": bool(args.quick),
        "precision": args.precision,
        "noisy_input": "clean + noise, rounded and clipped to uint8 (as a saved photo)",
        "environment": environment(),
        "command": "python tools/benchmark_denoise.py " + " ".join(sys.argv[1:] if argv is None else argv),
    })
    print(table_text(result))
    if args.figure:
        key = args.figure_sigma if args.figure_sigma == "pg" else f"s{float(args.figure_sigma):g}"
        noise = next(n for n in noises if n.key == key)
        index = next(i for i, (name, _) in enumerate(test) if name == args.figure_photo) if not args.quick else 0
        h = result["nlm"][key]["h"]
        panels: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [("noisy", lambda x: x),
                                                                        ("NL-means", lambda x: nlm(x, h, h))]
        clean = test[index][1]
        if not args.no_cbm3d and cbm3d_available():
            panels.append(("CBM3D", lambda x: cbm3d(x, noise.sigma_for(clean))))
        for model in models:
            if model.noise_keys is None or key in model.noise_keys:
                panels.append((model.label, model.restorer))
        panels.append(("truth", lambda x: x))
        crop = tuple(int(v) for v in args.figure_crop.split(","))
        if args.quick:
            crop = (0, 0, 64)
        result["figure"] = {"file": args.figure.name, "photo": test[index][0], "noise": key, "crop": list(crop),
                            "panels": figure(clean, noise, args.seed, index, panels, crop, args.figure)}  # type: ignore[arg-type]
        print(f"figure: {args.figure}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        _atomic.write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
