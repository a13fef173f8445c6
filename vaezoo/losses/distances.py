"""Distances between two samples, ``x`` (n, d) and ``y`` (m, d): the encoder's codes and
draws of the prior in the statistical-distance autoencoders of
:mod:`vaezoo.models.distance_vaes`. Every function is pure (random projections and
features come from a stateless ``seed`` through :func:`random_normal`), so eager and XLA
give the same number.

* :func:`mmd`: maximum mean discrepancy (Gretton et al., "A Kernel Two-Sample Test",
  JMLR 2012), unbiased U-statistic or biased V-statistic, with the ``"rbf"`` kernel
  exp(-||x - y||^2 / C) or the inverse multiquadratic ``"imq"`` kernel C / (C + ||x - y||^2),
  at one scale C or summed over several.
* :func:`random_feature_mmd`: the biased rbf MMD through random Fourier features
  (Rahimi and Recht, NIPS 2007), linear in the sample size.
* :func:`energy_distance`: 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| (Szekely and Rizzo),
  the MMD of the conditionally negative definite kernel -||x - y||.
* :func:`sliced_wasserstein`: SW_p^p, the p-Wasserstein distance of the sorted 1-D
  projections on random directions of the unit sphere, averaged over directions.

Pairwise distances are computed from differences, not from ||x||^2 + ||y||^2 - 2 x.y, so
they are exact at coincident points and never negative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vaezoo._tf import tf

#: Kernels of :func:`mmd`.
KERNELS = ("rbf", "imq")

#: The scale multipliers of Tolstikhin et al. (2018, the authors' code): the IMQ kernel
#: summed over C = c * 2 d sigma_z^2 for each c.
WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def default_scale(latent_dim: int, sigma: float = 1.0) -> float:
    """C = 2 d sigma^2, the kernel scale of Tolstikhin et al. (2018) and Zhao et al.
    (2019) for a d-dimensional prior of per-dimension standard deviation sigma.

    Example:
        >>> default_scale(8)
        16.0
    """
    return 2.0 * int(latent_dim) * float(sigma) ** 2


def check_kernel(kernel: str) -> str:
    """``kernel`` if it is one of :data:`KERNELS`, else ``ValueError`` naming it.

    Example:
        >>> check_kernel("gaussian")
        Traceback (most recent call last):
        ...
        ValueError: kernel must be one of 'rbf', 'imq', got 'gaussian'
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")
    return kernel


def random_uniform(shape: tf.Tensor | Sequence[int], seed: tf.Tensor) -> tf.Tensor:
    """Uniform float32 on [0, 1) from the stateless ``seed`` (two int32): the same numbers
    eager and under XLA (TensorFlow's stateless float draws differ between the two; its
    Philox integer bits do not, and 24 of them make each float here).

    Example:
        >>> u = random_uniform([1000], [1, 2]).numpy()
        >>> bool(0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.05)
        True
    """
    bits = tf.random.stateless_uniform(
        shape, tf.convert_to_tensor(seed, tf.int32), minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * 2.0**-24


def random_normal(shape: tf.Tensor | Sequence[int], seed: tf.Tensor) -> tf.Tensor:
    """Standard-normal float32 from the stateless ``seed`` by the Box-Muller transform of
    :func:`random_uniform` draws: eager and XLA agree to rounding.

    Example:
        >>> z = random_normal([10000], [1, 2]).numpy()
        >>> bool(abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05)
        True
    """
    seed = tf.convert_to_tensor(seed, tf.int32)
    first, second = tf.unstack(tf.random.experimental.stateless_split(seed, 2, alg="philox"))
    radius = tf.sqrt(-2.0 * tf.math.log1p(-random_uniform(shape, first)))  # log of (0, 1]: finite
    return radius * tf.cos(2.0 * math.pi * random_uniform(shape, second))


def pairwise_squared_distances(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """||x_i - y_j||^2 for every row i of ``x`` and j of ``y``; shape (n, m).

    Example:
        >>> pairwise_squared_distances([[0.0, 0.0]], [[3.0, 4.0], [0.0, 1.0]]).numpy()
        array([[25.,  1.]], dtype=float32)
    """
    x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
    return tf.reduce_sum(tf.square(x[:, None, :] - y[None, :, :]), axis=-1)


def _pairwise_distances(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """||x_i - y_j||, with a zero (not NaN) gradient where two points coincide."""
    squared = pairwise_squared_distances(x, y)
    positive = squared > 0.0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, 1.0)), 0.0)


def kernel_matrix(x: tf.Tensor, y: tf.Tensor, kernel: str, scale: float | Sequence[float]) -> tf.Tensor:
    """k(x_i, y_j) summed over the scales C in ``scale``; shape (n, m).

    ``"rbf"``: exp(-||x - y||^2 / C); ``"imq"``: C / (C + ||x - y||^2).

    Example:
        >>> kernel_matrix([[0.0]], [[0.0], [2.0]], "imq", 4.0).numpy()
        array([[1. , 0.5]], dtype=float32)
    """
    check_kernel(kernel)
    squared = pairwise_squared_distances(x, y)
    scales = [float(scale)] if isinstance(scale, (int, float)) else [float(c) for c in scale]
    if not scales or min(scales) <= 0:
        raise ValueError(f"scale must be one or more numbers > 0, got {scale!r}")
    if kernel == "rbf":
        return tf.add_n([tf.exp(-squared / c) for c in scales])
    return tf.add_n([c / (c + squared) for c in scales])


