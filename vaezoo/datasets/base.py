"""Containers shared by every data set: :class:`Split` and :class:`Dataset`."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a data set.

    Attributes:
        x: float32 images of shape (N, H, W, C) with values in [0, 1]
            (exactly 0 or 1 for binary data sets).
        y: int64 class labels of shape (N,), or None.
        factors: int64 factor indices of shape (N, F) for procedural data, or None.

    Example:
        >>> import numpy as np
        >>> split = Split(np.zeros((2, 28, 28, 1), np.float32), np.array([3, 7]))
        >>> len(split), split.y.tolist()
        (2, [3, 7])
    """

    x: np.ndarray
    y: np.ndarray | None = None
    factors: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"x must have shape (N, H, W, C), got {self.x.shape}")
        for field in ("y", "factors"):
            value = getattr(self, field)
            if value is not None and len(value) != len(self.x):
                raise ValueError(f"{field} has {len(value)} rows but x has {len(self.x)}")

    def __len__(self) -> int:
        return len(self.x)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set with train, valid and test splits.

    Attributes:
        name: the name passed to :func:`vaezoo.datasets.load`.
        train: the training split.
        valid: the validation split (for model selection and early stopping).
        test: the test split (for reporting only).
        num_classes: number of label classes, or None when there are no labels.
        factor_names: names of the generative factors, or None.
        factor_sizes: number of values of each factor, or None.
        source: the directory the files were read from, or "procedural".
        binary: True when every pixel is exactly 0 or 1.

    Example:
        >>> import numpy as np
        >>> empty = Split(np.zeros((0, 8, 8, 1), np.float32))
        >>> ds = Dataset("toy", empty, empty, empty, None, None, None, "procedural", True)
        >>> ds.image_shape
        (8, 8, 1)
    """

    name: str
    train: Split
    valid: Split
    test: Split
    num_classes: int | None
    factor_names: tuple[str, ...] | None
    factor_sizes: tuple[int, ...] | None
    source: str
    binary: bool

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (H, W, C) shape of one image."""
        return tuple(self.train.x.shape[1:])
