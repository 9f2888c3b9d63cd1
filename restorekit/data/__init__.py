"""Data: robust image I/O, training photo sets and batches, paired sets, the built-in demo data."""
