"""A template restorekit plugin: copy this package, rename it, replace the two components.

Nothing here is imported by ``import restorekit``: restorekit reads this package's entry points
from its installed metadata, and imports :mod:`restorekit_example.network` only when a config
names ``example_net`` (and :mod:`restorekit_example.filters` only for ``example_opening``).
This file therefore imports nothing, so that using one component never loads the other.
"""

__version__ = "0.1.0"
