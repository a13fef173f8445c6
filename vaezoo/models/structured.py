"""A VAE whose Gaussian likelihood has correlated residuals (Dorta et al. 2018), trained
and evaluated on uniformly dequantized 8-bit images."""

from __future__ import annotations

import numbers
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class StructuredResidualVAE(VAE):
    """VAE with a structured-residual Gaussian likelihood on dequantized data.

    Dorta, Vicente, Agapito, Campbell and Simpson, "Structured Uncertainty Prediction
    Networks", CVPR 2018; "Training VAEs Under Structured Residuals", arXiv:1804.01050,
    2018.

    A diagonal Gaussian likelihood explains every residual x - mu(z) as independent
    pixel noise, so it blurs mu(z) and pays for the correlated residuals it cannot
    represent. Here the decoder also predicts their covariance (the
    ``structured_gaussian`` head, :class:`vaezoo.distributions.StructuredGaussian`):

        ELBO(x) = E_q(z|x)[log N(x; mu(z), Sigma(z))] - KL(q(z|x) || p(z)),
        Sigma(z) = S(z) (I + V(z) V(z)^T) S(z),  S diagonal, V of rank ``rank``.

    A density on [0, 1] is meaningful for 8-bit pixels only after dequantization: with
    ``dequantization_levels`` = L (256 for 8-bit images scaled to [0, 1]), every
    training and evaluation step models y = (x (L - 1) + u) / L, u ~ U[0, 1)^D, in
    place of x (``elbo``, ``log_likelihood`` and the Keras metrics are in nats of y;
    -log p(y) / (D log 2) + log2(L) bounds the bits per dimension of the discrete data
    from above). Estimates draw u from their ``seed``, so one seed gives one
    dequantization for every number of importance samples. The metrics are those of
    :class:`vaezoo.models.VAE`. ``likelihood_options={"rank": 0}`` gives the diagonal
    Gaussian with the same networks, the paper's baseline.

    Args:
        dequantization_levels: L, the number of levels of the data, >= 2, or None for
            no dequantization (continuous data).
        likelihood: a name from ``vaezoo.distributions.LIKELIHOODS``.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import StructuredResidualVAE
        >>> x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1)).astype("float32") / 255
        >>> model = StructuredResidualVAE(likelihood_options={"rank": 2}, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
        >>> model.likelihood.param_names
        ('loc', 'scale', 'factor')
    """

    metric_names = VAE.metric_names

    def __init__(
        self, dequantization_levels: int | None = 256, likelihood: str = "structured_gaussian", **kwargs: Any
    ) -> None:
        levels = dequantization_levels
        if levels is not None and (isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 2):
            raise ValueError(f"dequantization_levels must be None or an integer >= 2, got {levels!r}")
        super().__init__(likelihood=likelihood, **kwargs)
        self.dequantization_levels = None if levels is None else int(levels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dequantization_levels": self.dequantization_levels}

    def dequantize(self, x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """y = (x (L - 1) + u) / L with u ~ U[0, 1) drawn from the stateless ``seed``
        (x itself when ``dequantization_levels`` is None)."""
        if self.dequantization_levels is None:
            return x
        levels = float(self.dequantization_levels)
        noise = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=x.dtype)
        return (x * (levels - 1.0) + noise) / levels

    def elbo_terms(self, x, training=False):
        return super().elbo_terms(self.dequantize(x, self._next_seed()), training)

    def _log_weights(self, x, seed, num_samples):
        # The first seed component is the caller's seed; the second changes with the
        # batch and the chunk of samples, which must all see the same y: u comes from a
        # stream derived from the first component alone.
        dequantization_seed = tf.random.experimental.stateless_fold_in(tf.stack([seed[0], 0]), 1)
        return super()._log_weights(self.dequantize(x, dequantization_seed), seed, num_samples)
