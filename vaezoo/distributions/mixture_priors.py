"""Mixture priors p(z) = sum_k pi_k p_k(z): the VampPrior of Tomczak and Welling (2018)
and a learnable mixture of Gaussians.

Like every prior, each is a Keras layer with ``distribution()``, ``noise_shape`` and
``from_noise(eps)``. Their noise has one coordinate more than z: ``eps[..., :latent_dim]``
moves a point within a component and the last coordinate ``eps[..., -1]`` picks the
component k with F_(k-1) <= Phi(eps_last) < F_k, F the cumulative mixture weights
(:func:`component_index`). The map is deterministic, so exported sampler graphs hold
no randomness, and ``eps ~ N(0, I)`` gives an exact sample of the mixture.

Example:
    >>> import numpy as np
    >>> prior = MixtureOfGaussiansPrior(latent_dim=2, num_components=3)
    >>> prior.noise_shape
    (3,)
    >>> tuple(prior.from_noise(np.zeros((4, 3), "float32")).shape)
    (4, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import non_negative, positive_int


def component_index(selector: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """The component (int32) that standard-normal noise ``selector`` picks from a mixture
    with weights softmax(``logits``): the k with F_(k-1) <= Phi(selector) < F_k.

    The comparison is made in noise space, against the thresholds Phi^-1(F_k), which
    depend on the weights only: exported graphs fold them to constants and compare,
    needing no normal CDF (TFLite has none).

    Example:
        >>> [int(i) for i in component_index(tf.constant([-1.0, 0.1, 2.0]), tf.zeros([2]))]
        [0, 1, 1]
    """
    selector = tf.convert_to_tensor(selector, tf.float32)
    cumulative = tf.math.cumsum(tf.nn.softmax(tf.cast(logits, tf.float32)))
    thresholds = tf.math.ndtri(tf.clip_by_value(cumulative[:-1], 0.0, 1.0))
    return tf.reduce_sum(tf.cast(selector[..., None] >= thresholds, tf.int32), axis=-1)


class _MixturePrior(keras.layers.Layer):
    """What both mixture priors share: latent size, component count, the noise layout."""

    def __init__(self, latent_dim: int, num_components: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.num_components = positive_int("num_components", num_components)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes: z's noise, then
        the component selector."""
        return (self.latent_dim + 1,)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "num_components": self.num_components}


