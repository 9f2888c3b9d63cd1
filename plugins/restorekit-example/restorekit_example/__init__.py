"""A template restorekit plugin: copy this package, rename it, replace the components.

Nothing here is imported by ``import restorekit``: restorekit reads this package's entry points
from its installed metadata, and imports :mod:`restorekit_example.network` only when a config
names ``example_net`` (:mod:`restorekit_example.filters` only for ``example_opening``,
:mod:`restorekit_example.method` only for ``method: example_soft_only``). This file therefore
imports nothing, so that using one component never loads the others.
"""

__version__ = "0.1.0"
