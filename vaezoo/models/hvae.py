"""The hierarchical VAE with two stochastic layers and a VampPrior on the top one
(Tomczak and Welling 2018), with its posterior head and its prior."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vaezoo._tf import keras, tf, tfd, tfp
from vaezoo.distributions import DiagonalNormal, PosteriorHead
from vaezoo.distributions.mixture_priors import VampPrior
from vaezoo.losses import positive_int
from vaezoo.models.vamp import VampPriorVAE
from vaezoo.nets import build_encoder


def _conditional_raw(network: keras.Model, inputs: tf.Tensor) -> tf.Tensor:
    """``network`` applied to the last axis of ``inputs`` of any rank (samples, batch, ...)."""
    flat = tf.cast(network(tf.reshape(inputs, [-1, inputs.shape[-1]])), tf.float32)
    return tf.reshape(flat, tf.concat([tf.shape(inputs)[:-1], [flat.shape[-1]]], 0))


@keras.saving.register_keras_serializable(package="vaezoo")
class HierarchicalNormal(PosteriorHead):
    """q(z1, z2 | x) = q(z1 | x, z2) q(z2 | x) over z = [z1, z2], both factors diagonal Normals.

    The encoder's output h holds q(z2|x)'s raw parameters (2 * d2 values) and
    ``features`` values of x; q(z1|x, z2)'s parameters come from ``network``, an MLP
    of [features, z2]. :meth:`top` and :meth:`bottom` are the two factors (training
    samples z2, then z1 given that z2). ``params(h)`` and ``distribution(params)``
    give the Gaussian on the mean path, q(z2|x) and q(z1 | x, z2 = E[z2]), whose mean
    is the model's deterministic code (reconstruction, export).

    Args:
        latent_dim: size of z = [z1, z2].
        top_latent_dim: d2, size of z2 (z1 has latent_dim - d2).
        features: width of the features of x in h.
        hidden_units: hidden widths of the z1 network.
        activation: their activation.
        scale_floor: added to every softplus scale.

    Example:
        >>> import numpy as np
        >>> head = HierarchicalNormal(latent_dim=3, top_latent_dim=1, features=4, hidden_units=(8,))
        >>> h = np.zeros((2, head.num_params), "float32")
        >>> head(h).event_shape.as_list(), head.top(h).event_shape.as_list()
        ([3], [1])
    """

    param_names = ("loc", "scale")

    def __init__(
        self,
        latent_dim: int,
        top_latent_dim: int,
        features: int,
        hidden_units: Sequence[int] = (),
        activation: str = "relu",
        scale_floor: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(latent_dim, scale_floor, **kwargs)
        self.top_latent_dim = positive_int("top_latent_dim", top_latent_dim)
        if self.top_latent_dim >= self.latent_dim:
            raise ValueError(f"top_latent_dim must be < latent_dim = {self.latent_dim}, got {top_latent_dim!r}")
        self.features = positive_int("features", features)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        bottom = self.latent_dim - self.top_latent_dim
        self.top_head = DiagonalNormal(self.top_latent_dim, self.scale_floor, name="top", dtype="float32")
        self.bottom_head = DiagonalNormal(bottom, self.scale_floor, name="bottom", dtype="float32")
        self.network = build_encoder(
            "mlp", (self.features + self.top_latent_dim,), 2 * bottom, self.hidden_units, activation=activation,
            name="q_z1_network",
        )

    def build(self, input_shape=None) -> None:
        for head in (self.top_head, self.bottom_head):
            if not head.built:
                head.build(None)
        self.built = True

    @property
    def num_params(self) -> int:
        return 2 * self.top_latent_dim + self.features

    def top(self, h: tf.Tensor) -> tfd.Distribution:
        """q(z2|x)."""
        return self.top_head(h[..., : 2 * self.top_latent_dim])

    def _bottom_params(self, h: tf.Tensor, z2: tf.Tensor) -> dict[str, tf.Tensor]:
        features = h[..., 2 * self.top_latent_dim :]
        features = tf.broadcast_to(features, tf.concat([tf.shape(z2)[:-1], [self.features]], 0))
        return self.bottom_head.params(_conditional_raw(self.network, tf.concat([features, z2], -1)))

    def bottom(self, h: tf.Tensor, z2: tf.Tensor) -> tfd.Distribution:
        """q(z1 | x, z2) for z2 of shape (..., batch, d2): batch shape (..., batch)."""
        return self.bottom_head.distribution(self._bottom_params(h, z2))

    def params(self, h):
        h = tf.convert_to_tensor(h)
        top = self.top_head.params(h[..., : 2 * self.top_latent_dim])
        bottom = self._bottom_params(h, top["loc"])
        return {name: tf.concat([bottom[name], top[name]], -1) for name in self.param_names}

    def distribution(self, params):
        return tfd.MultivariateNormalDiag(loc=params["loc"], scale_diag=params["scale"])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "top_latent_dim": self.top_latent_dim,
            "features": self.features,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
        }


class _HierarchicalDistribution(tfd.Distribution):
    """p(z1, z2) of a :class:`HierarchicalPrior` as a ``tfd`` distribution over z = [z1, z2]."""

    def __init__(self, prior: HierarchicalPrior) -> None:
        self._prior = prior
        super().__init__(
            dtype=tf.float32,
            reparameterization_type=tfd.FULLY_REPARAMETERIZED,
            validate_args=False,
            allow_nan_stats=True,
            parameters={},
            name="HierarchicalPrior",
        )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {}

    def _event_shape(self):
        return tf.TensorShape([self._prior.latent_dim])

    def _event_shape_tensor(self):
        return tf.constant([self._prior.latent_dim])

    def _batch_shape(self):
        return tf.TensorShape([])

    def _batch_shape_tensor(self):
        return tf.constant([], tf.int32)

    def _log_prob(self, z):
        return self._prior.log_prob(z)

    def _sample_n(self, n, seed=None):
        seed = tfp.random.sanitize_seed(seed)
        return self._prior.from_noise(tf.random.stateless_normal(tf.stack([n, *self._prior.noise_shape]), seed))


@keras.saving.register_keras_serializable(package="vaezoo")
class HierarchicalPrior(keras.layers.Layer):
    """p(z1, z2) = p(z1 | z2) p(z2) over z = [z1, z2]: any prior layer ``top`` for z2
    (the VampPrior in :class:`HVAE`) and a diagonal Normal p(z1|z2) from an MLP of z2.

    Its noise is z1's noise followed by the top prior's noise: ``from_noise`` draws
    z2 = top.from_noise(eps[..., d1:]), then z1 = mu(z2) + sigma(z2) * eps[..., :d1].

    Args:
        top: the prior layer of z2 (or its serialized config).
        bottom_latent_dim: d1, size of z1.
        hidden_units: hidden widths of the p(z1|z2) network.
        activation: their activation.
        scale_floor: added to every softplus scale of p(z1|z2).

    Example:
        >>> import numpy as np
        >>> from vaezoo.distributions import StandardNormalPrior
        >>> prior = HierarchicalPrior(StandardNormalPrior(2), bottom_latent_dim=3, hidden_units=(8,))
        >>> z = prior.from_noise(np.zeros((4, 5), "float32"))
        >>> tuple(z.shape), tuple(prior.distribution().log_prob(z).shape)
        ((4, 5), (4,))
    """

    def __init__(
        self,
        top: dict[str, Any] | keras.layers.Layer,
        bottom_latent_dim: int,
        hidden_units: Sequence[int] = (),
        activation: str = "relu",
        scale_floor: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.top = keras.saving.deserialize_keras_object(top) if isinstance(top, dict) else top
        self.bottom_latent_dim = positive_int("bottom_latent_dim", bottom_latent_dim)
        self.latent_dim = self.bottom_latent_dim + self.top.latent_dim
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.conditional_head = DiagonalNormal(self.bottom_latent_dim, scale_floor, name="conditional", dtype="float32")
        self.network = build_encoder(
            "mlp", (self.top.latent_dim,), self.conditional_head.num_params, self.hidden_units,
            activation=activation, name="p_z1_network",
        )

    def build(self, input_shape=None) -> None:
        for layer in (self.top, self.conditional_head):
            if not layer.built:
                layer.build(None)
        self.built = True

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes."""
        return (self.bottom_latent_dim + self.top.noise_shape[0],)

    def bind(self, encode: Callable[[tf.Tensor], tfd.Distribution]) -> None:
        """Bind the top prior's encoder (a VampPrior needs one)."""
        self.top.bind(encode)

    def conditional(self, z2: tf.Tensor) -> tfd.Distribution:
        """p(z1 | z2) for z2 of shape (..., d2)."""
        return self.conditional_head(_conditional_raw(self.network, tf.convert_to_tensor(z2)))

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z2) + log p(z1 | z2) for z = [z1, z2] of shape (..., latent_dim)."""
        z = tf.convert_to_tensor(z)
        z1, z2 = z[..., : self.bottom_latent_dim], z[..., self.bottom_latent_dim :]
        return self.top.distribution().log_prob(z2) + self.conditional(z2).log_prob(z1)

    def distribution(self) -> tfd.Distribution:
        """The prior as a ``tfd`` distribution with event shape ``[latent_dim]``
        (``log_prob`` and ``sample``)."""
        return _HierarchicalDistribution(self)

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z = [z1, z2] for standard-normal noise ``eps`` of shape (..., noise_shape)."""
        eps = tf.convert_to_tensor(eps, tf.float32)
        z2 = self.top.from_noise(eps[..., self.bottom_latent_dim :])
        p = self.conditional(z2)
        return tf.concat([p.loc + p.scale.matvec(eps[..., : self.bottom_latent_dim]), z2], -1)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "top": keras.saving.serialize_keras_object(self.top),
            "bottom_latent_dim": self.bottom_latent_dim,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "scale_floor": self.conditional_head.scale_floor,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class HVAE(VampPriorVAE):
    """Hierarchical VAE with two stochastic layers and the VampPrior on the top one.

    Tomczak and Welling, "VAE with a VampPrior", AISTATS 2018 (the hierarchical VampPrior VAE).

        p(x, z1, z2) = p(x | z1, z2) p(z1 | z2) p_lambda(z2),  p_lambda(z2) = (1/K) sum_k q(z2 | u_k)
        q(z1, z2 | x) = q(z1 | x, z2) q(z2 | x)

        ELBO = E_q[log p(x|z1,z2) + log p(z1|z2) + log p_lambda(z2) - log q(z1|x,z2) - log q(z2|x)]

    z = [z1, z2] has ``latent_dim`` values, ``top_latent_dim`` of them z2 (the paper:
    40 + 40). The encoder network maps x to q(z2|x) and to features of x, from which
    an MLP of [features, z2] gives q(z1|x,z2) (:class:`HierarchicalNormal`); the
    decoder maps [z1, z2] to p(x|z1,z2); the prior (:class:`HierarchicalPrior`) holds
    the p(z1|z2) MLP and the VampPrior, whose pseudo-inputs go through the encoder to
    q(z2|u_k). Training samples z2 ~ q(z2|x), then z1 ~ q(z1|x,z2), both
    reparameterised. ``encode(x)`` is the Gaussian on the mean path q(z2|x),
    q(z1|x, z2 = E[z2]); its mean is what ``reconstruct`` and the exported encoder use.

    The objective is the importance-weighted bound over both layers, with
    ``num_samples`` = 1 (the paper) the ELBO. ``reconstruction`` = -log p(x|z1,z2),
    ``kl`` = log q(z1,z2|x) - log p(z1,z2) (sampled), ``elbo``, ``iwae_bound`` and
    ``loss`` as in :class:`vaezoo.models.IWAE`.

    Args:
        top_latent_dim: size of z2 (default: half of ``latent_dim``); z1 has the rest.
        **kwargs: the arguments of :class:`VampPriorVAE` (``posterior`` must be ``"diag"``).

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import HVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = HVAE(num_components=5, hidden_units=(8,), latent_dim=4)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'iwae_bound', 'kl', 'loss', 'reconstruction']
        >>> model.sample(3).shape
        (3, 28, 28, 1)
    """

    def __init__(self, top_latent_dim: int | None = None, **kwargs: Any) -> None:
        if kwargs.get("posterior", "diag") != "diag":
            raise ValueError(f"HVAE has diagonal Normal posteriors; posterior must be 'diag', got {kwargs['posterior']!r}")
        self._top_latent_dim = None if top_latent_dim is None else positive_int("top_latent_dim", top_latent_dim)
        super().__init__(**kwargs)

    def _make_posterior(self, posterior: str) -> HierarchicalNormal:
        head = HierarchicalNormal(
            self.latent_dim, self.top_latent_dim, self._features(), self.hidden_units[-1:],
            activation=self.activation, name="posterior", dtype="float32",
        )
        head.build(None)
        return head

    @property
    def top_latent_dim(self) -> int:
        """d2, the size of z2."""
        return self.latent_dim // 2 if self._top_latent_dim is None else self._top_latent_dim

    def _features(self) -> int:
        return self.hidden_units[-1] if self.hidden_units else self.latent_dim

    def encoder_output_units(self) -> int:
        return 2 * self.top_latent_dim + self._features()

    def _make_prior(self, prior):
        if not 1 <= self.top_latent_dim < self.latent_dim:
            raise ValueError(
                f"top_latent_dim must be in [1, latent_dim - 1] = [1, {self.latent_dim - 1}], "
                f"got {self.top_latent_dim} (latent_dim = {self.latent_dim})"
            )
        return HierarchicalPrior(
            self._new_vamp_prior(self.top_latent_dim, name="vamp_prior"),
            self.latent_dim - self.top_latent_dim,
            self.hidden_units,
            activation=self.activation,
            name="prior",
            dtype="float32",
        )

    @property
    def vamp_prior(self) -> VampPrior:
        """The VampPrior on z2."""
        return self.prior.top

    def _code(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.cast(self.encoder(self._as_float(x), training=training), tf.float32)

    def pseudo_input_posterior(self, u: tf.Tensor) -> tfd.Distribution:
        """q(z2|u) for a batch of pseudo-inputs: the VampPrior's components."""
        return self.posterior.top(self._code(u))

    def log_weight_terms(self, x, seed, num_samples, training=False):
        h = self._code(x, training)
        top_seed, bottom_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        q_top = self.posterior.top(h)
        z2 = q_top.sample(num_samples, seed=top_seed)
        q_bottom = self.posterior.bottom(h, z2)
        z1 = q_bottom.sample(seed=bottom_seed)
        z = tf.concat([z1, z2], -1)
        return {
            "log_px": self.decoder_log_prob(x, z, training),
            "log_pz": self.prior.log_prob(z),
            "log_qz": q_top.log_prob(z2) + q_bottom.log_prob(z1),
        }

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "top_latent_dim": self._top_latent_dim}
