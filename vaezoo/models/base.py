"""The machinery every vaezoo model shares: networks, heads and prior from a config,
Keras ``train_step``/``test_step``, metrics, input checks and importance-sampled
likelihood estimates. A variant subclasses :class:`BaseVAE` (usually through
:class:`vaezoo.models.vae.VAE`) and writes its objective in ``objective``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaezoo import validation
from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions import StandardNormalPrior, likelihood_head, posterior_head
from vaezoo.nets import build_decoder, build_encoder

# Floats that one chunk of the importance-sampling estimate may hold at once
# (2**26 float32 = 256 MiB per tensor; a handful of tensors stay well under 4 GB).
_ESTIMATE_BUDGET = 2**26


class BaseVAE(keras.Model):
    """Encoder network + posterior head, prior, decoder network + likelihood head.

    Args:
        data_shape: shape of one example, e.g. ``(28, 28, 1)``.
        latent_dim: size of z.
        network: ``"mlp"`` or ``"conv"`` (see :mod:`vaezoo.nets`).
        hidden_units: dense layer widths of the encoder (reversed in the decoder).
        conv_filters: filters of the stride-2 convolutions (``network="conv"``).
        activation: hidden activation.
        posterior: ``"diag"`` (diagonal Normal) or ``"tril"`` (full covariance).
        likelihood: a name from ``vaezoo.distributions.LIKELIHOODS``.
        likelihood_options: keyword arguments of the likelihood head.
        prior: a serialized Keras prior layer, or None for N(0, I).
        seed: seed of the model's noise (training and estimates are reproducible).
    """

    #: Names of the scalars that ``objective`` returns; each becomes a metric.
    metric_names: tuple[str, ...] = ("loss",)

    def __init__(
        self,
        data_shape: Sequence[int] = (28, 28, 1),
        latent_dim: int = 32,
        network: str = "mlp",
        hidden_units: Sequence[int] = (512, 256),
        conv_filters: Sequence[int] = (32, 64),
        activation: str = "relu",
        posterior: str = "diag",
        likelihood: str = "bernoulli",
        likelihood_options: dict[str, Any] | None = None,
        prior: dict[str, Any] | keras.layers.Layer | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.latent_dim = int(latent_dim)
        self.network = network
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.activation = activation
        self.posterior_name = posterior
        self.likelihood_name = likelihood
        self.likelihood_options = dict(likelihood_options or {})
        self.seed = int(seed)

        self.posterior = posterior_head(posterior, self.latent_dim, name="posterior")
        self.likelihood = likelihood_head(
            likelihood, self.data_shape, name="likelihood", **self.likelihood_options
        )
        self.prior = self._make_prior(prior)
        nets = dict(hidden_units=self.hidden_units, conv_filters=self.conv_filters, activation=activation)
        self.encoder = build_encoder(
            network, self.data_shape, self.encoder_output_units(), name="encoder", **nets
        )
        self.decoder = build_decoder(
            network, self.decoder_input_units(), self.likelihood.network_output_shape, name="decoder", **nets
        )
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self._estimators: dict[int, Any] = {}
        self.build((None,) + self.data_shape)

    # ------------------------------------------------------------------ construction

    def _make_prior(self, prior):
        if prior is None:
            return StandardNormalPrior(self.latent_dim, name="prior")
        if isinstance(prior, dict):
            prior = keras.saving.deserialize_keras_object(prior)
        if getattr(prior, "latent_dim", self.latent_dim) != self.latent_dim:
            raise ValueError(f"prior has latent_dim {prior.latent_dim}, the model {self.latent_dim}")
        return prior

    def encoder_output_units(self) -> int:
        """Width of the encoder's output: the posterior head's parameters."""
        return self.posterior.num_params

    def decoder_input_units(self) -> int:
        """Width of the decoder's input: z (conditional models add the label)."""
        return self.latent_dim

    def build(self, input_shape=None):
        for head in (self.posterior, self.likelihood, self.prior):
            if not head.built:
                head.build(None)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "data_shape": list(self.data_shape),
            "latent_dim": self.latent_dim,
            "network": self.network,
            "hidden_units": list(self.hidden_units),
            "conv_filters": list(self.conv_filters),
            "activation": self.activation,
            "posterior": self.posterior_name,
            "likelihood": self.likelihood_name,
            "likelihood_options": dict(self.likelihood_options),
            "prior": keras.saving.serialize_keras_object(self.prior),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseVAE:
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    # ------------------------------------------------------------------ the model

    def _next_seed(self) -> tf.Tensor:
        return tf.cast(self.seed_generator.next(), tf.int32)

    def encode(self, x, training: bool = False) -> tfd.Distribution:
        """q(z|x) for a batch ``x`` of shape ``(batch,) + data_shape``."""
        h = self.encoder(self._as_float(x), training=training)
        return self.posterior(tf.cast(h, tf.float32))

    def decoder_params(self, z, training: bool = False) -> dict[str, tf.Tensor]:
        """The likelihood's parameter tensors for latents ``z`` of shape (batch, latent_dim)."""
        h = self.decoder(z, training=training)
        return self.likelihood.params(tf.cast(h, tf.float32))

    def decode(self, z, training: bool = False) -> tfd.Distribution:
        """p(x|z) for latents ``z`` of shape (batch, latent_dim)."""
        return self.likelihood.distribution(self.decoder_params(self._as_float(z), training))

    def kl_divergence(self, q: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
        """KL(q(z|x) || p(z)) per example: analytic where TFP has it, else the
        one-sample estimate log q(z|x) - log p(z) at the reparameterised ``z``."""
        prior = self.prior.distribution()
        try:
            return tfd.kl_divergence(q, prior)
        except NotImplementedError:
            return q.log_prob(z) - prior.log_prob(z)

    def objective(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Return the batch's scalar terms; ``"loss"`` is minimised. Each key of
        ``metric_names`` must be present."""
        raise NotImplementedError

    def call(self, x, training: bool = False):
        """The deterministic reconstruction: the likelihood mean at the posterior mean."""
        return self.likelihood.mean(self.decoder_params(self.encode(x, training).mean(), training))

    # ------------------------------------------------------------------ Keras training

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _unpack(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._as_float(x)

    def _as_float(self, x):
        return tf.cast(x, self.compute_dtype) if not isinstance(x, tf.Tensor) or x.dtype != self.compute_dtype else x

    def _log(self, terms: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _with_regularisers(self, terms):
        if self.losses:
            terms = {**terms, "loss": terms["loss"] + tf.add_n([tf.cast(l, tf.float32) for l in self.losses])}
        return terms

    def train_step(self, data):
        x = self._unpack(data)
        with tf.GradientTape() as tape:
            terms = self._with_regularisers(self.objective(x, training=True))
            scaled = self.optimizer.scale_loss(terms["loss"])
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._log(terms)

    def test_step(self, data):
        return self._log(self._with_regularisers(self.objective(self._unpack(data), training=False)))

    def predict_step(self, data):
        return self(self._unpack(data), training=False)

    # ------------------------------------------------------------------ input checks

    def check_data(self, x, name: str = "x") -> np.ndarray:
        """Validate a numpy batch: dtype, shape, NaN/Inf and the likelihood's support.

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.check_data(np.full((1, 28, 28, 1), 0.5))
            Traceback (most recent call last):
            ...
            ValueError: x has 784 value(s) outside the support of the Bernoulli likelihood ...
        """
        return validation.check_array(x, self.data_shape, name, self.likelihood.check_support)

    def _checked(self, data, name: str):
        """Check ``data`` (array, tuple whose first item is the input, or tf.data)."""
        if data is None:
            return None
        if isinstance(data, tf.data.Dataset):
            return self._checked_dataset(data, name)
        if isinstance(data, (tuple, list)):
            return type(data)([self._checked(data[0], name), *data[1:]])
        if isinstance(data, dict):
            raise TypeError(f"{name} is a dict; {type(self).__name__} takes an array of examples")
        return self.check_data(data, name)

    def _checked_dataset(self, dataset: tf.data.Dataset, name: str) -> tf.data.Dataset:
        spec = dataset.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        if not isinstance(first, tf.TensorSpec):
            raise TypeError(f"{name} yields {first!r}; expected tensors of shape (batch,) + {self.data_shape}")
        if not first.shape[1:].is_compatible_with(self.data_shape):
            raise ValueError(
                f"{name} yields batches of shape {first.shape}; the model expects (batch, "
                + ", ".join(map(str, self.data_shape)) + ")"
            )

        def check(x):
            checked = tf.numpy_function(lambda a: self.check_data(a, name), [x], tf.float32, stateful=False)
            return tf.ensure_shape(checked, first.shape)

        if isinstance(spec, tuple):
            return dataset.map(lambda x, *rest: (check(x), *rest))
        return dataset.map(check)

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        return super().fit(
            self._checked(x, "x"), y, validation_data=self._checked(validation_data, "validation_data"), **kwargs
        )

    def evaluate(self, x=None, y=None, **kwargs):
        return super().evaluate(self._checked(x, "x"), y, **kwargs)

    # ------------------------------------------------------------------ estimates

    def _log_weights(self, x: tf.Tensor, seed: tf.Tensor, num_samples: int) -> tf.Tensor:
        """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x), z_s ~ q(z|x); shape (S, B)."""
        q = self.encode(x)
        z = q.sample(num_samples, seed=seed)
        batch = tf.shape(x)[0]
        flat_z = tf.reshape(z, [-1, self.latent_dim])
        params = self.decoder_params(flat_z)
        targets = self.likelihood.prepare_targets(x)
        tiled = tf.tile(targets, [num_samples] + [1] * len(self.data_shape))  # index s * B + b, as flat_z
        log_px = tf.reshape(self.likelihood.distribution(params).log_prob(tiled), [num_samples, batch])
        return log_px + self.prior.distribution().log_prob(z) - q.log_prob(z)

    def _estimator(self, num_samples: int):
        if num_samples not in self._estimators:
            self._estimators[num_samples] = tf.function(
                lambda x, seed: self._log_weights(x, seed, num_samples), jit_compile=True, reduce_retracing=True
            )
        return self._estimators[num_samples]

    def _chunk_size(self, batch_size: int) -> int:
        per_sample = 4 * math.prod(self.likelihood.network_output_shape) + 2 * sum(self.hidden_units) + 4 * self.latent_dim
        return max(1, _ESTIMATE_BUDGET // (batch_size * per_sample))

    def importance_estimates(
        self, x, num_samples: int, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-example (ELBO estimate, log p(x) estimate) from ``num_samples`` samples of q.

        The log-likelihood estimate is the importance-weighted bound of Burda et al.
        (2016), log (1/k) sum_s w_s, computed in log space; samples are drawn in chunks
        so memory stays bounded for any k. Noise is stateless: same seed, same numbers.
        """
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples!r}")
        x = self.check_data(x)
        chunk = min(int(num_samples), self._chunk_size(batch_size))
        elbo, log_px = [], []
        progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="example")
        for b, start in enumerate(range(0, len(x), batch_size)):
            xb = tf.constant(x[start : start + batch_size])
            total = tf.zeros([len(xb)], tf.float64)
            lse = tf.fill([len(xb)], tf.constant(-np.inf, tf.float64))
            for c, begin in enumerate(range(0, num_samples, chunk)):
                n = min(chunk, num_samples - begin)
                seed_t = tf.constant([seed, b * 1_000_003 + c], tf.int32)
                logw = tf.cast(self._estimator(n)(xb, seed_t), tf.float64)
                total += tf.reduce_sum(logw, 0)
                lse = tf.experimental.numpy.logaddexp(lse, tf.reduce_logsumexp(logw, 0))
            elbo.append((total / num_samples).numpy())
            log_px.append((lse - math.log(num_samples)).numpy())
            progress.add(len(xb))
        return np.concatenate(elbo), np.concatenate(log_px)

    def elbo(self, x, num_samples: int = 1, batch_size: int = 100, seed: int = 0) -> np.ndarray:
        """Per-example ELBO (nats), a Monte Carlo average over ``num_samples`` draws of q.

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.elbo(np.zeros((3, 28, 28, 1))).shape
            (3,)
        """
        return self.importance_estimates(x, num_samples, batch_size, seed)[0]

    def log_likelihood(
        self, x, num_samples: int = 5000, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> np.ndarray:
        """Per-example importance-sampled estimate of log p(x) (nats; Burda et al. 2016).

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.log_likelihood(np.zeros((2, 28, 28, 1)), num_samples=10).shape
            (2,)
        """
        return self.importance_estimates(x, num_samples, batch_size, seed, verbose)[1]

    def sample(self, n: int, seed: int = 0, mean: bool = True) -> np.ndarray:
        """Draw ``n`` examples from the model: z ~ p(z), then the likelihood's mean
        (``mean=True``) or a sample of p(x|z).

        Example:
            >>> import vaezoo
            >>> vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2).sample(4).shape
            (4, 28, 28, 1)
        """
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        eps = tf.random.stateless_normal((int(n),) + self.prior.noise_shape, seed=[seed, 0])
        params = self.decoder_params(self.prior.from_noise(eps))
        if mean:
            return self.likelihood.mean(params).numpy()
        return self.likelihood.distribution(params).sample(seed=tf.constant([seed, 1])).numpy()

    def reconstruct(self, x, batch_size: int = 256) -> np.ndarray:
        """The deterministic reconstruction of every example of ``x`` (see ``call``).

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.reconstruct(np.zeros((3, 28, 28, 1))).shape
            (3, 28, 28, 1)
        """
        x = validation.check_array(x, self.data_shape)
        return np.concatenate([np.asarray(self(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])
