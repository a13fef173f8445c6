"""Pictures of a model, written as PNG: sample grids, reconstruction pairs, latent
traversals ordered by KL, interpolations, latent scatter plots and maps, training
curves. Needs numpy and matplotlib only; functions that take a model call its
``encode``/``decoder_params``/``likelihood`` (TensorFlow comes in through the model)."""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Sequence

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
    return _save_image(image_grid(images, ncols), path, scale)


# --------------------------------------------------------------------------- helpers


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _make_folder(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _save_image(grid: np.ndarray, path: str, scale: int) -> str:
    """Write one (H, W, C) array in [0, 1] as a PNG, each pixel a ``scale`` x ``scale`` block."""
    plt = _pyplot()
    grid = np.repeat(np.repeat(grid, scale, 0), scale, 1)
    _make_folder(path)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        plt.imsave(path, grid)
    return path


def _save_figure(fig, path: str, dpi: int) -> str:
    plt = _pyplot()
    _make_folder(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _show(ax, grid: np.ndarray) -> None:
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")


def _tick(value: float) -> str:
    """A signed one-decimal label that never reads -0.0."""
    return f"{round(float(value), 1) + 0.0:+.1f}"


def _labelled_grid(
    images: np.ndarray, path: str, row_labels: Sequence[str], col_labels: Sequence[str], title: str, scale: int, dpi: int
) -> str:
    """A grid of (rows, cols, H, W, C) images with a label at every row and column."""
    rows, cols, h, w = images.shape[:4]
    grid = image_grid(images.reshape((-1,) + images.shape[2:]), ncols=cols)
    left, right, top, bottom = 110, 10, 30, 30
    width, height = grid.shape[1] * scale + left + right, grid.shape[0] * scale + top + bottom
    fig = _pyplot().figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((left / width, bottom / height, grid.shape[1] * scale / width, grid.shape[0] * scale / height))
    _show(ax, grid)
    ax.set_yticks([1 + r * (h + 1) + (h - 1) / 2 for r in range(rows)], list(row_labels), fontsize=7)
    ax.set_xticks([1 + c * (w + 1) + (w - 1) / 2 for c in range(cols)], list(col_labels), fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=8)
    return _save_figure(fig, path, dpi)


def decode_mean(model, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The likelihood's mean (an image) for every row of latents ``z`` (N, latent_dim).

    Example:
        >>> import vaezoo
        >>> decode_mean(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2), np.zeros((3, 2))).shape
        (3, 28, 28, 1)
    """
    z = np.asarray(z, np.float32)
    return np.concatenate(
        [np.asarray(model.likelihood.mean(model.decoder_params(z[i : i + batch_size]))) for i in range(0, len(z), batch_size)]
    )


# --------------------------------------------------------------------------- reconstructions


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, ncols: int = 8) -> np.ndarray:
    """A grid whose rows alternate: ``ncols`` originals, then their reconstructions.

    Example:
        >>> reconstruction_grid(np.zeros((5, 4, 4, 1)), np.ones((5, 4, 4, 1)), ncols=3).shape  # 4 rows of 3
        (21, 16, 1)
    """
    originals, reconstructions = np.asarray(originals, np.float32), np.asarray(reconstructions, np.float32)
    if originals.shape != reconstructions.shape or originals.ndim != 4:
        raise ValueError(f"need two (N, H, W, C) arrays of one shape, got {originals.shape} and {reconstructions.shape}")
    rows = math.ceil(len(originals) / ncols)
    padding = np.ones((rows * ncols - len(originals),) + originals.shape[1:], np.float32)
    pairs = [np.concatenate([a, padding]).reshape((rows, ncols) + a.shape[1:]) for a in (originals, reconstructions)]
    return image_grid(np.stack(pairs, 1).reshape((-1,) + originals.shape[1:]), ncols)


def save_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, path: str, ncols: int = 8, scale: int = 2) -> str:
    """Write :func:`reconstruction_grid` as a PNG and return the path.

    Example:
        >>> import tempfile
        >>> x = np.random.rand(4, 8, 8, 1)
        >>> save_reconstructions(x, x, os.path.join(tempfile.mkdtemp(), "r.png")).endswith("r.png")
        True
    """
    return _save_image(reconstruction_grid(originals, reconstructions, ncols), path, scale)


# --------------------------------------------------------------------------- traversals


def traversal_images(model, z: np.ndarray, dims: Sequence[int], values: Sequence[float]) -> np.ndarray:
    """Decode ``z`` with dimension ``dims[i]`` set to each of ``values``: (len(dims), len(values), H, W, C).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> traversal_images(model, np.zeros(3), [2, 0], [-1.0, 0.0, 1.0]).shape
        (2, 3, 28, 28, 1)
    """
    z, values = np.asarray(z, np.float32), np.asarray(values, np.float32)
    codes = np.tile(z, (len(dims), len(values), 1))
    for row, dim in enumerate(dims):
        codes[row, :, dim] = values
    images = decode_mean(model, codes.reshape(-1, z.shape[-1]))
    return images.reshape((len(dims), len(values)) + images.shape[1:])


def save_traversals(
    model,
    x: np.ndarray,
    path: str,
    num_dims: int | None = None,
    steps: int = 9,
    span: float = 3.0,
    example: int = 0,
    scale: int = 2,
    dpi: int = 100,
) -> str:
    """Latent traversals: one row per latent dimension, ordered by its mean KL on ``x``
    (most informative first), each row decoding the posterior mean of ``x[example]``
    with that dimension swept over ``steps`` values in [-span, span].

    Example:
        >>> import tempfile, vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> save_traversals(model, np.zeros((4, 28, 28, 1)), os.path.join(tempfile.mkdtemp(), "t.png")).endswith(".png")
        True
    """
    from vaezoo.metrics.likelihood import encoder_means, kl_per_dim

    kl = kl_per_dim(model, x)
    dims = np.argsort(-kl, kind="stable")[:num_dims]
    values = np.linspace(-span, span, steps)
    images = traversal_images(model, encoder_means(model, x[example : example + 1])[0], dims, values)
    return _labelled_grid(
        images,
        path,
        [f"z{d}  KL {kl[d]:.2f}" for d in dims],
        [_tick(v) for v in values],
        f"latent traversals of example {example}, dimensions by KL (nats)",
        scale,
        dpi,
    )


# --------------------------------------------------------------------------- interpolation


def interpolation_images(model, x_a: np.ndarray, x_b: np.ndarray, steps: int = 8) -> np.ndarray:
    """Rows [x_a, decodes of the posterior means linearly interpolated in ``steps`` steps,
    x_b] for each pair: (N, steps + 2, H, W, C).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> interpolation_images(model, np.zeros((2, 28, 28, 1)), np.ones((2, 28, 28, 1)), steps=4).shape
        (2, 6, 28, 28, 1)
    """
    from vaezoo.metrics.likelihood import encoder_means

    x_a, x_b = np.asarray(x_a, np.float32), np.asarray(x_b, np.float32)
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_a and x_b must have one shape, got {x_a.shape} and {x_b.shape}")
    z_a, z_b = encoder_means(model, x_a), encoder_means(model, x_b)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    decoded = decode_mean(model, (z_a[:, None] * (1 - t) + z_b[:, None] * t).reshape(-1, z_a.shape[1]))
    decoded = decoded.reshape((len(x_a), steps) + decoded.shape[1:])
    return np.concatenate([x_a[:, None], decoded, x_b[:, None]], 1)


def save_interpolations(model, x_a: np.ndarray, x_b: np.ndarray, path: str, steps: int = 8, scale: int = 2) -> str:
    """Write :func:`interpolation_images` as a PNG grid, one pair per row.

    Example:
        >>> import tempfile, vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> x = np.zeros((2, 28, 28, 1))
        >>> save_interpolations(model, x, x, os.path.join(tempfile.mkdtemp(), "i.png")).endswith(".png")
        True
    """
    images = interpolation_images(model, x_a, x_b, steps)
    return _save_image(image_grid(images.reshape((-1,) + images.shape[2:]), ncols=steps + 2), path, scale)


# --------------------------------------------------------------------------- latent space


def project_2d(codes: np.ndarray, dims: Sequence[int] | None = None) -> tuple[np.ndarray, tuple[str, str]]:
    """Two coordinates per row of ``codes``: the dimensions ``dims``, else the codes
    themselves when there are two, else the first two principal components.

    Returns:
        The (N, 2) points and the two axis names.

    Example:
        >>> points, names = project_2d(np.random.default_rng(0).normal(size=(10, 5)))
        >>> points.shape, names
        ((10, 2), ('PC 1', 'PC 2'))
    """
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must have shape (N, D) with D >= 2, got {codes.shape}")
    if dims is None and codes.shape[1] == 2:
        dims = (0, 1)
    if dims is not None:
        return codes[:, list(dims)], (f"z{dims[0]}", f"z{dims[1]}")
    centred = codes - codes.mean(0)
    return centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T, ("PC 1", "PC 2")


def save_latent_scatter(
    codes: np.ndarray, path: str, labels: np.ndarray | None = None, dims: Sequence[int] | None = None, title: str = "", dpi: int = 100
) -> str:
    """Scatter plot of latent codes in 2-D (see :func:`project_2d`), coloured by label.

    Example:
        >>> import tempfile
        >>> codes = np.random.default_rng(0).normal(size=(50, 3))
        >>> save_latent_scatter(codes, os.path.join(tempfile.mkdtemp(), "s.png"), labels=np.arange(50) % 3).endswith(".png")
        True
    """
    points, names = project_2d(codes, dims)
    fig, ax = _pyplot().subplots(figsize=(5.5, 4.5))
    colours = None if labels is None else np.asarray(labels)
    few = colours is not None and len(np.unique(colours)) <= 10
    drawn = ax.scatter(points[:, 0], points[:, 1], c=colours, s=4, cmap="tab10" if few else "viridis")
    if colours is not None:
        fig.colorbar(drawn, ax=ax, label="label")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title or f"{len(points)} posterior means", fontsize=9)
    fig.tight_layout()
    return _save_figure(fig, path, dpi)


def latent_map_images(model, n: int = 15, dims: Sequence[int] = (0, 1)) -> np.ndarray:
    """Decodes of an n x n grid over two latent dimensions (the other dimensions at 0),
    at the N(0, 1) quantiles of linspace(0.05, 0.95, n) as in Kingma & Welling (2014);
    row 0 holds the largest value of ``dims[1]``: (n, n, H, W, C).

    Example:
        >>> import vaezoo
        >>> latent_map_images(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2), n=3).shape
        (3, 3, 28, 28, 1)
    """
    values = np.array([statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    codes = np.zeros((n, n, model.latent_dim), np.float32)
    codes[:, :, dims[0]] = values[None, :]
    codes[:, :, dims[1]] = values[::-1, None]
    images = decode_mean(model, codes.reshape(-1, model.latent_dim))
    return images.reshape((n, n) + images.shape[1:])


def save_latent_map(model, path: str, n: int = 15, dims: Sequence[int] | None = None, x: np.ndarray | None = None, scale: int = 1, dpi: int = 100) -> str:
    """Write :func:`latent_map_images` as a labelled grid. Without ``dims``, the two
    dimensions with the highest KL on ``x`` (or 0 and 1 when ``x`` is None).

    Example:
        >>> import tempfile, vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> save_latent_map(model, os.path.join(tempfile.mkdtemp(), "m.png"), n=4).endswith(".png")
        True
    """
    from vaezoo.metrics.likelihood import kl_per_dim

    if dims is None:
        dims = (0, 1) if x is None else tuple(int(d) for d in np.argsort(-kl_per_dim(model, x), kind="stable")[:2])
    images = latent_map_images(model, n, dims)
    values = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)]
    return _labelled_grid(
        images,
        path,
        [f"z{dims[1]}={_tick(v)}" for v in values[::-1]],
        [_tick(v) for v in values],
        f"decoded latent grid: z{dims[0]} across, z{dims[1]} down",
        scale,
        dpi,
    )


# --------------------------------------------------------------------------- training curves


def read_history(source: dict[str, Sequence[float]] | str) -> dict[str, list[float]]:
    """A Keras History dict as is, or a ``CSVLogger`` file read into one (without ``epoch``).

    Example:
        >>> read_history({"loss": [2, 1]})
        {'loss': [2.0, 1.0]}
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"{source} holds no epochs")
        return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}
    return {key: [float(v) for v in values] for key, values in source.items()}


def save_training_curves(history: dict[str, Sequence[float]] | str, path: str, keys: Sequence[str] | None = None, dpi: int = 100) -> str:
    """One panel per metric, the training curve with its ``val_`` curve when logged.

    Args:
        history: a Keras History dict (``fit(...).history``) or a CSVLogger file.
        path: the PNG to write.
        keys: metrics to draw (default: every metric).
        dpi: resolution.

    Example:
        >>> import tempfile
        >>> history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.1, 2.2, 1.9]}
        >>> save_training_curves(history, os.path.join(tempfile.mkdtemp(), "c.png")).endswith(".png")
        True
    """
    history = read_history(history)
    keys = list(keys or dict.fromkeys(k.removeprefix("val_") for k in history))
    missing = [k for k in keys if k not in history and f"val_{k}" not in history]
    if missing or not keys:
        raise ValueError(f"no curve for {missing or 'any key'}; the history has {sorted(history)}")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, label in ((key, "train"), (f"val_{key}", "valid")):
            if name in history:
                ax.plot(np.arange(1, len(history[name]) + 1), history[name], marker=".", label=label)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save_figure(fig, path, dpi)
