"""Built-in demo datasets: real photographs degraded by restorekit's own synthesizers.

``demo:<task>/<subset>`` names a folder that is rendered on first use from sample photos
that scikit-image ships inside its wheel, so the README's first training run needs nothing
downloaded. Degraded-training, clean-training and test photos are different photos, as the
unpaired method assumes:

* ``rainy`` (degraded training): astronaut, coffee, immunohistochemistry, camera;
* ``clean`` (clean training backgrounds): retina, brick, grass, gravel, coins, moon;
* ``paired``: the ``rainy`` photos with their clean originals (``rain/`` + ``gt/``), for the
  supervised (``sv``) baseline, which sees the same training photos as ``dt`` plus their truth;
* test sets (paired ``rain/`` + ``gt/`` with matching names): chelsea and rocket, each
  rendered with two seeds (four pairs).

Tasks: ``rain``, ``snow`` and ``noise`` (Gaussian σ = 25 on [0, 255]; its test sets are
``test`` plus the literature's ``test_s15``, ``test_s25`` and ``test_s50``).

On disk (``<cache>`` is ``$RESTOREKIT_CACHE`` or ``~/.cache/restorekit``)::

    <cache>/demo/v2/<task>/rainy/*.png
    <cache>/demo/v2/<task>/clean/*.png
    <cache>/demo/v2/<task>/paired/rain/*.png  and  .../gt/*.png
    <cache>/demo/v2/<task>/<testset>/rain/*.png  and  .../gt/*.png
    <cache>/demo/v2/<task>/manifest.json

A task is rendered into a temporary folder beside its final place and renamed into place
when complete, so a reader never sees half a dataset and two processes may build at once.
The degradations are pinned in :data:`TASKS`; change them (or the synthesizers) only
together with :data:`DEMO_VERSION`, so old caches are not mistaken for new data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import CACHE_ENV, cache_root
from ..errors import DataError, did_you_mean

__all__ = [
    "CACHE_ENV",
    "DEMO_PREFIX",
    "DEMO_VERSION",
    "TASKS",
    "DegradationSet",
    "DemoTask",
    "check_demo_name",
    "demo_names",
    "demo_root",
    "is_demo",
    "resolve_demo",
    "resolve_folder",
]

#: Values starting with this prefix name built-in demo data instead of a folder.
DEMO_PREFIX = "demo:"
#: Bump when the photos, the table below or the synthesizers change the rendered files.
DEMO_VERSION = "v2"
#: Photos are downscaled (area-averaged) to at most this long side, to keep the demo fast.
MAX_SIDE = 512

#: Which photos go where; no photo is in two splits.
RAINY_PHOTOS = ("astronaut", "coffee", "immunohistochemistry", "camera")
CLEAN_PHOTOS = ("retina", "brick", "grass", "gravel", "coins", "moon")
TEST_PHOTOS = ("chelsea", "rocket")
#: Each test photo is degraded this many times, with different seeds: ``chelsea_1.png`` ...
TEST_RENDERS = (1, 2)

#: The file inside scikit-image's ``data`` folder that holds each photo. They are read
#: directly (the same pixels as the ``skimage.data`` loaders give) so that nothing can ever
#: fall through to scikit-image's downloader.
_BUNDLED_FILES = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "immunohistochemistry": "ihc.png",
    "camera": "camera.png",
    "retina": "retina.jpg",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "coins": "coins.png",
    "moon": "moon.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
}

_TRAIN_SUBSETS = ("rainy", "clean", "paired")


@dataclass(frozen=True)
class DegradationSet:
    """One rendering of photos: a synthesizer spec for ``SYNTHESIZERS.build`` and a base seed."""

    synthesizer: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class DemoTask:
    """A demo task: how its training photos are degraded, and its paired test sets by name."""

    train: DegradationSet
    tests: Mapping[str, DegradationSet] = field(default_factory=dict)

    @property
    def subsets(self) -> tuple[str, ...]:
        return (*_TRAIN_SUBSETS, *self.tests)


# --------------------------------------------------------------------------- the degradations
# Every argument is spelled out, not left to the synthesizer's defaults, so changing a
# default elsewhere cannot silently change the demo data of a version.

#: Light rain like Rain100L: thin (1–1.8 px) streaks changing ~10–18% of the pixels; rainy
#: test inputs score about 26 dB Y-PSNR (Rain100L's inputs: about 27 dB). Sparse enough that
#: the method's median-31 soft label removes them.
_RAIN = {
    "type": "rain",
    "density": (0.0015, 0.003),
    "length": (12.0, 32.0),
    "angle": (-25.0, 25.0),
    "angle_jitter": 3.0,
    "width": (1.0, 1.8),
    "brightness": (0.35, 0.7),
    "layers": (1, 2),
    "blend": "screen",
}

#: Snow of three flake sizes, half the classes motion-blurred; only a light haze, since a
#: median soft label cannot see a veil that covers the whole frame.
_SNOW = {
    "type": "snow",
    "density": (0.003, 0.007),
    "size": (0.9, 4.0),
    "classes": 3,
    "opacity": (0.7, 1.0),
    "motion_prob": 0.5,
    "motion_length": (3.0, 8.0),
    "angle": (-30.0, 30.0),
    "haze": (0.0, 0.1),
}


def _gaussian(sigma: float) -> dict[str, Any]:
    return {"type": "gaussian_noise", "sigma": sigma}


#: The demo tasks. Seeds differ between every training and test rendering.
TASKS: dict[str, DemoTask] = {
    "rain": DemoTask(
        train=DegradationSet(_RAIN, seed=1001),
        tests={"test": DegradationSet(_RAIN, seed=2001)},
    ),
    "snow": DemoTask(
        train=DegradationSet(_SNOW, seed=1002),
        tests={"test": DegradationSet(_SNOW, seed=2002)},
    ),
    "noise": DemoTask(
        train=DegradationSet(_gaussian(25.0), seed=1003),
        tests={
            "test": DegradationSet(_gaussian(25.0), seed=2003),
            "test_s15": DegradationSet(_gaussian(15.0), seed=2015),
            "test_s25": DegradationSet(_gaussian(25.0), seed=2025),
            "test_s50": DegradationSet(_gaussian(50.0), seed=2050),
        },
    ),
}


# --------------------------------------------------------------------------- names
def is_demo(value: str) -> bool:
    """True for values that name built-in demo data (``demo:...``)."""
    return isinstance(value, str) and value.startswith(DEMO_PREFIX)


def demo_names() -> list[str]:
    """Every valid ``demo:<task>/<subset>`` name."""
    return [f"{DEMO_PREFIX}{task}/{subset}" for task, spec in TASKS.items() for subset in spec.subsets]


def _parse_demo_name(value: str) -> tuple[str, str]:
    """Split ``demo:<task>/<subset>`` into its task and subset; ValueError if either is unknown."""
    listing = "Valid demo names: " + ", ".join(demo_names()) + "."
    if not is_demo(value):
        raise ValueError(f"{value!r} is not a demo name (they start with {DEMO_PREFIX!r}). {listing}")
    task, slash, subset = value[len(DEMO_PREFIX) :].partition("/")
    if task not in TASKS:
        hint = did_you_mean(task, TASKS)
        raise ValueError(f"unknown demo task {task!r} in {value!r}.{hint} Tasks: {', '.join(TASKS)}. {listing}")
    subsets = TASKS[task].subsets
    if not slash or subset not in subsets:
        what = f"has no subset {subset!r}" if slash else "needs a subset, like 'demo:<task>/<subset>'"
        hint = did_you_mean(subset, subsets) if slash else ""
        raise ValueError(f"demo task {task!r} {what} ({value!r}).{hint} Its subsets: {', '.join(subsets)}. {listing}")
    return task, subset


def resolve_folder(value: str) -> Path:
    """A data folder from a config value: a path, or a built-in ``demo:`` name (built on first use)."""
    return resolve_demo(value) if is_demo(value) else Path(value).expanduser()


def check_demo_name(value: str) -> None:
    """Raise ValueError, listing the valid names and a did-you-mean, unless ``value`` is a demo name.

    Only checks the name: it needs neither scikit-image nor the cache.
    """
    _parse_demo_name(value)


# --------------------------------------------------------------------------- cache folders
def demo_root() -> Path:
    """The folder holding this version's demo tasks: ``<cache>/demo/v2``.

    ``<cache>`` is ``$RESTOREKIT_CACHE`` if set, else ``~/.cache/restorekit``
    (``restorekit._cache.cache_root()``, shared with the soft-label cache).
    """
    return cache_root() / "demo" / DEMO_VERSION


def _manifest_path(task_dir: Path) -> Path:
    return task_dir / "manifest.json"


def resolve_demo(value: str) -> Path:
    """The folder of a demo subset, rendering its task first if it is not in the cache yet.

    Args:
        value: a demo name such as ``"demo:rain/rainy"`` or ``"demo:noise/test_s50"``.

    Returns:
        ``<cache>/demo/v2/<task>/<subset>``: a folder of PNGs for ``rainy``/``clean``, or a
        paired folder with ``rain/`` and ``gt/`` for a test set.

    Raises:
        ValueError: ``value`` is not a valid demo name.
        DataError: scikit-image is missing, or the cache cannot be written or is damaged.
    """
    task, subset = _parse_demo_name(value)
    task_dir = demo_root() / task
    if not _manifest_path(task_dir).is_file():
        _build_task(task, task_dir)
    folder = task_dir / subset
    if not folder.is_dir():
        raise DataError(f"demo folder {folder} is missing from the cache; delete {task_dir} to rebuild it")
    return folder


def _build_task(task: str, task_dir: Path) -> None:
    """Render ``task`` in a temporary folder beside ``task_dir``, then rename it into place."""
    data_dir = _bundled_photo_dir()
    try:
        task_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{task}-building-", dir=task_dir.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; the renamed dataset should read like any folder
    except OSError as exc:
        raise DataError(
            f"cannot create the demo cache in {task_dir.parent}: {exc}. Set {CACHE_ENV} to a writable folder."
        ) from exc
    try:
        _render_task(task, data_dir, staging)
        try:
            os.replace(staging, task_dir)
        except OSError:
            # Another process renamed its copy into place first: use that one.
            if not _manifest_path(task_dir).is_file():
                raise DataError(f"{task_dir} exists but is not a complete demo dataset; delete it to rebuild") from None
    except OSError as exc:
        raise DataError(f"cannot write the demo data to {task_dir.parent}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- rendering
def _bundled_photo_dir() -> Path:
    """scikit-image's folder of bundled sample photos; DataError if it is not installed."""
    try:
        import skimage
    except ImportError:
        raise DataError(
            "the built-in demo data is rendered from scikit-image's sample photos, but scikit-image "
            'is not installed: pip install "restorekit[demo]" (or pip install scikit-image)'
        ) from None
    return Path(skimage.__file__).parent / "data"


