"""Data: images, folders, crops and batches; nothing here reads a config.

* :mod:`~restorekit.data.io`: reading and writing photos robustly;
* :mod:`~restorekit.data.photos`: a folder of training photos, decoded and checked once;
* :mod:`~restorekit.data.pairs`: paired folders (``rain/`` + ``gt/``);
* :mod:`~restorekit.data.batches`: the per-iteration batches a method trains on;
* :mod:`~restorekit.data.report`: what was skipped, and why;
* :mod:`~restorekit.data.demo`: the built-in demo data (``demo:`` names).
"""
