"""Degradation synthesizers: render rain, snow or noise onto clean photos, seeded.

They make the built-in demo data, the paired evaluation sets and test fixtures. Each is
registered in :data:`restorekit.SYNTHESIZERS` and imported on first use.
"""

from .base import Synthesizer

__all__ = ["Synthesizer"]
