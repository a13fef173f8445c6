"""The Gaussian-mixture VAE of Dilokthanakul et al. (2017): a prior of K Gaussians whose
means and variances a second latent w sets, for unsupervised clustering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions import DiagonalNormal
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.base import BaseVAE
from vaezoo.nets import build_encoder


def _widths(name: str, units: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(units)
    if not widths or any(isinstance(u, bool) or int(u) != u or int(u) < 1 for u in widths):
        raise ValueError(f"{name} must be one or more positive widths, got {units!r}")
    return tuple(int(u) for u in widths)


def _log_softmax_over_clusters(z: tf.Tensor, loc: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """log p(c | z, w) = log-softmax over c of log N(z; loc_c, scale_c) (uniform pi), (batch, K)."""
    return tf.nn.log_softmax(tf.reduce_sum(tfd.Normal(loc, scale).log_prob(z[:, None, :]), -1), axis=-1)


@keras.saving.register_keras_serializable(package="vaezoo")
class ConditionalMixturePrior(keras.layers.Layer):
    """The GMVAE prior: w ~ N(0, I), c ~ Mult(1/K), z | w, c ~ N(mu_c(w), diag sigma_c(w)^2).

    The "prior generator" network maps w through dense tanh layers of ``hidden_units``
    to the K means and scales (softplus + ``scale_floor``). p(z) = E_p(w)[p(z|w)] has no
    closed form, so ``distribution()`` raises; ``conditional(w)`` is the mixture p(z|w)
    and ``components(w)`` its K Gaussians. ``from_noise`` maps standard-normal noise
    (w, K cluster values, z), of ``noise_shape`` = (w_dim + K + latent_dim,), to a prior
    sample: c is the index of the largest of the K cluster values (each index equally
    likely, as under pi = 1/K), z = mu_c(w) + sigma_c(w) * noise.

    Args:
        latent_dim: size of z.
        w_dim: size of w.
        num_clusters: K.
        hidden_units: widths of the prior generator's tanh layers.
        scale_floor: added to every softplus scale.

    Example:
        >>> import numpy as np
        >>> prior = ConditionalMixturePrior(latent_dim=2, w_dim=3, num_clusters=4, hidden_units=(8,))
        >>> prior.noise_shape
        (9,)
        >>> prior.from_noise(np.zeros((5, 9), "float32")).shape
        TensorShape([5, 2])
        >>> prior.components(np.zeros((5, 3), "float32")).batch_shape.as_list()
        [5, 4]
    """

    def __init__(
        self,
        latent_dim: int,
        w_dim: int,
        num_clusters: int,
        hidden_units: Sequence[int] = (500,),
        scale_floor: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.w_dim = positive_int("w_dim", w_dim)
        self.num_clusters = positive_int("num_clusters", num_clusters)
        self.hidden_units = _widths("hidden_units", hidden_units)
        if not non_negative("scale_floor", scale_floor) > 0:
            raise ValueError(f"scale_floor must be > 0, got {scale_floor!r}")
        self.scale_floor = float(scale_floor)
        # The prior generator computes in the prior's dtype (float32 in a vaezoo model,
        # also under a mixed-precision policy: it parameterises densities).
        stack: list[keras.layers.Layer] = [keras.Input((self.w_dim,))]
        stack += [keras.layers.Dense(u, activation="tanh", dtype=self.dtype_policy) for u in self.hidden_units]
        stack.append(keras.layers.Dense(2 * self.num_clusters * self.latent_dim, dtype=self.dtype_policy))
        self.network = keras.Sequential(stack, name="prior_generator")

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes: (w, cluster values, z)."""
        return (self.w_dim + self.num_clusters + self.latent_dim,)

    def loc_scale(self, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """mu_k(w) and sigma_k(w) of the K components, each (batch, K, latent_dim)."""
        h = tf.reshape(self.network(w), [-1, self.num_clusters, 2 * self.latent_dim])
        loc, raw = tf.split(h, 2, axis=-1)
        return loc, tf.nn.softplus(raw) + self.scale_floor

    def components(self, w: tf.Tensor) -> tfd.Distribution:
        """The K Gaussians p(z | w, c = k), batch shape (batch, K)."""
        loc, scale = self.loc_scale(w)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def conditional(self, w: tf.Tensor) -> tfd.Distribution:
        """p(z|w) = (1/K) sum_k p(z | w, c = k), batch shape (batch,)."""
        logits = tf.zeros(tf.concat([tf.shape(w)[:-1], [self.num_clusters]], 0), w.dtype)
        return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), self.components(w))

    def w_distribution(self) -> tfd.Distribution:
        """p(w) = N(0, I)."""
        zeros = tf.zeros([self.w_dim], self.compute_dtype)
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def distribution(self) -> tfd.Distribution:
        raise NotImplementedError(
            "the GMVAE prior p(z) = E_p(w)[p(z|w)] has no closed form; use conditional(w), "
            "or the model's log_likelihood, which marginalises w by importance sampling"
        )

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """A prior sample z for standard-normal noise ``eps`` of ``noise_shape``."""
        eps = tf.convert_to_tensor(eps)
        w, cluster_noise, z_noise = tf.split(eps, [self.w_dim, self.num_clusters, self.latent_dim], axis=-1)
        loc, scale = self.loc_scale(w)
        chosen = tf.cast(tf.equal(cluster_noise, tf.reduce_max(cluster_noise, -1, keepdims=True)), loc.dtype)
        return tf.reduce_sum(chosen[..., None] * (loc + scale * z_noise[:, None, :]), axis=1)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "w_dim": self.w_dim,
            "num_clusters": self.num_clusters,
            "hidden_units": list(self.hidden_units),
            "scale_floor": self.scale_floor,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class GMVAE(BaseVAE):
    """Gaussian-mixture VAE for unsupervised clustering.

    Dilokthanakul, Mediano, Garnelo, Lee, Salimbeni, Arulkumaran and Shanahan, "Deep
    Unsupervised Clustering with Gaussian Mixture Variational Autoencoders",
    arXiv:1611.02648, 2017.

    Generative model: w ~ N(0, I), c ~ Mult(pi) with pi_k = 1/K, z | w, c ~
    N(mu_c(w), diag sigma_c(w)^2) (the :class:`ConditionalMixturePrior`), x | z ~ the
    likelihood. Inference: q(z|x) q(w|x), and the exact p(c | z, w) proportional to
    pi_c N(z; mu_c(w), sigma_c(w)). The lower bound is the sum of four terms, the
    metrics of the same names (one sample of z and w, nats per example, batch means):

        reconstruction    = -E_q(z|x)[log p(x|z)]
        conditional_prior = E_q(w|x) p(c|z,w)[KL(q(z|x) || p(z|w,c))]   (analytic KL)
        w_prior           = KL(q(w|x) || p(w))
        z_prior           = E_q(z|x) q(w|x)[KL(p(c|z,w) || p(c))]

    ``kl`` is the sum of the last three and ``elbo`` = -(reconstruction + kl). The
    paper's remedy for over-regularisation and the cluster degeneracy it causes, the
    minimum information constraint (free bits), replaces the z-prior term in the loss
    by max(lambda, z_prior), with lambda = ``free_bits`` nats (its code uses 0.5), so
    the assignments are not pulled to the uniform p(c) until they carry that much
    information:

        loss = reconstruction + conditional_prior + w_prior + max(lambda, z_prior).

    ``log_likelihood`` sums over c exactly and samples z and w from q.
    :meth:`predict_cluster` assigns each example argmax_c p(c | z, w) at the posterior
    means. As in the paper, c has no posterior network of its own; q(w|x) has its own
    encoder network (``w_encoder``, the same architecture as the z encoder), where the
    paper's two heads share one trunk: the exported encoder stays q(z|x), like every
    vaezoo encoder. Trained briefly, the model can put every example in one cluster
    (w then moves that one component to each z): on 2048 Fashion-MNIST images and 20
    epochs, the paper's MNIST sizes (z 200, w 150) did, while the registered ``gmvae``
    (z 10, w 10, a Gaussian likelihood with one learned sigma) used all ten clusters.

    Args:
        num_clusters: K, the number of mixture components.
        w_dim: size of w (the paper uses 150 on MNIST).
        prior_hidden_units: widths of the prior generator's tanh layers (the paper: 500).
        free_bits: lambda, >= 0 (0 gives the plain bound).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` (posterior "diag").

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import GMVAE
        >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
        >>> model = GMVAE(num_clusters=3, w_dim=2, prior_hidden_units=(8,), hidden_units=(8,), latent_dim=2,
        ...               likelihood="continuous_bernoulli")
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)  # doctest: +NORMALIZE_WHITESPACE
        ['conditional_prior', 'elbo', 'kl', 'loss', 'reconstruction', 'w_prior', 'z_prior']
        >>> model.predict_cluster(x[:5]).shape
        (5,)
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl", "conditional_prior", "w_prior", "z_prior")

    def __init__(
        self,
        num_clusters: int = 10,
        w_dim: int = 150,
        prior_hidden_units: Sequence[int] = (500,),
        free_bits: float = 0.5,
        prior: None = None,
        **kwargs: Any,
    ) -> None:
        if prior is not None:
            raise ValueError(
                "GMVAE builds its prior from num_clusters, w_dim and prior_hidden_units; prior must be None, "
                f"got {prior!r}"
            )
        if kwargs.get("posterior", "diag") != "diag":
            raise ValueError(
                f"GMVAE needs posterior='diag' (its KL terms are per dimension), got {kwargs['posterior']!r}"
            )
        # Read by _make_prior and build, which BaseVAE.__init__ calls.
        self.num_clusters = positive_int("num_clusters", num_clusters)
        self.w_dim = positive_int("w_dim", w_dim)
        self.prior_hidden_units = _widths("prior_hidden_units", prior_hidden_units)
        self.free_bits = non_negative("free_bits", free_bits)
        super().__init__(**kwargs)

    def _make_prior(self, prior):
        return ConditionalMixturePrior(
            self.latent_dim, self.w_dim, self.num_clusters, self.prior_hidden_units, name="prior", dtype="float32"
        )

    def build(self, input_shape=None):
        if not self.built:
            self.w_encoder = build_encoder(
                self.network,
                self.data_shape,
                2 * self.w_dim,
                hidden_units=self.hidden_units,
                conv_filters=self.conv_filters,
                activation=self.activation,
                name="w_encoder",
            )
            self.w_posterior = DiagonalNormal(self.w_dim, name="w_posterior", dtype="float32")
            self.w_posterior.build(None)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["prior"]  # rebuilt from the three arguments below
        return {
            **config,
            "num_clusters": self.num_clusters,
            "w_dim": self.w_dim,
            "prior_hidden_units": list(self.prior_hidden_units),
            "free_bits": self.free_bits,
        }

    # ------------------------------------------------------------------ the model

    def encode_w(self, x, training: bool = False) -> tfd.Distribution:
        """q(w|x) for a batch ``x``."""
        h = self.w_encoder(self._as_float(x), training=training)
        return self.w_posterior(tf.cast(h, tf.float32))

    def cluster_log_posterior(self, z: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        """log p(c | z, w) for every c, (batch, K): with pi uniform, the log-softmax of
        log N(z; mu_c(w), sigma_c(w)) over c."""
        return _log_softmax_over_clusters(z, *self.prior.loc_scale(w))

    def gmvae_terms(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """The four terms of the bound per example (see the class docstring), from one
        reparameterised sample of z ~ q(z|x) and of w ~ q(w|x)."""
        q_z, q_w = self.encode(x, training), self.encode_w(x, training)
        z = q_z.sample(seed=self._next_seed())
        w = q_w.sample(seed=self._next_seed())
        p_x = self.likelihood.distribution(self.decoder_params(z, training))
        loc, scale = self.prior.loc_scale(w)
        log_p_c = _log_softmax_over_clusters(z, loc, scale)
        p_c = tf.exp(log_p_c)
        q_z_per_cluster = tfd.Normal(q_z.mean()[:, None, :], q_z.stddev()[:, None, :])
        kl_per_cluster = tf.reduce_sum(tfd.kl_divergence(q_z_per_cluster, tfd.Normal(loc, scale)), -1)
        return {
            "reconstruction": -p_x.log_prob(self.likelihood.prepare_targets(x)),
            "conditional_prior": tf.reduce_sum(p_c * kl_per_cluster, -1),
            "w_prior": tfd.kl_divergence(q_w, self.prior.w_distribution()),
            "z_prior": tf.reduce_sum(p_c * (log_p_c + math.log(self.num_clusters)), -1),
        }

    def objective(self, x, training=False):
        terms = {name: tf.reduce_mean(value) for name, value in self.gmvae_terms(x, training).items()}
        kl = terms["conditional_prior"] + terms["w_prior"] + terms["z_prior"]
        loss = (
            terms["reconstruction"]
            + terms["conditional_prior"]
            + terms["w_prior"]
            + tf.maximum(tf.constant(self.free_bits, terms["z_prior"].dtype), terms["z_prior"])
        )
        return {"loss": loss, "elbo": -(terms["reconstruction"] + kl), "kl": kl, **terms}

    def _log_weights(self, x, seed, num_samples):
        """log w_s = log p(x|z_s) + log p(z_s|w_s) + log p(w_s) - log q(z_s|x) - log q(w_s|x),
        with p(z|w) summed over c exactly; shape (S, B)."""
        z_seed, w_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        q_z, q_w = self.encode(x), self.encode_w(x)
        z = q_z.sample(num_samples, seed=z_seed)
        w = q_w.sample(num_samples, seed=w_seed)
        batch = tf.shape(x)[0]
        flat_z, flat_w = tf.reshape(z, [-1, self.latent_dim]), tf.reshape(w, [-1, self.w_dim])
        targets = self.likelihood.prepare_targets(x)
        tiled = tf.tile(targets, [num_samples] + [1] * len(self.data_shape))  # index s * B + b, as flat_z
        log_px = self.likelihood.distribution(self.decoder_params(flat_z)).log_prob(tiled)
        log_pz = self.prior.conditional(flat_w).log_prob(flat_z)
        log_joint = tf.reshape(log_px + log_pz, [num_samples, batch]) + self.prior.w_distribution().log_prob(w)
        return log_joint - q_z.log_prob(z) - q_w.log_prob(w)

    def predict_cluster(self, x, batch_size: int = 256) -> np.ndarray:
        """The cluster of every example of ``x``: argmax_c p(c | z, w) at the means of
        q(z|x) and q(w|x) (int64, in [0, K)).

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("gmvae", hidden_units=(8,), latent_dim=2, w_dim=2)
            >>> clusters = model.predict_cluster(np.zeros((3, 28, 28, 1)))
            >>> clusters.shape, bool(clusters.max() < 10)
            ((3,), True)
        """
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        x = self._check(x, "x", None)
        clusters = []
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            log_p_c = self.cluster_log_posterior(self.encode(xb).mean(), self.encode_w(xb).mean())
            clusters.append(np.argmax(np.asarray(log_p_c), axis=-1))
        return np.concatenate(clusters).astype(np.int64)
