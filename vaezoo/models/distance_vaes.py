"""The statistical-distance autoencoders: the KL term of the ELBO is replaced (or joined)
by a distance d(p(z), q(z))^2 between the aggregate posterior q(z) = E_x q(z|x) and the
prior, estimated from the batch's codes z ~ q(z|x) and as many draws of p(z).

Every variant is :class:`DistanceVAE` with one ``latent_distance``; the distances
themselves are the pure functions of :mod:`vaezoo.losses.distances`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

from vaezoo._tf import keras, tf
from vaezoo.losses import (
    WAE_SCALES,
    check_kernel,
    default_scale,
    energy_distance,
    mmd,
    non_negative,
    positive_int,
    random_feature_mmd,
    sliced_wasserstein,
)
from vaezoo.models.players import LatentDiscriminator
from vaezoo.models.vae import VAE


class DistanceVAE(VAE):
    """The objective every statistical-distance autoencoder shares (abstract).

        loss = reconstruction + kl_weight * KL(q(z|x) || p(z)) + distance_weight * d(q(z), p(z))^2

    where d^2 is ``latent_distance(z, prior_z, seed)`` between the batch's codes
    z ~ q(z|x) (reparameterised, so the encoder gets the distance's gradient) and as
    many prior draws (``prior.from_noise`` of fresh noise each step); ``seed`` feeds the
    distances that draw random projections or features. By default ``kl_weight`` is 0
    (the distance replaces the KL term) and ``distance_weight`` is ``lambda_``. The
    metrics are ``reconstruction``, ``kl``, ``elbo`` (reported, not minimised), the
    distance under the name the subclass's paper gives it (``distance_name``) and ``loss``.

    Args:
        lambda_: weight of the distance, >= 0.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import EnergyVAE
        >>> model = EnergyVAE(lambda_=3.0, hidden_units=(8,), latent_dim=2)
        >>> terms = model.objective(np.zeros((16, 28, 28, 1), "float32"))
        >>> bool(np.isclose(terms["loss"], terms["reconstruction"] + 3.0 * terms["energy_distance"]))
        True
    """

    #: The metric name of the distance, as the subclass's paper names it.
    distance_name: ClassVar[str] = "distance"

    def __init__(self, lambda_: float = 1.0, **kwargs: Any) -> None:
        lambda_ = non_negative("lambda_", lambda_)
        super().__init__(**kwargs)
        self.lambda_ = lambda_

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lambda_": self.lambda_}

    @property
    def kl_weight(self) -> float:
        """Weight of KL(q(z|x) || p(z)) in the loss."""
        return 0.0

    @property
    def distance_weight(self) -> float:
        """Weight of the distance in the loss."""
        return self.lambda_

    def latent_distance(self, z: tf.Tensor, prior_z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """d^2 between codes ``z`` and prior draws ``prior_z`` (both (n, latent_dim)); a
        scalar. ``seed`` (two int32) is the stateless seed of any randomness it uses."""
        raise NotImplementedError

    def prior_sample(self, n: tf.Tensor | int, seed: tf.Tensor) -> tf.Tensor:
        """``n`` draws of p(z) from the stateless ``seed``; shape (n, latent_dim)."""
        shape = tf.concat([tf.reshape(tf.cast(n, tf.int32), [1]), tf.constant(self.prior.noise_shape, tf.int32)], 0)
        return self.prior.from_noise(tf.random.stateless_normal(shape, seed))

    def latent_terms(self, z: tf.Tensor, prior_z: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """The terms computed from the codes and prior draws: here only the distance."""
        return {self.distance_name: self.latent_distance(z, prior_z, self._next_seed())}

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        z = terms["z"]
        latent = self.latent_terms(z, self.prior_sample(tf.shape(z)[0], self._next_seed()), training)
        loss = elbo["reconstruction"] + self.kl_weight * elbo["kl"] + self.distance_weight * latent[self.distance_name]
        return {"loss": loss, **elbo, **latent}


@keras.saving.register_keras_serializable(package="vaezoo")
class SWAE(DistanceVAE):
    """Sliced-Wasserstein autoencoder.

    Kolouri, Pope, Martin and Rohde, "Sliced-Wasserstein Autoencoder: An
    Embarrassingly Simple Generative Model", ICLR 2019.

        loss = reconstruction + lambda * SW_p^p(q(z), p(z))

    SW_p^p (metric ``sliced_wasserstein``) is the p-Wasserstein distance between the
    sorted projections of the codes and of as many prior draws on ``num_projections``
    random directions of the unit sphere, averaged over the directions
    (:func:`vaezoo.losses.sliced_wasserstein`, the paper's Algorithm 1); new directions
    each step. The paper's encoder is deterministic; here z ~ q(z|x).

    Args:
        lambda_: weight of the sliced-Wasserstein term, >= 0.
        num_projections: directions L per step, >= 1 (the paper: 50).
        p: the order of the Wasserstein distance, >= 1 (the paper: 2).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import SWAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = SWAE(num_projections=10, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction', 'sliced_wasserstein']
    """

    distance_name = "sliced_wasserstein"
    metric_names = VAE.metric_names + (distance_name,)

    def __init__(self, lambda_: float = 10.0, num_projections: int = 50, p: float = 2.0, **kwargs: Any) -> None:
        num_projections = positive_int("num_projections", num_projections)
        if non_negative("p", p) < 1:
            raise ValueError(f"p must be a finite number >= 1, got {p!r}")
        super().__init__(lambda_=lambda_, **kwargs)
        self.num_projections = num_projections
        self.p = float(p)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_projections": self.num_projections, "p": self.p}

    def latent_distance(self, z, prior_z, seed):
        return sliced_wasserstein(z, prior_z, seed, self.num_projections, self.p)


@keras.saving.register_keras_serializable(package="vaezoo")
class EnergyVAE(DistanceVAE):
    """Radon-Sobolev variational autoencoder: the energy distance to the prior.

    Turinici, "Radon-Sobolev Variational Auto-Encoders", Neural Networks 141, 2021.

        loss = reconstruction + lambda * d(q(z), p(z))^2,
        d^2 = 2 E||z - z'|| - E||z - z''|| - E||z' - z'''||, z ~ q(z), z' ~ p(z)

    the squared energy distance (metric ``energy_distance``): the paper's Radon-Sobolev
    distance with the kernel -||z - z'||, estimated over the batch's codes and as many
    prior draws (:func:`vaezoo.losses.energy_distance`). The weight lambda is this
    module's choice for a likelihood in nats.

    Args:
        lambda_: weight of the energy distance, >= 0.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import EnergyVAE
        >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
        >>> model = EnergyVAE(hidden_units=(8,), latent_dim=2, likelihood="continuous_bernoulli")
        >>> sorted(model.objective(x))  # the terms, each a metric of fit
        ['elbo', 'energy_distance', 'kl', 'loss', 'reconstruction']
    """

    distance_name = "energy_distance"
    metric_names = VAE.metric_names + (distance_name,)

    def __init__(self, lambda_: float = 10.0, **kwargs: Any) -> None:
        super().__init__(lambda_=lambda_, **kwargs)

    def latent_distance(self, z, prior_z, seed):
        return energy_distance(z, prior_z)


@keras.saving.register_keras_serializable(package="vaezoo")
class InfoVAE(DistanceVAE):
    """InfoVAE with the maximum mean discrepancy (MMD-VAE).

    Zhao, Song and Ermon, "InfoVAE: Balancing Learning and Inference in Variational
    Autoencoders", AAAI 2019.

        loss = reconstruction + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1) MMD(q(z), p(z))

    with MMD (metric ``mmd``) the biased estimate of MMD_k^2 between the codes and as
    many prior draws (:func:`vaezoo.losses.mmd`), k the ``"rbf"`` kernel exp(-||z - z'||^2 / C)
    or the inverse multiquadratic ``"imq"`` C / (C + ||z - z'||^2), C = c * 2 d sigma^2
    summed over the multipliers c in ``kernel_scales``. alpha = 1 leaves no KL term:
    that is WAE-MMD (:class:`WAEMMD`).

    Args:
        alpha: 1 - weight of the KL term, <= 1.
        lambda_: with alpha, the weight alpha + lambda - 1 >= 0 of the MMD.
        kernel: ``"rbf"`` or ``"imq"``.
        kernel_bandwidth: sigma of C = 2 d sigma^2, > 0 (1: the prior's scale).
        kernel_scales: multipliers c of C whose kernels are summed, each > 0.
        unbiased: the U-statistic (True) or the V-statistic (False, the paper's code).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import InfoVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = InfoVAE(kernel="imq", hidden_units=(8,), latent_dim=2)
        >>> sorted(model.objective(x))  # the terms, each a metric of fit
        ['elbo', 'kl', 'loss', 'mmd', 'reconstruction']
        >>> model.kl_weight, model.distance_weight  # alpha = 0, lambda = 1000
        (1.0, 999.0)
    """

    distance_name = "mmd"
    metric_names = VAE.metric_names + (distance_name,)

    def __init__(
        self,
        alpha: float = 0.0,
        lambda_: float = 1000.0,
        kernel: str = "rbf",
        kernel_bandwidth: float = 1.0,
        kernel_scales: Sequence[float] = (1.0,),
        unbiased: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha > 1:
            raise ValueError(f"alpha must be a finite number <= 1 (the KL weight is 1 - alpha), got {alpha!r}")
        lambda_ = non_negative("lambda_", lambda_)
        if alpha + lambda_ - 1 < 0:
            raise ValueError(
                f"alpha + lambda_ - 1, the weight of the MMD, must be >= 0, got alpha={alpha!r}, lambda_={lambda_!r}"
            )
        check_kernel(kernel)
        if not non_negative("kernel_bandwidth", kernel_bandwidth) > 0:
            raise ValueError(f"kernel_bandwidth must be > 0, got {kernel_bandwidth!r}")
        scales = tuple(non_negative("kernel_scales", c) for c in kernel_scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"kernel_scales must be one or more numbers > 0, got {kernel_scales!r}")
        super().__init__(lambda_=lambda_, **kwargs)
        self.alpha = float(alpha)
        self.kernel = kernel
        self.kernel_bandwidth = float(kernel_bandwidth)
        self.kernel_scales = scales
        self.unbiased = bool(unbiased)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "kernel": self.kernel,
            "kernel_bandwidth": self.kernel_bandwidth,
            "kernel_scales": list(self.kernel_scales),
            "unbiased": self.unbiased,
        }

    @property
    def kl_weight(self) -> float:
        return 1.0 - self.alpha

    @property
    def distance_weight(self) -> float:
        return self.alpha + self.lambda_ - 1.0

    def latent_distance(self, z, prior_z, seed):
        base = default_scale(self.latent_dim, self.kernel_bandwidth)
        return mmd(z, prior_z, self.kernel, [c * base for c in self.kernel_scales], self.unbiased)


@keras.saving.register_keras_serializable(package="vaezoo")
class WAEMMD(InfoVAE):
    """Wasserstein autoencoder with the MMD penalty (WAE-MMD).

    Tolstikhin, Bousquet, Gelly and Schoelkopf, "Wasserstein Auto-Encoders", ICLR 2018.

        loss = reconstruction + lambda * MMD_k(q(z), p(z))

    MMD_k (metric ``mmd``) is the unbiased U-statistic of the paper's Algorithm 2 between
    the codes and as many prior draws, k the inverse multiquadratic kernel
    C / (C + ||z - z'||^2) summed over C = c * 2 d sigma_z^2, c in 0.1, 0.2, 0.5, 1, 2, 5, 10
    (the authors' code; ``kernel_scales=(1.0,)`` gives the paper's single C). The
    reconstruction is the likelihood's -log p(x|z) (a fixed-sigma Gaussian gives the
    paper's squared-L2 cost). WAE-MMD is InfoVAE at alpha = 1.

    Args:
        lambda_: weight of the MMD, >= 0. The paper's 10 weighs the MMD against the
            authors' cost 0.05 ||x - y||^2; against a Bernoulli -log p(x|z) in nats (about
            ten times larger on MNIST) the default is 100.
        kernel, kernel_bandwidth, kernel_scales, unbiased: as :class:`InfoVAE`.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import WAEMMD
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = WAEMMD(hidden_units=(8,), latent_dim=2)
        >>> sorted(model.objective(x))  # the terms, each a metric of fit
        ['elbo', 'kl', 'loss', 'mmd', 'reconstruction']
        >>> model.kl_weight, model.distance_weight  # InfoVAE at alpha = 1
        (0.0, 100.0)
    """

    def __init__(
        self,
        lambda_: float = 100.0,
        kernel: str = "imq",
        kernel_bandwidth: float = 1.0,
        kernel_scales: Sequence[float] = WAE_SCALES,
        unbiased: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            alpha=1.0,
            lambda_=lambda_,
            kernel=kernel,
            kernel_bandwidth=kernel_bandwidth,
            kernel_scales=kernel_scales,
            unbiased=unbiased,
            **kwargs,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["alpha"]
        return config


@keras.saving.register_keras_serializable(package="vaezoo")
class WAEGAN(LatentDiscriminator, DistanceVAE):
    """Wasserstein autoencoder with the adversarial penalty (WAE-GAN).

    Tolstikhin, Bousquet, Gelly and Schoelkopf, "Wasserstein Auto-Encoders", ICLR 2018.

        loss = reconstruction + lambda * gan_penalty,  gan_penalty = -E_q(z)[log D(z)]

    A latent discriminator D (``self.discriminator``, an MLP saved with the model, two
    logits: class 0 a code of q(z), class 1 a draw of p(z)) gives the probability that
    z is a draw of p(z) rather than a code of q(z); it minimises its cross-entropy
    ``discriminator_loss`` on the batch's codes and as many prior draws, while the
    encoder and decoder minimise ``loss``: the paper's Algorithm 1 with the authors'
    non-saturating penalty -log D(z) (metric ``gan_penalty``; log 2 where D cannot
    tell). Each step takes one update of each player, with its own optimizer and
    variables (the two-player step of :class:`vaezoo.models.players.LatentDiscriminator`,
    as in FactorVAE). The paper scales the discriminator's objective by lambda; Adam
    makes that a no-op, so it is left out. ``discriminator_accuracy`` is the share of codes and draws D classifies
    right (0.5: chance).

    Args:
        lambda_: weight of the adversarial penalty, >= 0. The paper's 1 on MNIST weighs it
            against the authors' cost 0.05 ||x - y||^2; against a Bernoulli -log p(x|z)
            in nats (about ten times larger) the default is 10.
        discriminator_units: widths of D's hidden layers (the paper: four of 512).
        discriminator_optimizer: a Keras optimizer or its serialized config, or None for
            the paper's Adam with learning rate 5e-4 and beta1 = 0.5.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import WAEGAN
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = WAEGAN(discriminator_units=(8,), hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)  # doctest: +NORMALIZE_WHITESPACE
        ['discriminator_accuracy', 'discriminator_loss', 'elbo', 'gan_penalty', 'kl', 'loss',
         'reconstruction']
        >>> int(model.discriminator_optimizer.iterations)
        2
    """

    distance_name = "gan_penalty"
    metric_names = VAE.metric_names + (distance_name, "discriminator_loss", "discriminator_accuracy")

    def __init__(
        self,
        lambda_: float = 10.0,
        discriminator_units: Sequence[int] = (512,) * 4,
        discriminator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            discriminator_units=discriminator_units, discriminator_optimizer=discriminator_optimizer, lambda_=lambda_, **kwargs
        )

    def default_optimizer(self, name: str) -> keras.optimizers.Optimizer:
        # The paper's Adam with learning rate 5e-4 and beta1 = 0.5.
        return keras.optimizers.Adam(5e-4, beta_1=0.5, name=name)

    def latent_distance(self, z, prior_z, seed):
        logits = self.discriminator(z)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tf.ones_like(logits[:, 0], tf.int32), logits)
        )

    def latent_terms(self, z, prior_z, training=False):
        both = tf.concat([tf.stop_gradient(z), prior_z], 0)
        logits = self.discriminator(both, training=training)
        n = tf.shape(z)[0]
        labels = tf.concat([tf.zeros([n], tf.int32), tf.ones([n], tf.int32)], 0)
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
        return {
            **super().latent_terms(z, prior_z, training),
            "discriminator_loss": tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)),
            "discriminator_accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class KernelizedVAE(DistanceVAE):
    """VAE with a kernel (MMD) penalty computed through random Fourier features.

    The penalty and its fast estimator are those of Louizos, Swersky, Li, Welling and
    Zemel, "The Variational Fair Autoencoder", ICLR 2016 (its fast MMD through random
    Fourier features), applied
    between the codes and the prior as in this family (the paper compares the codes of
    two groups of a sensitive variable); the feature map is that of Rahimi and Recht,
    "Random Features for Large-Scale Kernel Machines", NIPS 2007.

        loss = reconstruction + KL(q(z|x) || p(z)) + lambda * MMD(q(z), p(z)),
        MMD = ||mean_i psi(z_i) - mean_j psi(z'_j)||^2,  psi(z) = sqrt(2 / D) cos(z W + b)

    the full ELBO plus the biased rbf MMD^2 (metric ``mmd``) of kernel
    exp(-||z - z'||^2 / C), C = 2 d sigma^2, in D = ``num_features`` random features
    (new W ~ N(0, 2 / C), b ~ U[0, 2 pi) each step; :func:`vaezoo.losses.random_feature_mmd`):
    linear in the batch size.

    Args:
        lambda_: weight of the MMD, >= 0 (beta in Louizos et al.).
        num_features: random features D, >= 1 (the paper: 500).
        kernel_bandwidth: sigma of C = 2 d sigma^2, > 0.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import KernelizedVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = KernelizedVAE(num_features=64, hidden_units=(8,), latent_dim=2)
        >>> sorted(model.objective(x))  # the terms, each a metric of fit
        ['elbo', 'kl', 'loss', 'mmd', 'reconstruction']
    """

    distance_name = "mmd"
    metric_names = VAE.metric_names + (distance_name,)

    def __init__(
        self, lambda_: float = 1000.0, num_features: int = 500, kernel_bandwidth: float = 1.0, **kwargs: Any
    ) -> None:
        num_features = positive_int("num_features", num_features)
        if not non_negative("kernel_bandwidth", kernel_bandwidth) > 0:
            raise ValueError(f"kernel_bandwidth must be > 0, got {kernel_bandwidth!r}")
        super().__init__(lambda_=lambda_, **kwargs)
        self.num_features = num_features
        self.kernel_bandwidth = float(kernel_bandwidth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_features": self.num_features, "kernel_bandwidth": self.kernel_bandwidth}

    @property
    def kl_weight(self) -> float:
        return 1.0

    def latent_distance(self, z, prior_z, seed):
        scale = default_scale(self.latent_dim, self.kernel_bandwidth)
        return random_feature_mmd(z, prior_z, seed, self.num_features, scale)
