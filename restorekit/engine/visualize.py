"""Sample grids: one PNG per snapshot, a row per sample, a column per stage of the method."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..data.io import write_image

__all__ = ["save_grid", "grid_image"]

RESIDUAL_KEYS = ("rain residual", "residual")


def _column(name: str, images: torch.Tensor, rows: int) -> np.ndarray:
    x = images[:rows].detach().float().cpu()
    if name in RESIDUAL_KEYS:
        # Residuals are small and signed: show them stretched around mid-grey, so rain reads as bright.
        x = (0.5 + 2.0 * x).clamp(0, 1)
    x = x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.concatenate(list(x), axis=0)


def save_grid(path: str | Path, images: dict[str, torch.Tensor], rows: int = 4, min_side: int = 128) -> Path:
    """Write a grid of the first ``rows`` samples; columns in the dict's order, labelled on top."""
    write_image(path, grid_image(images, rows, min_side))
    return Path(path)


def grid_image(images: dict[str, torch.Tensor], rows: int = 4, min_side: int = 128) -> np.ndarray:
    """The grid :func:`save_grid` writes, as H×W×3 uint8 RGB (TensorBoard shows it too)."""
    columns = [_column(name, value, rows) for name, value in images.items()]
    grid = np.concatenate(columns, axis=1)
    size = columns[0].shape[1]
    if size < min_side:  # tiny crops are upscaled so the grid is readable
        scale = int(np.ceil(min_side / size))
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        size *= scale
    header = np.full((22, grid.shape[1], 3), 255, np.uint8)
    for i, name in enumerate(images):
        cv2.putText(header, name, (i * size + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([header, grid], axis=0))
