"""FactorVAE (Kim and Mnih 2018): a discriminator estimates the total correlation of
q(z) by the density-ratio trick, and the VAE is penalised by that estimate."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.losses import density_ratio_total_correlation, non_negative, permute_dims
from vaezoo.models.vae import VAE


def build_discriminator(latent_dim: int, units: Sequence[int], name: str = "discriminator") -> keras.Sequential:
    """z -> two logits (class 0: a sample of q(z); class 1: a sample of prod_j q(z_j)),
    through dense leaky-ReLU layers of ``units`` (the paper: six of 1000).

    Example:
        >>> build_discriminator(4, (8, 8)).output_shape
        (None, 2)
    """
    stack: list[keras.layers.Layer] = [keras.Input((latent_dim,))]
    stack += [keras.layers.Dense(u, activation="leaky_relu") for u in units]
    stack.append(keras.layers.Dense(2, dtype="float32"))  # logits in float32 under mixed precision
    return keras.Sequential(stack, name=name)


def _default_discriminator_optimizer() -> keras.optimizers.Optimizer:
    # Kim and Mnih (2018), Appendix A: Adam with learning rate 1e-4, beta1 = 0.5, beta2 = 0.9.
    return keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9, name="discriminator_optimizer")


@keras.saving.register_keras_serializable(package="vaezoo")
class FactorVAE(VAE):
    """FactorVAE: the ELBO plus gamma times a discriminator's estimate of the total
    correlation of the aggregate posterior.

    Kim and Mnih, "Disentangling by Factorising", ICML 2018.

        loss = reconstruction + KL(q(z|x) || p(z)) + gamma * TC(z),
        TC(z) = KL(q(z) || prod_j q(z_j)) ~= E_q(z)[log D(z) / (1 - D(z))]

    The discriminator D (``self.discriminator``, an MLP saved with the model) learns
    to tell samples of q(z) from samples of prod_j q(z_j), made by shuffling each
    dimension of the batch's z across the batch (:func:`vaezoo.losses.permute_dims`),
    by minimising its cross-entropy ``discriminator_loss``. Each ``train_step`` takes
    one step of each player from the same forward pass, with separate gradient
    tapes and variable lists: the compiled optimizer updates the encoder and decoder
    (``vae_variables``) with the gradient of the VAE loss only, and
    ``discriminator_optimizer`` (the paper's Adam with learning rate 1e-4,
    beta1 = 0.5, beta2 = 0.9 unless given) updates the discriminator with the
    gradient of its loss only. (The paper permutes the codes of a second batch; this
    uses the same batch.) The metrics are ``reconstruction``, ``kl``, ``total_correlation``,
    ``loss``, ``discriminator_loss`` and ``discriminator_accuracy`` (the share of
    real and permuted samples the discriminator classifies right; 0.5 is chance).

    Args:
        gamma: weight of the total-correlation estimate, >= 0 (the paper sweeps
            10 to 100 on dSprites).
        discriminator_units: widths of the discriminator's hidden layers.
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
        units = tuple(int(u) for u in discriminator_units)
        if not units or min(units) < 1:
            raise ValueError(
                f"discriminator_units must be one or more positive widths, got {discriminator_units!r}"
            )
        if isinstance(discriminator_optimizer, dict):  # deserialize edits its argument: give it a copy
            discriminator_optimizer = keras.optimizers.deserialize(copy.deepcopy(discriminator_optimizer))
        if not isinstance(discriminator_optimizer, (keras.optimizers.Optimizer, type(None))):
            raise TypeError(
                "discriminator_optimizer must be a keras optimizer, its config or None, "
                f"got {discriminator_optimizer!r}"
            )
        self.discriminator_units = units  # read by ``build``, which BaseVAE.__init__ calls
        super().__init__(**kwargs)
        self.gamma = gamma
        self.discriminator_optimizer = discriminator_optimizer or _default_discriminator_optimizer()

    def build(self, input_shape=None):
        if not self.built:
            self.discriminator = build_discriminator(self.latent_dim, self.discriminator_units)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "discriminator_units": list(self.discriminator_units),
            "discriminator_optimizer": keras.optimizers.serialize(self.discriminator_optimizer),
        }

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

    # ------------------------------------------------------------------ two players

    def vae_variables(self) -> list:
        """The trainable variables of everything but the discriminator."""
        excluded = {id(v) for v in self.discriminator.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in excluded]

    def _build_optimizers(self) -> None:
        if getattr(self, "optimizer", None) is not None and not self.optimizer.built:
            self.optimizer.build(self.vae_variables())
        if not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def compile_from_config(self, config):
        # Keras would build the optimizer over every trainable variable; each of the
        # two optimizers here owns one player's variables only, as in training.
        self.compile(**keras.saving.deserialize_keras_object(config))
        self._build_optimizers()

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        self._build_optimizers()
        return super().fit(x, y, validation_data=validation_data, **kwargs)

    def train_step(self, data):
        x = self._unpack(data)
        with tf.GradientTape() as vae_tape, tf.GradientTape() as discriminator_tape:
            terms = self._with_regularisers(self.objective(x, training=True))
        players = [
            (vae_tape, "loss", self.optimizer, self.vae_variables()),
            (discriminator_tape, "discriminator_loss", self.discriminator_optimizer, self.discriminator.trainable_variables),
        ]
        return self._apply_updates(x, terms, players)
