"""A procedural, dSprites-like data set of binary 64x64 shapes.

Five independent factors generate each image, with the sizes and meanings of
dSprites (Matthey et al., 2017): shape (square, ellipse, heart), scale (6 values
from 0.5 to 1), orientation (40 angles in [0, 2 pi)), pos_x and pos_y (32 values
each). Every shape fits inside a circle of radius ``MAX_RADIUS`` pixels at scale
1, and the positions keep that circle one pixel away from the border, so shapes
are never cut off. Images are rendered on demand, so disentanglement metrics can
render any chosen factor combination with :func:`render`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .base import Dataset, Split

IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, FACTOR_SIZES[1])
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, FACTOR_SIZES[2], endpoint=False)
POSITIONS = np.linspace(0.0, 1.0, FACTOR_SIZES[3])
MAX_RADIUS = 10.0

_MARGIN = MAX_RADIUS + 1.0
_WINDOW = int(2 * MAX_RADIUS) + 2
_CHUNK = 4096
# The heart (x^2 + y^2 - 1)^3 <= x^2 y^3 fits in a circle of radius 1.25 around
# (0, 0.25); these constants map it into the unit circle.
_HEART_CENTER = 0.25
_HEART_RADIUS = 1.26
_ELLIPSE_MINOR = 0.5
_SQUARE_HALF_SIDE = np.sqrt(0.5)


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws factor indices uniformly and independently.

    Args:
        n: number of factor combinations to draw.
        rng: the random generator to draw from.

    Returns:
        int64 array of shape (n, 5), column j in ``range(FACTOR_SIZES[j])``.

    Example:
        >>> import numpy as np
        >>> sample_factors(4, np.random.default_rng(0)).shape
        (4, 5)
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return rng.integers(0, FACTOR_SIZES, size=(n, len(FACTOR_SIZES)), dtype=np.int64)


def render(factors: np.ndarray) -> np.ndarray:
    """Renders the images of the given factor indices.

    Args:
        factors: integer array of shape (N, 5) with column j in
            ``range(FACTOR_SIZES[j])``, in the order of ``FACTOR_NAMES``.

    Returns:
        float32 array of shape (N, 64, 64, 1) with values 0 or 1.

    Example:
        >>> import numpy as np
        >>> image = render(np.array([[2, 5, 0, 16, 16]]))
        >>> image.shape, float(image.max())
        ((1, 64, 64, 1), 1.0)
    """
    factors = _check_factors(factors)
    images = np.zeros((len(factors), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for start in range(0, len(factors), _CHUNK):
        _render_chunk(factors[start : start + _CHUNK], images[start : start + _CHUNK])
    return images[..., None]


def make_dataset(
    *,
    seed: int = 0,
    limit: int | None = None,
    num_train: int = 20000,
    num_valid: int = 2000,
    num_test: int = 2000,
) -> Dataset:
    """Builds the procedural data set; each split has its own random stream.

    Args:
        seed: seed of the factor draws; the same seed gives identical arrays.
        limit: if given, caps the size of every split.
        num_train: number of training images.
        num_valid: number of validation images.
        num_test: number of test images.

    Returns:
        The :class:`Dataset`, with ``factors`` filled in and ``y`` None.

    Example:
        >>> ds = make_dataset(num_train=8, num_valid=2, num_test=2)
        >>> ds.train.x.shape, ds.factor_sizes
        ((8, 64, 64, 1), (3, 6, 40, 32, 32))
    """
    sizes = {"num_train": num_train, "num_valid": num_valid, "num_test": num_test}
    for key, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {size!r}")
    if limit is not None:
        sizes = {key: min(size, limit) for key, size in sizes.items()}
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    splits = [_make_split(n, np.random.default_rng(s)) for n, s in zip(sizes.values(), streams)]
    return Dataset(
        name="shapes",
        train=splits[0],
        valid=splits[1],
        test=splits[2],
        num_classes=None,
        factor_names=FACTOR_NAMES,
        factor_sizes=FACTOR_SIZES,
        source="procedural",
        binary=True,
    )


def _make_split(n: int, rng: np.random.Generator) -> Split:
    factors = sample_factors(n, rng)
    return Split(x=render(factors), factors=factors)


def _check_factors(factors: np.ndarray) -> np.ndarray:
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"factors must have shape (N, {len(FACTOR_SIZES)}), got {factors.shape}")
    if factors.size and not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer indices, got dtype {factors.dtype}")
    factors = factors.astype(np.int64)
    if factors.size and (np.any(factors < 0) or np.any(factors >= np.array(FACTOR_SIZES))):
        raise ValueError(f"factor indices out of range; sizes are {dict(zip(FACTOR_NAMES, FACTOR_SIZES))}")
    return factors


def _render_chunk(factors: np.ndarray, images: np.ndarray) -> None:
    """Draws each shape into zeroed ``images`` by testing a window of pixels around its center."""
    shape, scale, angle, pos_x, pos_y = factors.T
    span = IMAGE_SIZE - 1 - 2 * _MARGIN
    center_x = _MARGIN + span * POSITIONS[pos_x]
    center_y = _MARGIN + span * POSITIONS[pos_y]
    offsets = np.arange(_WINDOW)
    cols = np.floor(center_x).astype(np.int64)[:, None] - int(MAX_RADIUS) + offsets
    rows = np.floor(center_y).astype(np.int64)[:, None] - int(MAX_RADIUS) + offsets
    radius = (MAX_RADIUS * SCALES[scale])[:, None]
    dx = ((cols - center_x[:, None]) / radius)[:, None, :]
    dy = ((center_y[:, None] - rows) / radius)[:, :, None]
    cos = np.cos(ORIENTATIONS[angle])[:, None, None]
    sin = np.sin(ORIENTATIONS[angle])[:, None, None]
    u = (cos * dx + sin * dy).astype(np.float32)
    v = (cos * dy - sin * dx).astype(np.float32)
    inside = np.zeros(u.shape, bool)
    for index, test in enumerate((_square, _ellipse, _heart)):
        chosen = shape == index
        inside[chosen] = test(u[chosen], v[chosen])
    images[np.arange(len(factors))[:, None, None], rows[:, :, None], cols[:, None, :]] = inside


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + (v / _ELLIPSE_MINOR) ** 2 <= 1.0


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x = u * _HEART_RADIUS
    y = v * _HEART_RADIUS + _HEART_CENTER
    x2 = x * x
    r = x2 + y * y - 1.0
    return r * r * r <= x2 * y * y * y
