"""The training engine: device selection, checkpoints, the training loop, sample grids."""