@keras.saving.register_keras_serializable(package="vaezoo")
class MixtureOfGaussiansPrior(_MixturePrior):
    """p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)) with learnable means, scales and weights.

    pi = softmax(logits), sigma_k = ``scale_floor`` + exp(log_sigma_k): the floor keeps
    log p(z) finite however far a scale is pushed down. The means start at
    N(0, ``mean_init_stddev``^2) draws, the scales at 1 + floor, the weights uniform.

    Args:
        latent_dim: size of z.
        num_components: K, the number of Gaussians.
        scale_floor: smallest standard deviation of a component, > 0.
        mean_init_stddev: spread of the initial means, >= 0.

    Example:
        >>> prior = MixtureOfGaussiansPrior(latent_dim=2, num_components=4)
        >>> prior.distribution().log_prob(np.zeros((3, 2), "float32")).shape
        TensorShape([3])
    """

    def __init__(
        self,
        latent_dim: int,
        num_components: int = 500,
        scale_floor: float = 1e-3,
        mean_init_stddev: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(latent_dim, num_components, **kwargs)
        if not non_negative("scale_floor", scale_floor) > 0:
            raise ValueError(f"scale_floor must be > 0, got {scale_floor!r}")
        self.scale_floor = float(scale_floor)
        self.mean_init_stddev = non_negative("mean_init_stddev", mean_init_stddev)
        shape = (self.num_components, self.latent_dim)
        self.means = self.add_weight(
            shape=shape, initializer=keras.initializers.RandomNormal(stddev=self.mean_init_stddev), name="means"
        )
        self.log_scales = self.add_weight(shape=shape, initializer="zeros", name="log_scales")
        self.logits = self.add_weight(shape=(self.num_components,), initializer="zeros", name="logits")
        self.built = True  # the weights' shapes do not depend on any input

    def scales(self) -> tf.Tensor:
        """sigma, shape (K, latent_dim)."""
        return self.scale_floor + tf.exp(tf.convert_to_tensor(self.log_scales))

    def distribution(self) -> tfd.Distribution:
        """The mixture as a ``tfd`` distribution with event shape ``[latent_dim]``."""
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=tf.convert_to_tensor(self.logits)),
            tfd.MultivariateNormalDiag(loc=tf.convert_to_tensor(self.means), scale_diag=self.scales()),
        )

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z = mu_k + sigma_k * eps[..., :latent_dim], k picked by eps[..., -1]."""
        eps = tf.convert_to_tensor(eps, tf.float32)
        index = component_index(eps[..., -1], self.logits)
        loc = tf.gather(tf.convert_to_tensor(self.means), index)
        return loc + tf.gather(self.scales(), index) * eps[..., : self.latent_dim]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale_floor": self.scale_floor, "mean_init_stddev": self.mean_init_stddev}


@keras.saving.register_keras_serializable(package="vaezoo")
class VampPrior(_MixturePrior):
    """The variational mixture of posteriors prior, p(z) = (1/K) sum_k q(z | u_k).

    Tomczak and Welling, "VAE with a VampPrior", AISTATS 2018.

    The K pseudo-inputs u_k are learnable, data-shaped weights, initialised as the
    paper does at N(``pseudo_input_mean``, ``pseudo_input_stddev``^2) draws (0.05 and
    0.01 for MNIST in the authors' code), or from data with :meth:`initialize_from_data` (the paper's other
    option). With ``pseudo_input_range`` = (lo, hi) the encoder sees them clipped to
    that range (the paper's hard-tanh), so they stay in the data's range.

    The prior needs the model's encoder: ``bind(encode)`` gives it the function that
    maps a batch of inputs to q(z|.) (a ``tfd.MultivariateNormalLinearOperator``, as the
    posterior heads make); :class:`vaezoo.models.VampPriorVAE` binds its own ``encode``.
    The encoder is not part of this layer: its weights stay the model's.

    Args:
        latent_dim: size of z.
        data_shape: shape of one pseudo-input (the data's shape).
        num_components: K, the number of pseudo-inputs (the paper uses 500 for MNIST).
        pseudo_input_mean: mean of the initial pseudo-inputs.
        pseudo_input_stddev: standard deviation of the initial pseudo-inputs, >= 0.
        pseudo_input_range: (lo, hi) that the pseudo-inputs are clipped to, or None.

    Example:
        >>> prior = VampPrior(latent_dim=2, data_shape=(3,), num_components=4)
        >>> prior.bind(lambda u: tfd.MultivariateNormalDiag(u[:, :2], tf.ones_like(u[:, :2])))
        >>> prior.distribution().log_prob(np.zeros((5, 2), "float32")).shape
        TensorShape([5])
        >>> tuple(prior.from_noise(np.zeros((5, 3), "float32")).shape)
        (5, 2)
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        num_components: int = 500,
        pseudo_input_mean: float = 0.05,
        pseudo_input_stddev: float = 0.01,
        pseudo_input_range: Sequence[float] | None = (0.0, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(latent_dim, num_components, **kwargs)
        self.data_shape = tuple(positive_int("data_shape entries", s) for s in data_shape)
        if not np.isfinite(pseudo_input_mean):
            raise ValueError(f"pseudo_input_mean must be finite, got {pseudo_input_mean!r}")
        self.pseudo_input_mean = float(pseudo_input_mean)
        self.pseudo_input_stddev = non_negative("pseudo_input_stddev", pseudo_input_stddev)
        if pseudo_input_range is not None:
            low, high = (float(v) for v in pseudo_input_range)
            if not low < high:
                raise ValueError(f"pseudo_input_range must be (low, high) with low < high, got {pseudo_input_range!r}")
            pseudo_input_range = (low, high)
        self.pseudo_input_range = pseudo_input_range
        self._encode: Callable[[tf.Tensor], tfd.Distribution] | None = None
        self.pseudo_inputs = self.add_weight(
            shape=(self.num_components,) + self.data_shape,
            initializer=keras.initializers.RandomNormal(self.pseudo_input_mean, self.pseudo_input_stddev),
            name="pseudo_inputs",
        )
        self.built = True  # the weights' shapes do not depend on any input

    def bind(self, encode: Callable[[tf.Tensor], tfd.Distribution]) -> None:
        """Use ``encode`` (a batch of inputs -> q(z|.)) for the mixture's components."""
        self._encode = encode

    def pseudo_input_values(self) -> tf.Tensor:
        """The pseudo-inputs as the encoder sees them (clipped to ``pseudo_input_range``)."""
        u = tf.convert_to_tensor(self.pseudo_inputs)
        if self.pseudo_input_range is None:
            return u
        return tf.clip_by_value(u, *self.pseudo_input_range)

    def initialize_from_data(self, x: np.ndarray, seed: int = 0) -> None:
        """Set the pseudo-inputs to K examples of ``x`` drawn at random (with replacement
        when ``x`` has fewer than K)."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.data_shape or len(x) == 0:
            raise ValueError(f"x must have shape (n,) + {self.data_shape} with n >= 1, got {x.shape}")
        rng = np.random.default_rng(seed)
        self.pseudo_inputs.assign(x[rng.choice(len(x), self.num_components, replace=len(x) < self.num_components)])

    def _posterior(self, u: tf.Tensor) -> tfd.Distribution:
        if self._encode is None:
            raise RuntimeError(
                f"VampPrior '{self.name}' has no encoder: call bind(encode) first (VampPriorVAE does)"
            )
        q = self._encode(u)
        if not isinstance(q, tfd.MultivariateNormalLinearOperator):
            raise TypeError(f"the bound encoder must return a multivariate Normal, got {type(q).__name__}")
        return q

    def components(self) -> tfd.Distribution:
        """q(z | u_k) for every pseudo-input: batch shape [K], event shape [latent_dim]."""
        return self._posterior(self.pseudo_input_values())

    def distribution(self) -> tfd.Distribution:
        """The mixture as a ``tfd`` distribution with event shape ``[latent_dim]``."""
        return tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros([self.num_components])), self.components())

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z = mu(u_k) + L(u_k) eps[..., :latent_dim] with k picked by eps[..., -1]:
        only the picked pseudo-inputs go through the encoder."""
        eps = tf.convert_to_tensor(eps, tf.float32)
        index = component_index(eps[..., -1], tf.zeros([self.num_components]))
        q = self._posterior(tf.gather(self.pseudo_input_values(), index))
        return q.loc + q.scale.matvec(eps[..., : self.latent_dim])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "data_shape": list(self.data_shape),
            "pseudo_input_mean": self.pseudo_input_mean,
            "pseudo_input_stddev": self.pseudo_input_stddev,
            "pseudo_input_range": None if self.pseudo_input_range is None else list(self.pseudo_input_range),
        }