def _mean_off_diagonal(k: tf.Tensor) -> tf.Tensor:
    """Mean of the off-diagonal entries of a square matrix (0 for a 1 x 1 one)."""
    n = tf.cast(tf.shape(k)[0], k.dtype)
    off = tf.reduce_sum(k) - tf.reduce_sum(tf.linalg.diag_part(k))
    return off / tf.maximum(n * (n - 1.0), 1.0)


def mmd(
    x: tf.Tensor,
    y: tf.Tensor,
    kernel: str = "imq",
    scale: float | Sequence[float] = 1.0,
    unbiased: bool = True,
) -> tf.Tensor:
    """The squared maximum mean discrepancy MMD_k^2 between the samples ``x`` and ``y``.

    Unbiased (the U-statistic of Tolstikhin et al. 2018, Algorithm 2):
    sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (n m); it can be slightly negative. Biased (the
    V-statistic of Zhao et al. 2019): the same with means over all pairs, >= 0 and 0 for
    identical samples. ``scale`` is C of :func:`kernel_matrix` (a sequence: the sum of
    the kernels at each C).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
        >>> abs(float(mmd(x, x, "rbf", 6.0, unbiased=False))) < 1e-6
        True
        >>> float(mmd(x, x + 3.0, "imq", 6.0)) > 0.1
        True
    """
    k_xx = kernel_matrix(x, x, kernel, scale)
    k_yy = kernel_matrix(y, y, kernel, scale)
    k_xy = kernel_matrix(x, y, kernel, scale)
    if unbiased:
        return _mean_off_diagonal(k_xx) + _mean_off_diagonal(k_yy) - 2.0 * tf.reduce_mean(k_xy)
    return tf.reduce_mean(k_xx) + tf.reduce_mean(k_yy) - 2.0 * tf.reduce_mean(k_xy)


def random_feature_mmd(
    x: tf.Tensor, y: tf.Tensor, seed: tf.Tensor, num_features: int = 500, scale: float = 1.0
) -> tf.Tensor:
    """The biased rbf MMD^2 through random Fourier features: ||mean psi(x) - mean psi(y)||^2.

    psi(x) = sqrt(2 / D) cos(x W + b) with D = ``num_features``, the columns of W drawn
    from N(0, (2 / C) I) and b uniform on [0, 2 pi), so that E[psi(x) . psi(y)] =
    exp(-||x - y||^2 / C) (Rahimi and Recht 2007); Louizos et al. (2016) use it for a
    MMD penalty linear, not quadratic, in the batch size. W and b are
    drawn from the stateless ``seed`` (two int32).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
        >>> fast = float(random_feature_mmd(x, x + 1.0, [1, 2], num_features=20000, scale=4.0))
        >>> exact = float(mmd(x, x + 1.0, "rbf", 4.0, unbiased=False))
        >>> abs(fast - exact) < 0.02
        True
    """
    x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed, tf.int32), 2, alg="philox")
    frequencies = math.sqrt(2.0 / float(scale)) * random_normal(tf.stack([tf.shape(x)[1], num_features]), seeds[0])
    phases = 2.0 * math.pi * random_uniform([num_features], seeds[1])

    def mean_features(s):
        return math.sqrt(2.0 / num_features) * tf.reduce_mean(tf.cos(tf.matmul(s, frequencies) + phases), axis=0)

    return tf.reduce_sum(tf.square(mean_features(x) - mean_features(y)))


def energy_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """The squared energy distance 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| of the two
    samples (V-statistic: means over all pairs, >= 0, 0 for identical samples).

    Example:
        >>> float(energy_distance([[0.0]], [[3.0]]))
        6.0
        >>> float(energy_distance([[0.0], [1.0]], [[1.0], [0.0]]))
        0.0
    """
    return (
        2.0 * tf.reduce_mean(_pairwise_distances(x, y))
        - tf.reduce_mean(_pairwise_distances(x, x))
        - tf.reduce_mean(_pairwise_distances(y, y))
    )


def sliced_wasserstein(
    x: tf.Tensor, y: tf.Tensor, seed: tf.Tensor, num_projections: int = 50, p: float = 2.0
) -> tf.Tensor:
    """SW_p^p between two samples of the same size: the mean over ``num_projections``
    directions theta, uniform on the unit sphere, of the 1-D p-Wasserstein distance
    (1/n) sum_i |sort(x theta)_i - sort(y theta)_i|^p (Kolouri et al. 2019, Algorithm 1).
    The directions come from the stateless ``seed`` (two int32); ``p`` >= 1.

    Example:
        >>> float(sliced_wasserstein([[0.0], [1.0]], [[2.0], [1.0]], [0, 0]))  # 1-D: sorted |0-1|^2, |1-2|^2
        1.0
    """
    x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    if x.shape[0] is not None and y.shape[0] is not None and x.shape[0] != y.shape[0]:
        raise ValueError(f"sliced_wasserstein needs samples of one size, got {x.shape[0]} and {y.shape[0]}")
    directions = random_normal(tf.stack([tf.shape(x)[1], num_projections]), seed)
    directions = directions / tf.norm(directions, axis=0, keepdims=True)
    # (projections, n): each row sorted, as sorted samples of one 1-D projection
    projected_x = tf.sort(tf.transpose(tf.matmul(x, directions)), axis=-1)
    projected_y = tf.sort(tf.transpose(tf.matmul(y, directions)), axis=-1)
    gap = tf.abs(projected_x - projected_y)
    return tf.reduce_mean(tf.square(gap) if p == 2 else tf.pow(gap, float(p)))
