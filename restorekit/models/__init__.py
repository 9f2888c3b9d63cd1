"""Networks: deraining backbones, the detail enhancement block, and the contract they meet.

Backbone modules are imported on demand through :data:`restorekit.BACKBONES`; this package's
``__init__`` imports only the contract.
"""

from .contract import Restoration, count_parameters, run_backbone

__all__ = ["Restoration", "run_backbone", "count_parameters"]
