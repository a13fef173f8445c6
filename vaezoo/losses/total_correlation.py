"""Estimators of the total correlation TC(z) = KL(q(z) || prod_j q(z_j)) of the
aggregate posterior q(z) = (1/N) sum_n q(z|x_n).

* :func:`kl_decomposition`: the minibatch estimators of Chen, Li, Grosse and Duvenaud,
  "Isolating Sources of Disentanglement in Variational Autoencoders", NeurIPS 2018
  (beta-TCVAE), which split KL(q(z|x) || p(z)) into index-code mutual information,
  total correlation and dimension-wise KL.
* :func:`permute_dims` and :func:`density_ratio_total_correlation`: the density-ratio
  trick of Kim and Mnih, "Disentangling by Factorising", ICML 2018 (FactorVAE).

Everything is computed in log space with ``reduce_logsumexp``; the posterior heads
floor their scales, so no density here divides by zero.
"""

from __future__ import annotations

import math

from vaezoo._tf import tf, tfd

#: Minibatch estimators of log q(z): stratified ("mss") and weighted ("mws") sampling.
ESTIMATORS = ("mss", "mws")

_LOG_2PI = math.log(2.0 * math.pi)


def pairwise_gaussian_log_density(z: tf.Tensor, loc: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """log N(z[i, d]; loc[j, d], scale[j, d]^2) for every sample i and example j; (M, M, D).

    Example:
        >>> import numpy as np
        >>> z = np.zeros((3, 2), "float32")
        >>> pairwise_gaussian_log_density(z, z, np.ones((3, 2), "float32")).shape
        TensorShape([3, 3, 2])
    """
    scale = tf.convert_to_tensor(scale)
    standardised = (z[:, None, :] - loc[None, :, :]) / scale[None, :, :]
    return -0.5 * (tf.square(standardised) + _LOG_2PI) - tf.math.log(scale)[None, :, :]


def log_importance_weights(batch_size: tf.Tensor | int, dataset_size: int, estimator: str = "mss") -> tf.Tensor:
    """log r_ij, the weight of q(z_i | x_j) in the minibatch estimate
    q(z_i) ~= sum_j r_ij q(z_i | x_j), where z_i ~ q(z | x_i); shape (M, M).

    ``"mws"``, minibatch weighted sampling (Chen et al. 2018, eq. 14 and the authors'
    code): r_ij = 1 / (N M) for every pair. It underestimates q(z_i), because the
    example's own posterior gets weight 1/(NM) instead of 1/N; the bias is a constant
    (per batch size) that cancels in gradients of the total correlation only.

    ``"mss"``, minibatch stratified sampling: the example's own posterior is one
    stratum with its exact weight r_ii = 1/N, and the other M - 1 examples of the
    batch are a uniform sample of the remaining N - 1, each standing for (N - 1)/(M - 1)
    of them: r_ij = (N - 1) / (N (M - 1)). Each row sums to 1, the estimate of q(z_i) is
    unbiased, and it is exact when the batch is the whole data set (M = N). (The weight
    matrix in the authors' code, ``_log_importance_weight_matrix`` of
    rtqichen/beta-tcvae, strides by M + 1 over an M x M matrix, so it fills column 0
    instead of the diagonal with 1/N; see rtqichen/beta-tcvae pull request 1.)

    Example:
        >>> import numpy as np
        >>> w = np.exp(log_importance_weights(4, 4).numpy())
        >>> np.allclose(w, 0.25)
        True
    """
    n = float(dataset_size)
    m = tf.cast(batch_size, tf.float32)
    if estimator == "mws":
        return tf.fill(tf.stack([batch_size, batch_size]), -tf.math.log(n * m))
    if estimator != "mss":
        raise ValueError(f"unknown estimator {estimator!r}; known: {list(ESTIMATORS)}")
    others = math.log(n - 1.0) - math.log(n) - tf.math.log(tf.maximum(m - 1.0, 1.0)) if n > 1 else -math.inf
    weights = tf.fill(tf.stack([batch_size, batch_size]), others)
    return tf.linalg.set_diag(weights, tf.fill(tf.reshape(batch_size, [1]), -math.log(n)))


def kl_decomposition(
    q: tfd.Distribution,
    z: tf.Tensor,
    prior: tfd.Distribution,
    dataset_size: int,
    estimator: str = "mss",
) -> dict[str, tf.Tensor]:
    """Per-example terms of Chen et al. (2018, eq. 2) at z_i ~ q(z | x_i):

    * ``mutual_information`` = log q(z_i | x_i) - log q(z_i) (index-code MI),
    * ``total_correlation`` = log q(z_i) - sum_j log q(z_ij),
    * ``dimension_wise_kl`` = sum_j log q(z_ij) - log p(z_i),

    with q(z_i) and each marginal q(z_ij) estimated over the batch by
    :func:`log_importance_weights`. The three telescope: their sum is the one-sample
    estimate log q(z_i | x_i) - log p(z_i) of KL(q(z|x) || p(z)), whatever the
    estimator. ``q`` has batch shape (M,) and event shape (D,) and exposes its marginals
    through ``mean()`` and ``stddev()`` (the diagonal and full-covariance Normal heads);
    ``prior`` must factorise over the dimensions of z.

    Example:
        >>> import numpy as np
        >>> from vaezoo._tf import tfd
        >>> q = tfd.MultivariateNormalDiag(np.zeros((5, 2), "float32"), np.ones((5, 2), "float32"))
        >>> p = tfd.MultivariateNormalDiag(np.zeros(2, "float32"), np.ones(2, "float32"))
        >>> terms = kl_decomposition(q, np.zeros((5, 2), "float32"), p, dataset_size=5)
        >>> sorted(terms), all(np.allclose(t, 0.0, atol=1e-6) for t in terms.values())
        (['dimension_wise_kl', 'mutual_information', 'total_correlation'], True)
    """
    z = tf.convert_to_tensor(z)
    log_w = log_importance_weights(tf.shape(z)[0], dataset_size, estimator)
    log_q_pairs = q.log_prob(z[:, None, :])  # [i, j] = log q(z_i | x_j)
    log_marginal_pairs = pairwise_gaussian_log_density(z, q.mean(), q.stddev())
    log_qz_x = tf.linalg.diag_part(log_q_pairs)
    log_qz = tf.reduce_logsumexp(log_w + log_q_pairs, axis=1)
    log_prod_qzj = tf.reduce_sum(tf.reduce_logsumexp(log_w[:, :, None] + log_marginal_pairs, axis=1), axis=-1)
    log_pz = prior.log_prob(z)
    return {
        "mutual_information": log_qz_x - log_qz,
        "total_correlation": log_qz - log_prod_qzj,
        "dimension_wise_kl": log_prod_qzj - log_pz,
    }


def permute_dims(z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Shuffle every column of ``z`` (M, D) across the batch, each with its own random
    permutation: samples of prod_j q(z_j) from samples of q(z) (Kim and Mnih 2018,
    Algorithm 1). ``seed`` is a stateless seed of shape (2,).

    Example:
        >>> import numpy as np
        >>> z = np.arange(8, dtype="float32").reshape(4, 2)
        >>> permuted = permute_dims(z, np.array([1, 2], "int32")).numpy()
        >>> sorted(permuted[:, 0].tolist()), sorted(permuted[:, 1].tolist())
        ([0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0])
    """
    z = tf.convert_to_tensor(z)
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(z), seed), axis=0)
    return tf.transpose(tf.gather(tf.transpose(z), tf.transpose(order), batch_dims=1))


def density_ratio_total_correlation(logits: tf.Tensor) -> tf.Tensor:
    """Per-example TC estimate log D(z) / (1 - D(z)) = logits[:, 0] - logits[:, 1] of a
    discriminator whose class 0 is "drawn from q(z)" and class 1 "drawn from
    prod_j q(z_j)" (Kim and Mnih 2018, eq. 3).

    Example:
        >>> import numpy as np
        >>> density_ratio_total_correlation(np.array([[2.0, 0.5]], "float32")).numpy().tolist()
        [1.5]
    """
    logits = tf.convert_to_tensor(logits)
    return logits[:, 0] - logits[:, 1]
