"""Covariances of the aggregate posterior and the DIP-VAE penalties (Kumar, Sattigeri
and Balakrishnan, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", ICLR 2018)."""

from __future__ import annotations

from vaezoo._tf import tf


def batch_covariance(x: tf.Tensor) -> tf.Tensor:
    """The covariance E[(x - E x)(x - E x)^T] over the batch axis of ``x`` (M, D); (D, D).

    Example:
        >>> import numpy as np
        >>> batch_covariance(np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")).numpy().tolist()
        [[1.0, 0.0], [0.0, 0.0]]
    """
    x = tf.convert_to_tensor(x)
    centred = x - tf.reduce_mean(x, axis=0, keepdims=True)
    return tf.matmul(centred, centred, transpose_a=True) / tf.cast(tf.shape(x)[0], x.dtype)


def dip_penalties(covariance: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum_{i != j} C_ij^2, sum_i (C_ii - 1)^2): how far ``covariance`` is from I.

    Example:
        >>> import numpy as np
        >>> [float(t) for t in dip_penalties(np.array([[2.0, 0.5], [0.5, 1.0]], "float32"))]
        [0.5, 1.0]
    """
    covariance = tf.convert_to_tensor(covariance)
    diagonal = tf.linalg.diag_part(covariance)
    off_diagonal = covariance - tf.linalg.diag(diagonal)
    return tf.reduce_sum(tf.square(off_diagonal)), tf.reduce_sum(tf.square(diagonal - 1.0))
