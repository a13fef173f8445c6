"""Importance weighted autoencoders: the IWAE of Burda, Grosse and Salakhutdinov (2016)
and the MIWAE of Rainforth et al. (2018), which averages several IWAE bounds."""

from __future__ import annotations

from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.losses import positive_int
from vaezoo.models.vae import VAE


def importance_weighted_bound(log_weights: tf.Tensor, groups: int = 1) -> tf.Tensor:
    """Per-example (1/M) sum_m log (1/K) sum_k w_mk from log weights of shape (M * K, batch),
    sample index m * K + k; M = ``groups``. Computed in log space (logsumexp).

    Example:
        >>> log_w = tf.math.log(tf.constant([[1.0], [3.0], [2.0], [6.0]]))
        >>> [round(float(b), 4) for b in importance_weighted_bound(log_w)]  # log mean(1, 3, 2, 6)
        [1.0986]
        >>> [round(float(b), 4) for b in importance_weighted_bound(log_w, groups=2)]  # (log 2 + log 4) / 2
        [1.0397]
    """
    grouped = tf.reshape(log_weights, tf.concat([[groups, -1], tf.shape(log_weights)[1:]], 0))
    per_group = tf.cast(tf.shape(grouped)[1], log_weights.dtype)
    return tf.reduce_mean(tf.reduce_logsumexp(grouped, axis=1) - tf.math.log(per_group), axis=0)


@keras.saving.register_keras_serializable(package="vaezoo")
class IWAE(VAE):
    """Importance weighted autoencoder: maximises the k-sample importance-weighted bound.

    Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.

        L_k(x) = E_{z_1..z_k ~ q(z|x)} [ log (1/k) sum_i w_i ],
        w_i = p(x, z_i) / q(z_i|x) = p(x|z_i) p(z_i) / q(z_i|x)

    L_1 is the ELBO and L_k rises to log p(x) as k grows. The k samples are
    reparameterised and the log-mean-exp is taken in log space. The metrics are
    ``iwae_bound`` = L_k and ``loss`` = -L_k, and the ELBO of the same k samples:
    ``reconstruction`` = -(1/k) sum_i log p(x|z_i), ``kl`` = (1/k) sum_i
    [log q(z_i|x) - log p(z_i)] (the sampled KL) and ``elbo`` = -(reconstruction + kl)
    <= ``iwae_bound``; nats per example, batch means.

    Args:
        num_samples: k, importance samples per example (the paper trains with 1, 5 and 50).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import IWAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = IWAE(num_samples=5, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'iwae_bound', 'kl', 'loss', 'reconstruction']
    """

    metric_names = VAE.metric_names + ("iwae_bound",)

    def __init__(self, num_samples: int = 5, **kwargs: Any) -> None:
        num_samples = positive_int("num_samples", num_samples)
        super().__init__(**kwargs)
        self.num_samples = num_samples

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_samples": self.num_samples}

    @property
    def sample_groups(self) -> tuple[int, int]:
        """(M, K): the objective averages M bounds of K samples each (IWAE: M = 1, K = k)."""
        return 1, self.num_samples

    def decoder_log_prob(self, x: tf.Tensor, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        """log p(x|z_s) of shape (S, batch) for latents ``z`` of shape (S, batch, latent)."""
        samples, batch = tf.shape(z)[0], tf.shape(x)[0]
        params = self.decoder_params(tf.reshape(z, [-1, z.shape[-1]]), training)
        targets = self.likelihood.prepare_targets(x)
        tiled = tf.tile(targets, tf.concat([[samples], tf.ones([len(self.data_shape)], tf.int32)], 0))  # s * B + b
        return tf.reshape(self.likelihood.distribution(params).log_prob(tiled), [samples, batch])

    def log_weight_terms(
        self, x: tf.Tensor, seed: tf.Tensor, num_samples: int, training: bool = False
    ) -> dict[str, tf.Tensor]:
        """``log_px`` = log p(x|z_s), ``log_pz`` = log p(z_s) and ``log_qz`` = log q(z_s|x)
        for ``num_samples`` reparameterised draws z_s ~ q(z|x); each of shape (S, batch)."""
        q = self.encode(x, training)
        z = q.sample(num_samples, seed=seed)
        return {
            "log_px": self.decoder_log_prob(x, z, training),
            "log_pz": self.prior.distribution().log_prob(z),
            "log_qz": q.log_prob(z),
        }

    def _log_weights(self, x: tf.Tensor, seed: tf.Tensor, num_samples: int) -> tf.Tensor:
        terms = self.log_weight_terms(x, seed, num_samples)
        return terms["log_px"] + terms["log_pz"] - terms["log_qz"]

    def objective(self, x, training=False):
        groups, per_group = self.sample_groups
        terms = self.log_weight_terms(x, self._next_seed(), groups * per_group, training)
        log_weights = terms["log_px"] + terms["log_pz"] - terms["log_qz"]
        bound = tf.reduce_mean(importance_weighted_bound(log_weights, groups))
        reconstruction = -tf.reduce_mean(terms["log_px"])
        kl = tf.reduce_mean(terms["log_qz"] - terms["log_pz"])
        return {
            "loss": -bound,
            "elbo": -(reconstruction + kl),
            "reconstruction": reconstruction,
            "kl": kl,
            "iwae_bound": bound,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class MIWAE(IWAE):
    """MIWAE: the average of M importance-weighted bounds of K samples each.

    Rainforth, Kosiorek, Le, Maddison, Igl, Wood and Teh, "Tighter Variational Bounds
    are Not Necessarily Better", ICML 2018.

        L_{M,K}(x) = (1/M) sum_m E[ log (1/K) sum_k w_mk ],  w_mk = p(x, z_mk) / q(z_mk|x)

    A tighter bound (larger K) gives the decoder a better gradient but the encoder a
    worse signal-to-noise ratio; for a fixed budget M * K, averaging M bounds trades one
    against the other. M = 1 is the IWAE with k = K, K = 1 the ELBO averaged over M
    samples. ``iwae_bound`` is L_{M,K}; ``loss`` = -L_{M,K}; ``elbo``, ``reconstruction``
    and ``kl`` are the ELBO terms averaged over the M * K samples, as in :class:`IWAE`.

    Args:
        M: bounds averaged per example (the paper's M), >= 1.
        K: importance samples per bound (the paper's K), >= 1.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import MIWAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = MIWAE(M=2, K=4, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'iwae_bound', 'kl', 'loss', 'reconstruction']
    """

    def __init__(self, M: int = 8, K: int = 8, **kwargs: Any) -> None:
        M = positive_int("M", M)
        super().__init__(num_samples=positive_int("K", K), **kwargs)
        self.M = M

    @property
    def K(self) -> int:
        """Importance samples per bound."""
        return self.num_samples

    @property
    def sample_groups(self) -> tuple[int, int]:
        return self.M, self.K

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["num_samples"]
        return {**config, "M": self.M, "K": self.K}

