"""Priors p(z). A prior is a Keras layer (so later priors can own weights) with
``distribution()`` and ``from_noise(eps)``: the deterministic map from standard-normal
noise to a prior sample that exported sampler graphs use."""

from __future__ import annotations

from typing import Any

from vaezoo._tf import keras, tf, tfd


@keras.saving.register_keras_serializable(package="vaezoo")
class StandardNormalPrior(keras.layers.Layer):
    """p(z) = N(0, I).

    Example:
        >>> prior = StandardNormalPrior(2)
        >>> float(prior.distribution().log_prob([[0.0, 0.0]])[0])  # -log(2 pi)
        -1.837877...
    """

    def __init__(self, latent_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        self.latent_dim = int(latent_dim)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes."""
        return (self.latent_dim,)

    def distribution(self) -> tfd.Distribution:
        """The prior as a ``tfd`` distribution with event shape ``[latent_dim]``."""
        zeros = tf.zeros([self.latent_dim], self.compute_dtype)
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z for standard-normal noise ``eps``: here z = eps."""
        return tf.convert_to_tensor(eps)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim}
