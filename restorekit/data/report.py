"""What a data set left out, and why: every skipped file is reported by path and reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .io import shown_path

__all__ = ["SkipReport", "skip_summary", "crop_too_large"]


@dataclass
class SkipReport:
    """Files left out of a data set, with the reason for each."""

    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: object, reason: str) -> None:
        self.skipped.append((shown_path(str(path)), reason))

    def __len__(self) -> int:
        return len(self.skipped)

    def __contains__(self, path: object) -> bool:
        shown = shown_path(str(path))
        return any(p == shown for p, _ in self.skipped)

    def summary(self) -> str:
        return f"{len(self.skipped)} file(s) skipped" + "".join(f"\n  {p}: {r}" for p, r in self.skipped[:20]) + (
            f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
        )


def skip_summary(reports: dict[str, SkipReport]) -> str:
    """One line for the end of a run: how many files were skipped in all, and where."""
    total = sum(len(r) for r in reports.values())
    if not total:
        return "data: no file was skipped"
    parts = ", ".join(f"{name}: {len(r)}" for name, r in reports.items() if len(r))
    return f"data: {total} file(s) skipped in all ({parts}); each is listed above and in train.log"




def crop_too_large(crop_size: int, folder: object, sizes: list[tuple[int, int]]) -> ConfigError:
    """The error for a crop larger than every image of ``folder`` (``sizes`` are ``(width, height)``).

    It names the config key ``data.crop_size``, where a crop size always comes from.
    """
    width, height = max(sizes, key=lambda wh: min(wh))
    return ConfigError(
        f"{crop_size} is larger than every image in {shown_path(str(folder))} ({len(sizes)} image(s); the largest "
        f"is {width}×{height}, whose shorter side is {min(width, height)}); set data.crop_size to at most "
        f"{min(width, height)}, or use larger images",
        path="data.crop_size",
    )
