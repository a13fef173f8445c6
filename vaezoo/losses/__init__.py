"""Pieces of objectives that several model families share: the total-correlation
estimators of beta-TCVAE and FactorVAE, the covariance penalties of DIP-VAE and the
checks of objective weights.

Example:
    >>> import numpy as np
    >>> from vaezoo.losses import dip_penalties
    >>> [float(t) for t in dip_penalties(np.eye(3, dtype="float32"))]
    [0.0, 0.0]
"""

from vaezoo.losses.covariance import batch_covariance, dip_penalties
from vaezoo.losses.distances import (
    KERNELS,
    WAE_SCALES,
    check_kernel,
    default_scale,
    energy_distance,
    kernel_matrix,
    mmd,
    pairwise_squared_distances,
    random_feature_mmd,
    sliced_wasserstein,
)
from vaezoo.losses.total_correlation import (
    ESTIMATORS,
    density_ratio_total_correlation,
    kl_decomposition,
    log_importance_weights,
    pairwise_gaussian_log_density,
    permute_dims,
)
from vaezoo.losses.weights import non_negative, positive_int

__all__ = [
    "ESTIMATORS",
    "KERNELS",
    "WAE_SCALES",
    "batch_covariance",
    "check_kernel",
    "default_scale",
    "density_ratio_total_correlation",
    "dip_penalties",
    "energy_distance",
    "kernel_matrix",
    "kl_decomposition",
    "log_importance_weights",
    "mmd",
    "non_negative",
    "pairwise_gaussian_log_density",
    "pairwise_squared_distances",
    "permute_dims",
    "positive_int",
    "random_feature_mmd",
    "sliced_wasserstein",
]
