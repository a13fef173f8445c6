"""FactorVAE (Kim and Mnih 2018): a discriminator estimates the total correlation of
q(z) by the density-ratio trick, and the VAE is penalised by that estimate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.losses import density_ratio_total_correlation, non_negative, permute_dims
from vaezoo.models.players import LatentDiscriminator
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class FactorVAE(LatentDiscriminator, VAE):
    """FactorVAE: the ELBO plus gamma times a discriminator's estimate of the total
    correlation of the aggregate posterior.

    Kim and Mnih, "Disentangling by Factorising", ICML 2018.

        loss = reconstruction + KL(q(z|x) || p(z)) + gamma * TC(z),
        TC(z) = KL(q(z) || prod_j q(z_j)) ~= E_q(z)[log D(z) / (1 - D(z))]

    The discriminator D (``self.discriminator``, an MLP saved with the model) learns
    to tell samples of q(z) from samples of prod_j q(z_j), made by shuffling each
    dimension of the batch's z across the batch (:func:`vaezoo.losses.permute_dims`),
    by minimising its cross-entropy ``discriminator_loss``. Each ``train_step`` takes
    one step of each player from the same forward pass, with separate variable lists
    (:class:`vaezoo.models.players.LatentDiscriminator`): the compiled optimizer
    updates the encoder and decoder (``optimizer_variables()``) with the gradient of
    the VAE loss only, and ``discriminator_optimizer`` (the paper's Adam with
    learning rate 1e-4, beta1 = 0.5, beta2 = 0.9 unless given) updates the
    discriminator with the gradient of its loss only. (The paper permutes the codes
    of a second batch; this uses the same batch.) The metrics are ``reconstruction``, ``kl``, ``total_correlation``,
    ``loss``, ``discriminator_loss`` and ``discriminator_accuracy`` (the share of
    real and permuted samples the discriminator classifies right; 0.5 is chance).

    Args:
        gamma: weight of the total-correlation estimate, >= 0 (the paper sweeps
            10 to 100 on dSprites).
        discriminator_units: widths of the discriminator's hidden layers (the paper: six of 1000).
        discriminator_optimizer: a Keras optimizer or its serialized config, or None
            for the paper's Adam.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import FactorVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = FactorVAE(gamma=10.0, discriminator_units=(8, 8), hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> history = model.fit(x, epochs=1, batch_size=32, verbose=0).history
        >>> sorted(history)  # doctest: +NORMALIZE_WHITESPACE
        ['discriminator_accuracy', 'discriminator_loss', 'elbo', 'kl', 'loss', 'reconstruction',
         'total_correlation']
        >>> int(model.discriminator_optimizer.iterations)
        2
    """

    metric_names = VAE.metric_names + (
        "total_correlation",
        "discriminator_loss",
        "discriminator_accuracy",
    )

    def __init__(
        self,
        gamma: float = 10.0,
        discriminator_units: Sequence[int] = (1000,) * 6,
        discriminator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        gamma = non_negative("gamma", gamma)
        super().__init__(discriminator_units=discriminator_units, discriminator_optimizer=discriminator_optimizer, **kwargs)
        self.gamma = gamma

    def default_optimizer(self, name: str) -> keras.optimizers.Optimizer:
        # Kim and Mnih (2018), Appendix A: Adam with learning rate 1e-4, beta1 = 0.5, beta2 = 0.9.
        return keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9, name=name)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma}

    # ------------------------------------------------------------------ objective

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        real = self.discriminator(terms["z"], training=training)
        total_correlation = tf.reduce_mean(density_ratio_total_correlation(real))
        permuted_z = permute_dims(tf.stop_gradient(terms["z"]), self._next_seed())
        permuted = self.discriminator(permuted_z, training=training)
        labels = tf.concat([tf.zeros(tf.shape(real)[:1], tf.int32), tf.ones(tf.shape(permuted)[:1], tf.int32)], 0)
        both = tf.concat([real, permuted], 0)
        discriminator_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, both))
        correct = tf.equal(tf.argmax(both, axis=-1, output_type=tf.int32), labels)
        return {
            "loss": -elbo["elbo"] + self.gamma * total_correlation,
            **elbo,
            "total_correlation": total_correlation,
            "discriminator_loss": discriminator_loss,
            "discriminator_accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
        }
