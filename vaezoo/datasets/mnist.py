"""Fashion-MNIST and statically binarized MNIST as :class:`Dataset` objects."""

from __future__ import annotations

import numpy as np

from . import sources
from .base import Dataset, Split

FASHION_VALID_SIZE = 10000
"""The last this many training images of Fashion-MNIST form the validation split."""


def load_fashion_mnist(
    *, download: bool = True, limit: int | None = None, binarize: bool = False, progress: bool | None = None
) -> Dataset:
    """Loads Fashion-MNIST: 50k train, 10k valid (the last 10k of train), 10k test.

    Args:
        download: whether to download the files when not found locally.
        limit: if given, caps the size of every split.
        binarize: threshold the pixels at 0.5, giving exactly 0/1 images.
        progress: print download progress; None means only when stderr is a terminal.

    Returns:
        The :class:`Dataset`: float32 (N, 28, 28, 1) images in [0, 1], int64 labels.

    Example:
        >>> try:
        ...     ds = load_fashion_mnist(download=False, limit=5)
        ... except sources.DataUnavailableError:  # not found locally
        ...     ds = None
        >>> ds is None or ds.train.x.shape == (5, 28, 28, 1)
        True
    """
    if not isinstance(binarize, bool):
        raise TypeError(f"binarize must be a bool, got {binarize!r}")
    directory, contents = sources.fetch("fashion_mnist", download=download, progress=progress)
    train_x = sources.parse_idx(contents["train-images-idx3-ubyte.gz"], ndim=3)
    train_y = sources.parse_idx(contents["train-labels-idx1-ubyte.gz"], ndim=1)
    test_x = sources.parse_idx(contents["t10k-images-idx3-ubyte.gz"], ndim=3)
    test_y = sources.parse_idx(contents["t10k-labels-idx1-ubyte.gz"], ndim=1)
    if len(train_x) <= FASHION_VALID_SIZE:
        raise ValueError(f"Fashion-MNIST train has {len(train_x)} images, need more than {FASHION_VALID_SIZE}")
    cut = len(train_x) - FASHION_VALID_SIZE

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        if len(x) != len(y) or x.shape[1:] != (28, 28):
            raise ValueError(f"Fashion-MNIST images {x.shape} do not match labels {y.shape}")
        x, y = x[:limit], y[:limit]
        pixels = x.astype(np.float32)[..., None] / np.float32(255)
        if binarize:
            pixels = (pixels >= 0.5).astype(np.float32)
        return Split(x=pixels, y=y.astype(np.int64))

    return Dataset(
        name="fashion_mnist",
        train=split(train_x[:cut], train_y[:cut]),
        valid=split(train_x[cut:], train_y[cut:]),
        test=split(test_x, test_y),
        num_classes=10,
        factor_names=None,
        factor_sizes=None,
        source=directory,
        binary=binarize,
    )


def load_binarized_mnist(
    *, download: bool = True, limit: int | None = None, progress: bool | None = None
) -> Dataset:
    """Loads Larochelle's statically binarized MNIST: 50k train, 10k valid, 10k test.

    Args:
        download: whether to download the files when not found locally.
        limit: if given, caps the size of every split.
        progress: print download progress; None means only when stderr is a terminal.

    Returns:
        The :class:`Dataset`: float32 (N, 28, 28, 1) images of exactly 0/1, no labels.

    Example:
        >>> try:
        ...     ds = load_binarized_mnist(download=False, limit=5)
        ... except sources.DataUnavailableError:  # not found locally
        ...     ds = None
        >>> ds is None or ds.binary
        True
    """
    directory, contents = sources.fetch("binarized_mnist", download=download, progress=progress)

    def split(file: str) -> Split:
        x = np.frombuffer(contents[file], np.uint8).reshape(-1, 28, 28, 1)[:limit]
        return Split(x=x.astype(np.float32))

    return Dataset(
        name="binarized_mnist",
        train=split("train.npz"),
        valid=split("valid.npz"),
        test=split("test.npz"),
        num_classes=None,
        factor_names=None,
        factor_sizes=None,
        source=directory,
        binary=True,
    )
