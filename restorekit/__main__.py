"""``python -m restorekit`` is the ``restorekit`` command."""

import sys

from .cli import main

sys.exit(main())
