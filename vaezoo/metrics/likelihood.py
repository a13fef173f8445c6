"""Likelihood-side metrics: importance-sampled NLL, bits/dim, ELBO, KL per latent
dimension and active units (Burda et al., 2016).

The ``*_from_*`` functions take numpy arrays and need no TensorFlow; the others take
a vaezoo model (anything with ``encode``, ``prior``, ``importance_estimates`` and
``data_shape``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bits_per_dim(nll: float, data_shape: Sequence[int]) -> float:
    """Convert a negative log-likelihood in nats per example to bits per dimension.

    Example:
        >>> bits_per_dim(784 * np.log(2), (28, 28, 1))
        1.0
    """
    return float(nll) / (math.prod(data_shape) * math.log(2))


def likelihood_metrics(model, x: np.ndarray, num_samples: int = 1000, batch_size: int = 100, seed: int = 0) -> dict[str, float]:
    """Mean ELBO (nats, the average of ``num_samples`` one-sample estimates) and the
    importance-weighted NLL estimate (nats and bits/dim) of Burda et al. (2016).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> result = likelihood_metrics(model, np.zeros((2, 28, 28, 1)), num_samples=10)
        >>> sorted(result), result["nll"] <= -result["elbo"] + 1e-4
        (['bits_per_dim', 'elbo', 'nll'], True)
    """
    elbo, log_px = model.importance_estimates(x, num_samples, batch_size=batch_size, seed=seed)
    nll = -float(np.mean(log_px))
    return {"elbo": float(np.mean(elbo)), "nll": nll, "bits_per_dim": bits_per_dim(nll, model.data_shape)}


def posterior_moments(model, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean and marginal standard deviation of q(z|x) for every example, each (N, latent_dim).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> [a.shape for a in posterior_moments(model, np.zeros((5, 28, 28, 1)))]
        [(5, 3), (5, 3)]
    """
    x = np.asarray(x, np.float32)
    means, stddevs = [], []
    for start in range(0, len(x), batch_size):
        q = model.encode(x[start : start + batch_size])
        means.append(np.asarray(q.mean()))
        stddevs.append(np.asarray(q.stddev()))
    if not means:
        raise ValueError("x holds no examples")
    return np.concatenate(means), np.concatenate(stddevs)


def encoder_means(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The mean of q(z|x) for every example, (N, latent_dim).

    Example:
        >>> import vaezoo
        >>> encoder_means(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3), np.zeros((2, 28, 28, 1))).shape
        (2, 3)
    """
    return posterior_moments(model, x, batch_size)[0]


def kl_per_dim_from_moments(
    means: np.ndarray, stddevs: np.ndarray, prior_mean: np.ndarray | float = 0.0, prior_stddev: np.ndarray | float = 1.0
) -> np.ndarray:
    """KL(N(mean, std^2) || N(prior_mean, prior_std^2)) per dimension, averaged over examples.

    Example:
        >>> kl_per_dim_from_moments(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])).tolist()
        [0.0, 0.5]
    """
    means, stddevs = np.asarray(means, np.float64), np.asarray(stddevs, np.float64)
    ratio = (stddevs / prior_stddev) ** 2
    kl = 0.5 * (ratio + ((means - prior_mean) / prior_stddev) ** 2 - 1.0 - np.log(ratio))
    return kl.mean(0)


def kl_per_dim(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The mean over ``x`` of the KL between each latent's marginal q(z_d|x) and the
    prior's marginal (its mean and standard deviation, a Gaussian moment match for
    non-Gaussian priors). For a diagonal posterior and the N(0, I) prior the dims sum
    to KL(q(z|x) || p(z)).

    Example:
        >>> import vaezoo
        >>> kl_per_dim(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3), np.zeros((4, 28, 28, 1))).shape
        (3,)
    """
    prior = model.prior.distribution()
    means, stddevs = posterior_moments(model, x, batch_size)
    return kl_per_dim_from_moments(means, stddevs, np.asarray(prior.mean()), np.asarray(prior.stddev()))


def active_units_from_means(means: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Active units (Burda et al., 2016): dimensions u with Cov_x(E_q[z_u]) > ``threshold``.

    Returns:
        The number of active units and the variance of each dimension's mean over x.

    Example:
        >>> means = np.stack([np.linspace(-1, 1, 50), np.full(50, 0.3)], 1)
        >>> count, variances = active_units_from_means(means)
        >>> count, variances.round(2).tolist()
        (1, [0.35, 0.0])
    """
    variances = np.asarray(means, np.float64).var(0)
    return int(np.sum(variances > threshold)), variances


def active_units(model, x: np.ndarray, threshold: float = 0.01, batch_size: int = 256) -> tuple[int, np.ndarray]:
    """Active units of ``model`` on ``x``; see :func:`active_units_from_means`.

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> active_units(model, np.zeros((4, 28, 28, 1)))[0]  # identical inputs: no unit varies
        0
    """
    return active_units_from_means(encoder_means(model, x, batch_size), threshold)
