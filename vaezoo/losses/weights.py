"""Checks of the hyper-parameters that weight objective terms, run at construction so
that a bad value fails before any network is built."""

from __future__ import annotations

import math
import numbers


def non_negative(name: str, value: float) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number >= 0.

    Example:
        >>> non_negative("beta", 4)
        4.0
        >>> non_negative("beta", -1.0)
        Traceback (most recent call last):
        ...
        ValueError: beta must be a finite number >= 0, got -1.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def positive_int(name: str, value: int) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an integer >= 1.

    Example:
        >>> positive_int("dataset_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: dataset_size must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
