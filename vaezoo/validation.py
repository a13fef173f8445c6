"""Input checks that run before any training step, so that bad data raises a clear
error instead of silently corrupting weights. Pure numpy; no TensorFlow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def check_array(
    x: object,
    data_shape: tuple[int, ...],
    name: str = "x",
    support_check: Callable[[np.ndarray, str], None] | None = None,
) -> np.ndarray:
    """Return ``x`` as float32 after checking dtype, shape, finiteness and support.

    Args:
        x: array-like of shape ``(batch,) + data_shape``.
        data_shape: the shape of one example that the model expects.
        name: how error messages refer to ``x``.
        support_check: called with the array and ``name``; raises when values are
            outside the likelihood's support (e.g. ``Bernoulli.check_support``).

    Example:
        >>> check_array(np.zeros((2, 3)), (3,)).dtype
        dtype('float32')
        >>> check_array(np.zeros((2, 4)), (3,))
        Traceback (most recent call last):
        ...
        ValueError: x has shape (2, 4); the model expects (batch, 3)
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}; the model expects real numbers "
            "(float, integer or bool arrays)"
        )
    expected = "(batch, " + ", ".join(map(str, data_shape)) + ")"
    if arr.ndim != len(data_shape) + 1 or tuple(arr.shape[1:]) != tuple(data_shape):
        raise ValueError(f"{name} has shape {arr.shape}; the model expects {expected}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); the model expects {expected} with batch >= 1")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} has {int(bad.sum())} non-finite value(s) (NaN or Inf); first: "
                f"{name}[{', '.join(map(str, index))}] = {arr[index]!r}"
            )
    arr = arr.astype(np.float32, copy=False)
    if support_check is not None:
        support_check(arr, name)
    return arr
