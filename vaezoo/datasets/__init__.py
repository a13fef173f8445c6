"""Data sets for the VAE zoo, as numpy arrays (this package imports only numpy).

``load(name)`` returns a :class:`Dataset` with train, valid and test splits of
float32 images shaped (N, H, W, C) in [0, 1]:

- ``"binarized_mnist"``: Larochelle's statically binarized MNIST, 50k/10k/10k.
- ``"fashion_mnist"``: Fashion-MNIST; valid is the last 10k of the 60k train set.
- ``"shapes"``: a procedural dSprites-like set of 64x64 binary shapes.

File-backed sets are searched for in ``$VAEZOO_DATA``, the Keras cache and (for
Fashion-MNIST) Debian's package folder, then downloaded into the Keras cache;
see :mod:`vaezoo.datasets.sources`.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable

from . import mnist, shapes, sources
from .base import Dataset, Split
from .sources import DataIntegrityError, DataUnavailableError

__all__ = [
    "DataIntegrityError",
    "DataUnavailableError",
    "Dataset",
    "Split",
    "available",
    "find_local",
    "load",
]

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "binarized_mnist": mnist.load_binarized_mnist,
    "fashion_mnist": mnist.load_fashion_mnist,
    "shapes": shapes.make_dataset,
}


def available() -> list[str]:
    """Returns the names :func:`load` accepts.

    Example:
        >>> available()
        ['binarized_mnist', 'fashion_mnist', 'shapes']
    """
    return sorted(_LOADERS)


def load(name: str, *, download: bool = True, limit: int | None = None, seed: int = 0, **kwargs) -> Dataset:
    """Loads a data set.

    Args:
        name: one of :func:`available`.
        download: whether file-backed sets may be downloaded when not found locally.
        limit: if given, caps the number of examples of every split.
        seed: seed of procedural sets (file-backed sets have fixed splits).
        **kwargs: options of the data set: ``binarize`` and ``progress`` for
            ``fashion_mnist``, ``progress`` for ``binarized_mnist``,
            ``num_train``, ``num_valid`` and ``num_test`` for ``shapes``.

    Returns:
        The :class:`Dataset`.

    Raises:
        ValueError: for an unknown name or a bad ``limit``.
        TypeError: for an option the data set does not take.
        DataUnavailableError: when files are not found and cannot be downloaded.
        DataIntegrityError: when a file does not match its sha256.

    Example:
        >>> ds = load("shapes", num_train=16, num_valid=4, num_test=4)
        >>> ds.train.x.shape, ds.valid.factors.shape
        ((16, 64, 64, 1), (4, 5))
    """
    loader = _loader(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer, got {limit!r}")
    params = inspect.signature(loader).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        options = sorted(set(params) - {"download", "limit", "seed"})
        raise TypeError(f"load({name!r}) got unknown option(s) {unknown}; it accepts {options}")
    common = {"download": download, "limit": limit, "seed": seed}
    return loader(**{key: value for key, value in common.items() if key in params}, **kwargs)


def find_local(name: str) -> str | None:
    """Returns the local directory a file-backed data set would be read from.

    Never downloads. Procedural data sets have no files and give None.

    Args:
        name: one of :func:`available`.

    Returns:
        The first searched directory holding every file of the data set, or None.

    Example:
        >>> find_local("shapes") is None
        True
    """
    _loader(name)
    if name not in sources.FILE_SHA256:
        return None
    return sources.find_local(name)


def _loader(name: str) -> Callable[..., Dataset]:
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(available())}")
    return _LOADERS[name]
