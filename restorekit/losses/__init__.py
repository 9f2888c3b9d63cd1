"""Training losses, registered in :data:`restorekit.LOSSES`.

Every loss is an ``nn.Module`` called as ``loss(pred, target, **ctx)``: ``pred`` and
``target`` are N×3×H×W images in [0, 1]; ``ctx`` may hold ``restoration`` (the backbone's
:class:`~restorekit.models.Restoration`, for losses on auxiliary outputs) and ``rain`` (the
known degradation ``degraded - clean`` of a hard or supervised pair). Pixel losses ignore ``ctx``.
"""