def _load_photo(data_dir: Path, name: str) -> np.ndarray:
    """A bundled photo as H×W×3 uint8 RGB, its long side at most :data:`MAX_SIDE`."""
    import cv2

    from .io import downscale_long_side

    path = data_dir / _BUNDLED_FILES[name]
    if not path.is_file():
        raise DataError(
            f"scikit-image's sample photo {path.name!r} ({name}) is not in {data_dir}; the demo needs "
            "the photos bundled in the scikit-image wheel (pip install scikit-image>=0.21)"
        )
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot decode scikit-image's sample photo {path}")
    image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(downscale_long_side(image, MAX_SIDE))


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"OpenCV could not write {path}")


def _render_task(task: str, data_dir: Path, out_dir: Path) -> None:
    """Write every subset of ``task`` and its manifest into ``out_dir``."""
    from ..registries import SYNTHESIZERS

    spec = TASKS[task]
    photos = {name: _load_photo(data_dir, name) for name in (*RAINY_PHOTOS, *CLEAN_PHOTOS, *TEST_PHOTOS)}

    train_synth = SYNTHESIZERS.build(dict(spec.train.synthesizer))
    for index, name in enumerate(RAINY_PHOTOS):
        rng = np.random.default_rng([spec.train.seed, index])
        degraded = train_synth(photos[name], rng)
        _write_png(out_dir / "rainy" / f"{name}.png", degraded)
        _write_png(out_dir / "paired" / "rain" / f"{name}.png", degraded)
        _write_png(out_dir / "paired" / "gt" / f"{name}.png", photos[name])
    for name in CLEAN_PHOTOS:
        _write_png(out_dir / "clean" / f"{name}.png", photos[name])

    for test_name, test in spec.tests.items():
        test_synth = SYNTHESIZERS.build(dict(test.synthesizer))
        for index, name in enumerate(TEST_PHOTOS):
            for render in TEST_RENDERS:
                rng = np.random.default_rng([test.seed, index, render])
                file_name = f"{name}_{render}.png"
                _write_png(out_dir / test_name / "rain" / file_name, test_synth(photos[name], rng))
                _write_png(out_dir / test_name / "gt" / file_name, photos[name])

    manifest = {
        "version": DEMO_VERSION,
        "task": task,
        "sources": "scikit-image sample photos (skimage.data)",
        "rainy": {"photos": list(RAINY_PHOTOS), "synthesizer": _plain(spec.train.synthesizer), "seed": spec.train.seed},
        "clean": {"photos": list(CLEAN_PHOTOS)},
        "paired": {"photos": list(RAINY_PHOTOS), "note": "the rainy photos with their clean originals"},
        "tests": {
            name: {
                "photos": list(TEST_PHOTOS),
                "renders": list(TEST_RENDERS),
                "synthesizer": _plain(test.synthesizer),
                "seed": test.seed,
            }
            for name, test in spec.tests.items()
        },
        "max_side": MAX_SIDE,
    }
    # Written last: its presence marks the folder complete.
    _manifest_path(out_dir).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in spec.items()}
