"""Pictures of a model: image grids written as PNG. Needs numpy and matplotlib only."""

from __future__ import annotations

import math
import os

import numpy as np


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile ``images`` of shape (N, H, W, C) into one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) array.

    Values are clipped to [0, 1]; padding is white.

    Example:
        >>> image_grid(np.zeros((6, 4, 4, 1)), ncols=3).shape
        (11, 16, 1)
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, H, W, C) with N >= 1, got {images.shape}")
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_grid(images: np.ndarray, path: str, ncols: int | None = None, scale: int = 2) -> str:
    """Write ``images`` (N, H, W, C in [0, 1]) as one PNG grid and return the path.

    Example:
        >>> import tempfile, os
        >>> save_grid(np.random.rand(4, 8, 8, 1), os.path.join(tempfile.mkdtemp(), "g.png")).endswith(".png")
        True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    grid = image_grid(images, ncols)
    grid = np.repeat(np.repeat(grid, scale, 0), scale, 1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        plt.imsave(path, grid)
    return path
