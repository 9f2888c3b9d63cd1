"""Turn the ``data`` and ``eval`` sections of a config into photo sets and batch sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .._cache import cache_root
from ..config.schema import Config
from ..filters.cache import SoftLabelCache
from .datasets import PairedBatches, PairedSet, PhotoSet, SkipReport, UnpairedBatches

__all__ = ["resolve_folder", "build_train_batches", "build_eval_pairs", "build_label_cache"]

Progress = Callable[[str, int, int], None]


def resolve_folder(value: str) -> Path:
    """A data folder from a config value: a path, or a built-in ``demo:`` name (built on first use)."""
    from .demo import is_demo, resolve_demo

    return resolve_demo(value) if is_demo(value) else Path(value).expanduser()


def build_label_cache(config: Config) -> SoftLabelCache:
    """The soft-label filter of the config, with its cache folder."""
    from ..registries import FILTERS

    label_filter = FILTERS.build(config.dt.soft_label, path="dt.soft_label")
    setting = config.data.soft_label_cache
    root = None if setting is None else (cache_root() / "soft_labels" if setting == "auto" else Path(setting))
    return SoftLabelCache(label_filter, root)


def build_train_batches(
    config: Config, *, rank: int = 0, progress: Progress | None = None
) -> tuple[UnpairedBatches | PairedBatches, dict[str, SkipReport]]:
    """The batch source of the config's method, and what was skipped while loading each folder."""
    data = config.data
    common = dict(crop_size=data.crop_size, batch_size=data.batch_size, flip=data.flip, seed=config.train.seed, rank=rank)

    def report(name: str) -> Callable[[str, int, int], None] | None:
        # PhotoSet reports its stages ("photos", "soft labels"); shown as "rainy photos" etc.
        return None if progress is None else (lambda stage, done, total: progress(f"{name} {stage}", done, total))

    if config.method == "sv":
        assert data.paired is not None
        pairs = PairedSet(
            resolve_folder(data.paired),
            on_bad_image=data.on_bad_image,
            crop_size=data.crop_size,
            small_images=data.small_images,
        )
        return PairedBatches(pairs, **common), {"paired": pairs.report}

    assert data.rainy is not None and data.clean is not None
    photo_options = dict(
        crop_size=data.crop_size, small_images=data.small_images, on_bad_image=data.on_bad_image, in_memory=data.in_memory,
        max_side=data.max_side,
    )
    degraded = PhotoSet(
        resolve_folder(data.rainy), label_cache=build_label_cache(config), progress=report("rainy"), **photo_options
    )
    clean = PhotoSet(resolve_folder(data.clean), progress=report("clean"), **photo_options)
    return UnpairedBatches(degraded, clean, **common), {"rainy": degraded.report, "clean": clean.report}


def build_eval_pairs(config: Config) -> PairedSet | None:
    """The held-out paired set named by ``eval.data``, or None."""
    if config.eval.data is None:
        return None
    return PairedSet(resolve_folder(config.eval.data), on_bad_image=config.data.on_bad_image, limit=config.eval.max_images)
