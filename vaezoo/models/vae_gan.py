"""VAE-GAN hybrids: the VAE/GAN of Larsen et al. (2016), whose reconstruction error is
measured in a discriminator's features, and the CVAE-GAN of Bao et al. (2017), a
class-conditional VAE/GAN with a classifier and feature-matching generator losses.
Both are trained by several players, each with its own optimizer, in one ``fit``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import non_negative
from vaezoo.models.conditional import ConditionalVAE, prior_draws
from vaezoo.models.players import Players
from vaezoo.models.vae import VAE

layers = keras.layers


def build_critic(
    network: str,
    data_shape: Sequence[int],
    outputs: int,
    hidden_units: Sequence[int] = (512, 256),
    conv_filters: Sequence[int] = (32, 64),
    name: str = "critic",
) -> keras.Model:
    """x -> (features, logits): a discriminator or classifier over images.

    ``features`` are the activations that the VAE-GAN and CVAE-GAN compare: the
    output of the stride-2 4x4 convolutions of ``conv_filters`` (``conv``) or of the
    first dense layer of ``hidden_units`` (``mlp``), layer-normalised without
    parameters (so that feature distances keep their scale while the critic trains).
    The logits, ``outputs`` of them, come after the remaining dense layers (at least
    one), as the paper's Dis_l, a convolution, is followed by a dense layer. Leaky
    ReLUs throughout.

    Example:
        >>> critic = build_critic("conv", (28, 28, 1), 10, hidden_units=(8,), conv_filters=(4,))
        >>> [tuple(t.shape) for t in critic.outputs]
        [(None, 784), (None, 10)]
    """
    data_shape = tuple(int(s) for s in data_shape)
    hidden_units = tuple(int(u) for u in hidden_units) or (256,)
    inputs = keras.Input(data_shape)
    h = inputs
    if network == "conv":
        for filters in conv_filters:
            h = layers.Conv2D(filters, 4, strides=2, padding="same", activation="leaky_relu")(h)
        head = hidden_units
    else:
        h = layers.Dense(hidden_units[0], activation="leaky_relu")(layers.Flatten()(h))
        head = hidden_units[1:] or hidden_units[:1]
    features = layers.LayerNormalization(center=False, scale=False)(layers.Flatten()(h))
    h = features
    for units in head:
        h = layers.Dense(units, activation="leaky_relu")(h)
    return keras.Model(inputs, [features, layers.Dense(outputs)(h)], name=name)


class CriticPlayers(Players):
    """Mixin of the VAE-GAN hybrids (:class:`vaezoo.models.players.Players`): the pieces
    their objectives share, over image critics (:func:`build_critic`)."""

    def _prior_images(self, n: tf.Tensor, *labels: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Decoded means of ``n`` draws of the prior (given ``labels``, if conditional)."""
        return self.likelihood.mean(self.decoder_params(prior_draws(self, n), *labels, training=training))

    @staticmethod
    def _critic_outputs(critic: keras.Model, images: Sequence[tf.Tensor], training: bool) -> tuple[list, list]:
        """``critic``'s features and logits of each batch of ``images`` (one pass)."""
        sizes = [tf.shape(x)[0] for x in images]
        features, logits = critic(tf.concat([tf.cast(x, critic.compute_dtype) for x in images], 0), training=training)
        return (
            tf.split(tf.cast(features, tf.float32), sizes, 0),
            tf.split(tf.cast(logits, tf.float32), sizes, 0),
        )

    @staticmethod
    def _real_fake(logits: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """The discriminator's cross-entropy, -(log D(x) + sum_fakes log(1 - D(fake))),
        per example, batch mean, and its accuracy; ``logits[0]`` are the real examples'."""
        labels = [tf.ones_like(logits[0])] + [tf.zeros_like(l) for l in logits[1:]]
        loss = tf.add_n([tf.nn.sigmoid_cross_entropy_with_logits(t, l)[:, 0] for t, l in zip(labels, logits)])
        correct = tf.concat([tf.cast((l > 0) == (t > 0), tf.float32) for t, l in zip(labels, logits)], 0)
        return tf.reduce_mean(loss), tf.reduce_mean(correct)


@keras.saving.register_keras_serializable(package="vaezoo")
class VAEGAN(CriticPlayers, VAE):
    """VAE/GAN: a VAE whose reconstruction error is measured in the features of a GAN
    discriminator, trained jointly with it.

    Larsen, Sonderby, Larochelle and Winther, "Autoencoding beyond pixels using a
    learned similarity metric", ICML 2016.

    With x~ = Dec(z), z ~ Enc(x) = q(z|x), x_p = Dec(z_p), z_p ~ p(z), and Dis_l(x)
    the discriminator's l-th layer (its features, see :func:`build_critic`):

        L_prior = KL(q(z|x) || p(z))
        L_llike^Dis_l = -E_q(z|x)[log N(Dis_l(x) | Dis_l(x~), I)]
        L_GAN = -(log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p)))

    L_GAN is the discriminator's cross-entropy on real, reconstructed and sampled
    images (the negative of the paper's eq. 7 sum of logs; with this sign the paper's
    Algorithm 1 reads as printed). Each ``train_step`` takes Algorithm 1's three
    updates from one forward pass, each with its own optimizer over its own variables:

        encoder (the compiled optimizer):          loss = L_prior + L_llike^Dis_l
        decoder (``decoder_optimizer``):           gamma * L_llike^Dis_l - L_GAN
        discriminator (``discriminator_optimizer``): L_GAN

    so L_GAN does not reach the encoder and L_llike^Dis_l does not train the
    discriminator. The decoder's image x~ is the likelihood's mean. The metrics are
    ``kl`` (L_prior), ``llike`` (L_llike^Dis_l), ``discriminator_loss`` (L_GAN),
    ``discriminator_accuracy`` (share of the real, reconstructed and sampled images
    it classifies right), ``decoder_loss``, ``loss`` (the encoder's objective, the
    VAE part of the paper's eq. 9) and, for comparison with other models,
    ``reconstruction`` = -log p(x|z) under the likelihood head (pixels; reported, not
    trained on) and ``elbo``. The paper used RMSProp with learning rate 3e-4 and a
    batch-normalised discriminator; this one reuses the model's ``network``,
    ``hidden_units`` and ``conv_filters``, with layer normalisation of Dis_l.

    Args:
        gamma: weight of L_llike^Dis_l against L_GAN in the decoder's update, >= 0.
        decoder_optimizer: a Keras optimizer or its config, or None for a copy of
            the compiled optimizer.
        discriminator_optimizer: likewise, for the discriminator.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import VAEGAN
        >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
        >>> model = VAEGAN(hidden_units=(8,), latent_dim=2, likelihood="continuous_bernoulli")
        >>> model.compile(optimizer="adam")
        >>> history = model.fit(x, epochs=1, batch_size=32, verbose=0).history
        >>> sorted(history)  # doctest: +NORMALIZE_WHITESPACE
        ['decoder_loss', 'discriminator_accuracy', 'discriminator_loss', 'elbo', 'kl', 'llike', 'loss',
         'reconstruction']
        >>> [int(o.iterations) for _, o, _ in model.players()]
        [2, 2, 2]
    """

    metric_names = VAE.metric_names + (
        "llike",
        "decoder_loss",
        "discriminator_loss",
        "discriminator_accuracy",
    )
    optimizer_names = ("decoder_optimizer", "discriminator_optimizer")

    def __init__(
        self,
        gamma: float = 1.0,
        decoder_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        discriminator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        gamma = non_negative("gamma", gamma)
        super().__init__(**kwargs)
        self.gamma = gamma
        self._init_optimizers(
            {"decoder_optimizer": decoder_optimizer, "discriminator_optimizer": discriminator_optimizer}
        )

    def build(self, input_shape=None):
        if not self.built:
            self.discriminator = build_critic(
                self.network, self.data_shape, 1, self.hidden_units, self.conv_filters, name="discriminator"
            )
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, **self._optimizer_config()}

    def players(self) -> list[tuple[str, Any, list]]:
        decoder = self.decoder.trainable_variables + self.likelihood.trainable_variables
        discriminator = self.discriminator.trainable_variables
        return [
            ("loss", self.optimizer, self._other_variables(decoder, discriminator)),
            ("decoder_loss", self.decoder_optimizer, decoder),
            ("discriminator_loss", self.discriminator_optimizer, discriminator),
        ]

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        x_tilde = self.likelihood.mean(self.decoder_params(terms["z"], training))
        x_p = self._prior_images(tf.shape(x)[0], training=training)
        (f_x, f_tilde, _), logits = self._critic_outputs(self.discriminator, [x, x_tilde, x_p], training)
        llike = -tf.reduce_mean(tf.reduce_sum(tfd.Normal(f_tilde, 1.0).log_prob(f_x), -1))
        gan, accuracy = self._real_fake(logits)
        return {
            "loss": elbo["kl"] + llike,
            **elbo,
            "llike": llike,
            "decoder_loss": self.gamma * llike - gan,
            "discriminator_loss": gan,
            "discriminator_accuracy": accuracy,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class CVAEGAN(CriticPlayers, ConditionalVAE):
    """CVAE-GAN: a conditional VAE and GAN with a classifier, the generator trained by
    pairwise and mean feature matching (asymmetric training).

    Bao, Chen, Wen, Li and Hua, "CVAE-GAN: Fine-Grained Image Generation through
    Asymmetric Training", ICCV 2017.

    An encoder E gives z ~ q(z|x, c) for an image x of class c, the generator G
    reconstructs x_f = G(z, c) and samples x_p = G(z_p, c), z_p ~ p(z) (here with the
    batch's classes c); a discriminator D (real or fake) and a classifier C (class)
    read images, and f_D, f_C are their last hidden layers. Algorithm 1's terms:

        L_KL = KL(q(z|x, c) || p(z))
        L_G  = 1/2 (||x - x_f||^2 + ||f_D(x) - f_D(x_f)||^2 + ||f_C(x) - f_C(x_f)||^2)
        L_GD = 1/2 ||mean f_D(x) - mean f_D(x_p)||^2
        L_GC = 1/2 sum_c ||mean_{c} f_C(x) - mean_{c} f_C(x_p)||^2   (class-wise means)
        L_D  = -(log D(x) + log(1 - D(x_f)) + log(1 - D(x_p)))
        L_C  = -log P(c | x)   (real images only)

    and its four updates, from one forward pass, each with its own optimizer:

        encoder (the compiled optimizer):           lambda_1 L_KL + lambda_2 L_G
        generator (``generator_optimizer``):        lambda_2 L_G + lambda_3 L_GD + lambda_4 L_GC
        discriminator (``discriminator_optimizer``): L_D
        classifier (``classifier_optimizer``):      L_C

    (the paper's lambdas are 3, 1, 1e-3 and 1e-3). The generator never sees the
    discriminator's cross-entropy, only mean feature discrepancies. Simplifications:
    the pixel term ||x - x_f||^2 / 2 is the likelihood head's -log p(x|z, c)
    (``reconstruction``: that distance plus a constant for the registered
    unit-variance Gaussian, a weighted distance for another sigma); the feature means
    are over the minibatch; x_f and x_p are the likelihood's means. Labels: class
    ids, or vectors read as class probabilities (soft targets of L_C, weights of the
    class-wise means). The metrics are ``kl`` (L_KL), ``pairwise_matching`` (L_G),
    ``mean_matching_d`` (L_GD), ``mean_matching_c`` (L_GC), ``discriminator_loss``
    (L_D) and ``discriminator_accuracy`` (on real, reconstructed and sampled images),
    ``classifier_loss`` (L_C) and ``classifier_accuracy`` (on real images),
    ``encoder_loss``, ``generator_loss``, ``loss`` = lambda_1 L_KL + lambda_2 L_G +
    lambda_3 L_GD + lambda_4 L_GC (what the encoder and generator minimise), and
    ``reconstruction`` and ``elbo`` (of the likelihood head). D and C reuse the model's
    ``network``, ``hidden_units`` and ``conv_filters`` (see :func:`build_critic`).

    Args:
        lambda_1, lambda_2, lambda_3, lambda_4: weights of L_KL, L_G, L_GD, L_GC, >= 0.
        generator_optimizer, discriminator_optimizer, classifier_optimizer: Keras
            optimizers or their configs, or None for copies of the compiled optimizer.
        **kwargs: the arguments of :class:`vaezoo.models.conditional.ConditionalVAE`
            but ``alpha`` (the generator learns from prior samples through L_GD, L_GC).

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import CVAEGAN
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((64, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 64)
        >>> model = CVAEGAN(label_dim=10, hidden_units=(8,), latent_dim=2, likelihood="gaussian")
        >>> model.compile(optimizer="adam")
        >>> "classifier_accuracy" in model.fit(x, y, epochs=1, batch_size=32, verbose=0).history
        True
        >>> model.sample(2, labels=[3, 4]).shape
        (2, 28, 28, 1)
    """

    metric_names = VAE.metric_names + (
        "pairwise_matching",
        "mean_matching_d",
        "mean_matching_c",
        "encoder_loss",
        "generator_loss",
        "discriminator_loss",
        "discriminator_accuracy",
        "classifier_loss",
        "classifier_accuracy",
    )
    optimizer_names = ("generator_optimizer", "discriminator_optimizer", "classifier_optimizer")

    def __init__(
        self,
        lambda_1: float = 3.0,
        lambda_2: float = 1.0,
        lambda_3: float = 1e-3,
        lambda_4: float = 1e-3,
        generator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        discriminator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        classifier_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        lambdas = [non_negative(f"lambda_{i}", v) for i, v in enumerate((lambda_1, lambda_2, lambda_3, lambda_4), 1)]
        if kwargs.get("alpha", 1.0) != 1.0:
            raise ValueError(f"alpha (the CVAE's hybrid objective) does not apply to CVAEGAN, got {kwargs['alpha']!r}")
        super().__init__(**kwargs)
        self.lambda_1, self.lambda_2, self.lambda_3, self.lambda_4 = lambdas
        self._init_optimizers(
            {
                "generator_optimizer": generator_optimizer,
                "discriminator_optimizer": discriminator_optimizer,
                "classifier_optimizer": classifier_optimizer,
            }
        )

    def build(self, input_shape=None):
        if not self.built:
            nets = (self.network, self.data_shape)
            sizes = (self.hidden_units, self.conv_filters)
            self.discriminator = build_critic(*nets, 1, *sizes, name="discriminator")
            self.classifier = build_critic(*nets, self.label_dim, *sizes, name="classifier")
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        lambdas = {f"lambda_{i}": getattr(self, f"lambda_{i}") for i in range(1, 5)}
        return {**super().get_config(), **lambdas, **self._optimizer_config()}

    def players(self) -> list[tuple[str, Any, list]]:
        generator = self.decoder.trainable_variables + self.likelihood.trainable_variables
        discriminator = self.discriminator.trainable_variables
        classifier = self.classifier.trainable_variables
        return [
            ("encoder_loss", self.optimizer, self._other_variables(generator, discriminator, classifier)),
            ("generator_loss", self.generator_optimizer, generator),
            ("discriminator_loss", self.discriminator_optimizer, discriminator),
            ("classifier_loss", self.classifier_optimizer, classifier),
        ]

    def objective(self, inputs, training=False):
        x, y = inputs
        terms, elbo = self.elbo_summary(inputs, training)
        x_f = self.likelihood.mean(self.decoder_params(terms["z"], y, training=training))
        x_p = self._prior_images(tf.shape(x)[0], y, training=training)
        (d_x, d_f, d_p), d_logits = self._critic_outputs(self.discriminator, [x, x_f, x_p], training)
        (c_x, c_f, c_p), (c_logits, _, _) = self._critic_outputs(self.classifier, [x, x_f, x_p], training)

        def half_squared(a, b):
            return 0.5 * tf.reduce_sum(tf.square(a - b), -1)

        pairwise = elbo["reconstruction"] + tf.reduce_mean(half_squared(d_x, d_f) + half_squared(c_x, c_f))
        mean_d = half_squared(tf.reduce_mean(d_x, 0), tf.reduce_mean(d_p, 0))
        weights = tf.cast(y, tf.float32)  # (batch, classes): each class's share of each example
        counts = tf.maximum(tf.reduce_sum(weights, 0), 1e-6)[:, None]
        centers = [tf.matmul(weights, f, transpose_a=True) / counts for f in (c_x, c_p)]  # (classes, features)
        mean_c = tf.reduce_sum(half_squared(*centers))
        discriminator_loss, discriminator_accuracy = self._real_fake(d_logits)
        classifier_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(weights, c_logits))
        correct = tf.equal(tf.argmax(c_logits, -1), tf.argmax(weights, -1))
        encoder_loss = self.lambda_1 * elbo["kl"] + self.lambda_2 * pairwise
        generator_loss = self.lambda_2 * pairwise + self.lambda_3 * mean_d + self.lambda_4 * mean_c
        return {
            "loss": encoder_loss + self.lambda_3 * mean_d + self.lambda_4 * mean_c,
            **elbo,
            "pairwise_matching": pairwise,
            "mean_matching_d": mean_d,
            "mean_matching_c": mean_c,
            "encoder_loss": encoder_loss,
            "generator_loss": generator_loss,
            "discriminator_loss": discriminator_loss,
            "discriminator_accuracy": discriminator_accuracy,
            "classifier_loss": classifier_loss,
            "classifier_accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
        }
