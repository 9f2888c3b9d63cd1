"""Shim: `python tools/restore.py ...` is `restorekit restore ...` (works from a checkout)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restorekit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["restore", *sys.argv[1:]]))
