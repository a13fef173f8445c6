"""Posterior and likelihood heads: Keras layers whose call returns a ``tfd`` distribution."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfb, tfd

_PACKAGE = "vaezoo"


class DistributionHead(keras.layers.Layer):
    """Base class: ``call(h) == distribution(params(h))``.

    Subclasses name their parameters in ``param_names`` and implement ``params`` and
    ``distribution``. ``params`` is the part that exported graphs contain.
    """

    param_names: tuple[str, ...] = ()

    def params(self, h: tf.Tensor) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def distribution(self, params: dict[str, tf.Tensor]) -> tfd.Distribution:
        raise NotImplementedError

    def call(self, h: tf.Tensor) -> tfd.Distribution:
        return self.distribution(self.params(h))

    def compute_output_spec(self, h):
        raise NotImplementedError(
            f"{type(self).__name__} returns a tfd.Distribution and cannot be used "
            "inside a functional keras.Model graph; call it from a subclassed model."
        )


# --------------------------------------------------------------------------- posteriors


class PosteriorHead(DistributionHead):
    """A Gaussian posterior q(z|x) over ``latent_dim`` dimensions.

    Args:
        latent_dim: size of z.
        scale_floor: added to every softplus scale so that log q never divides by zero.
    """

    def __init__(self, latent_dim: int, scale_floor: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(latent_dim) != latent_dim or int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if not scale_floor > 0:
            raise ValueError(f"scale_floor must be > 0, got {scale_floor!r}")
        self.latent_dim = int(latent_dim)
        self.scale_floor = float(scale_floor)

    @property
    def num_params(self) -> int:
        """Width of the network output this head consumes."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "scale_floor": self.scale_floor}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiagonalNormal(PosteriorHead):
    """q(z|x) = N(mu, diag(sigma^2)), sigma = softplus(raw) + floor.

    Example:
        >>> import numpy as np
        >>> q = DiagonalNormal(3)(np.zeros((2, 6), "float32"))
        >>> q.event_shape.as_list()
        [3]
    """

    param_names = ("loc", "scale")

    @property
    def num_params(self) -> int:
        return 2 * self.latent_dim

    def params(self, h):
        loc, raw = tf.split(h, 2, axis=-1)
        return {"loc": loc, "scale": tf.nn.softplus(raw) + self.scale_floor}

    def distribution(self, params):
        return tfd.MultivariateNormalDiag(loc=params["loc"], scale_diag=params["scale"])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FullCovarianceNormal(PosteriorHead):
    """q(z|x) = N(mu, L L^T) through a Cholesky factor L; a sample is ``z = mu + L eps``.

    The raw values fill a lower-triangular matrix (``tfb.FillTriangular``, the filling
    that ``tfb.FillScaleTriL`` uses). L = diag(s) U with s = softplus(raw_ii) + floor and
    U unit lower-triangular with U_ij = c tanh(raw_ij / c), c = 5. Scaling each row by
    its own diagonal keeps L^-1 bounded by (1 + c)^(d - 1) whatever the inputs, where
    FillScaleTriL's unbounded off-diagonals over a floored diagonal overflow float32 in
    log q for large raw values; correlations up to 0.98 between neighbours remain.

    Example:
        >>> import numpy as np
        >>> head = FullCovarianceNormal(3)
        >>> head.num_params
        9
        >>> head(np.zeros((2, 9), "float32")).covariance().shape.as_list()
        [2, 3, 3]
    """

    param_names = ("loc", "scale_tril")
    off_diagonal_bound = 5.0

    @property
    def num_params(self) -> int:
        d = self.latent_dim
        return d + d * (d + 1) // 2

    def params(self, h):
        h = tf.convert_to_tensor(h)
        loc, raw = h[..., : self.latent_dim], h[..., self.latent_dim :]
        filled = tfb.FillTriangular().forward(raw)
        scale = tf.nn.softplus(tf.linalg.diag_part(filled)) + self.scale_floor
        c = self.off_diagonal_bound
        unit = tf.linalg.set_diag(c * tf.tanh(tf.linalg.band_part(filled, -1, 0) / c), tf.ones_like(scale))
        return {"loc": loc, "scale_tril": scale[..., :, None] * unit}

    def distribution(self, params):
        return tfd.MultivariateNormalTriL(loc=params["loc"], scale_tril=params["scale_tril"])


POSTERIORS: dict[str, type[PosteriorHead]] = {"diag": DiagonalNormal, "tril": FullCovarianceNormal}


def posterior_head(kind: str, latent_dim: int, **options: Any) -> PosteriorHead:
    """Build a posterior head by name (``"diag"`` or ``"tril"``).

    Example:
        >>> posterior_head("tril", 4).num_params
        14
    """
    if kind not in POSTERIORS:
        raise ValueError(f"unknown posterior {kind!r}; known: {sorted(POSTERIORS)}")
    return POSTERIORS[kind](latent_dim, **options)


# --------------------------------------------------------------------------- likelihoods


class LikelihoodHead(DistributionHead):
    """A factorised likelihood p(x|z) over data of shape ``data_shape``.

    The decoder network emits ``data_shape[:-1] + (data_shape[-1] * params_per_output,)``
    values; the head reshapes them to ``data_shape + (params_per_output,)``.
    """

    params_per_output = 1
    support = "real numbers"

    def __init__(self, data_shape: tuple[int, ...] | list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shape = tuple(int(s) for s in data_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"data_shape must be non-empty positive sizes, got {data_shape!r}")
        self.data_shape = shape

    @property
    def network_output_shape(self) -> tuple[int, ...]:
        """The shape (without batch) that the decoder network must produce."""
        return self.data_shape[:-1] + (self.data_shape[-1] * self.params_per_output,)

    def _split(self, h: tf.Tensor) -> tf.Tensor:
        h = tf.convert_to_tensor(h)
        batch = tf.shape(h)[:1]
        target = tf.concat([batch, list(self.data_shape) + [self.params_per_output]], 0)
        return tf.reshape(h, target)

    def _independent(self, base: tfd.Distribution) -> tfd.Distribution:
        return tfd.Independent(base, reinterpreted_batch_ndims=len(self.data_shape))

    def prepare_targets(self, x: tf.Tensor) -> tf.Tensor:
        """Map data (as fed to the model, in any float dtype) to values in the
        distribution's support, in the head's dtype."""
        return tf.cast(x, self.compute_dtype)

    def mean(self, params: dict[str, tf.Tensor]) -> tf.Tensor:
        """The expected data value, shaped like the data (an image for image data)."""
        raise NotImplementedError

    def check_support(self, x: np.ndarray, name: str = "x") -> None:
        """Raise ``ValueError`` naming the first value of ``x`` outside the support."""
        bad = ~self._in_support(np.asarray(x))
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} has {int(bad.sum())} value(s) outside the support of the "
                f"{type(self).__name__} likelihood ({self.support}); first: "
                f"{name}[{', '.join(map(str, index))}] = {np.asarray(x)[index]!r}. "
                f"{self._support_hint}"
            )

    _support_hint = ""

    def _in_support(self, x: np.ndarray) -> np.ndarray:
        return np.isfinite(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_shape": list(self.data_shape)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Bernoulli(LikelihoodHead):
    """p(x|z) = prod Bernoulli(x_i; sigmoid(logit_i)), for binary data.

    Example:
        >>> import numpy as np
        >>> p = Bernoulli((2, 2, 1))(np.zeros((1, 2, 2, 1), "float32"))
        >>> float(p.log_prob(np.ones((1, 2, 2, 1), "float32"))[0])  # 4 * log(1/2)
        -2.772588...
    """

    param_names = ("logits",)
    support = "exactly 0 or 1"
    _support_hint = (
        "Binarize the data (e.g. datasets.load(..., binarize=True)) or use "
        "likelihood='continuous_bernoulli' for values in [0, 1]."
    )

    def params(self, h):
        return {"logits": self._split(h)[..., 0]}

    def distribution(self, params):
        return self._independent(tfd.Bernoulli(logits=params["logits"], dtype=tf.float32))

    def mean(self, params):
        return tf.sigmoid(params["logits"])

    def _in_support(self, x):
        return (x == 0) | (x == 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContinuousBernoulli(LikelihoodHead):
    """The continuous Bernoulli on [0, 1] (Loaiza-Ganem and Cunningham 2019).

    Example:
        >>> import numpy as np
        >>> p = ContinuousBernoulli((3,))(np.zeros((1, 3), "float32"))
        >>> float(p.log_prob(np.full((1, 3), 0.3, "float32"))[0])  # uniform density at logit 0
        0.0
    """

    param_names = ("logits",)
    support = "the interval [0, 1]"

    def params(self, h):
        return {"logits": self._split(h)[..., 0]}

    def distribution(self, params):
        return self._independent(tfd.ContinuousBernoulli(logits=params["logits"]))

    def mean(self, params):
        return tfd.ContinuousBernoulli(logits=params["logits"]).mean()

    def _in_support(self, x):
        return (x >= 0) & (x <= 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Gaussian(LikelihoodHead):
    """p(x|z) = N(x; mu(z), sigma^2), with sigma chosen by ``sigma``:

    - ``"fixed"``: the constant ``sigma_init``;
    - ``"shared"``: one learned scalar (as in the two-stage VAE's gamma);
    - ``"per_output"``: one learned value per output dimension;
    - ``"predicted"``: the decoder predicts sigma for every output (2 values per output).

    Learned scales are ``softplus(raw) + scale_floor``.

    Example:
        >>> import numpy as np
        >>> head = Gaussian((4,), sigma="shared", sigma_init=0.5)
        >>> head.build((None, 4))
        >>> round(float(head.params(np.zeros((1, 4), "float32"))["scale"][0, 0]), 4)
        0.5
    """

    param_names = ("loc", "scale")
    SIGMAS = ("fixed", "shared", "per_output", "predicted")

    def __init__(
        self,
        data_shape,
        sigma: str = "fixed",
        sigma_init: float = 1.0,
        scale_floor: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_shape, **kwargs)
        if sigma not in self.SIGMAS:
            raise ValueError(f"unknown sigma mode {sigma!r}; known: {list(self.SIGMAS)}")
        if not sigma_init > scale_floor or not scale_floor > 0:
            raise ValueError(
                f"need sigma_init > scale_floor > 0, got sigma_init={sigma_init!r}, "
                f"scale_floor={scale_floor!r}"
            )
        self.sigma = sigma
        self.sigma_init = float(sigma_init)
        self.scale_floor = float(scale_floor)
        self.params_per_output = 2 if sigma == "predicted" else 1
        self.raw_scale = None

    def build(self, input_shape=None):
        shape = {"shared": (), "per_output": self.data_shape}.get(self.sigma)
        if shape is not None:
            target = self.sigma_init - self.scale_floor
            init = target + math.log(-math.expm1(-target))  # softplus^-1, stable for large sigma
            self.raw_scale = self.add_weight(
                name="raw_scale", shape=shape, initializer=keras.initializers.Constant(init)
            )
        self.built = True

    def params(self, h):
        if not self.built:
            self.build(None)
        split = self._split(h)
        loc = split[..., 0]
        if self.sigma == "predicted":
            scale = tf.nn.softplus(split[..., 1]) + self.scale_floor
        elif self.sigma == "fixed":
            scale = tf.fill(tf.shape(loc), tf.constant(self.sigma_init, loc.dtype))
        else:
            raw = tf.cast(self.raw_scale, loc.dtype)
            scale = tf.broadcast_to(tf.nn.softplus(raw) + self.scale_floor, tf.shape(loc))
        return {"loc": loc, "scale": scale}

    def distribution(self, params):
        return self._independent(tfd.Normal(loc=params["loc"], scale=params["scale"]))

    def mean(self, params):
        return params["loc"]

    def get_config(self):
        return {
            **super().get_config(),
            "sigma": self.sigma,
            "sigma_init": self.sigma_init,
            "scale_floor": self.scale_floor,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Categorical(LikelihoodHead):
    """A ``num_categories``-way softmax per output, for data quantised to
    ``{0, 1/(K-1), ..., 1}`` (e.g. 8-bit pixels scaled to [0, 1] with K = 256).

    Example:
        >>> import numpy as np
        >>> head = Categorical((2,), num_categories=4)
        >>> p = head(np.zeros((1, 8), "float32"))
        >>> round(float(p.log_prob(head.prepare_targets(np.array([[0.0, 1.0]], "float32")))[0]), 4)
        -2.7726
    """

    param_names = ("logits",)

    def __init__(self, data_shape, num_categories: int = 256, **kwargs: Any) -> None:
        super().__init__(data_shape, **kwargs)
        if int(num_categories) != num_categories or int(num_categories) < 2:
            raise ValueError(f"num_categories must be >= 2, got {num_categories!r}")
        self.num_categories = int(num_categories)
        self.params_per_output = self.num_categories
        self.support = f"multiples of 1/{self.num_categories - 1} in [0, 1]"

    def params(self, h):
        return {"logits": self._split(h)}

    def distribution(self, params):
        return self._independent(tfd.Categorical(logits=params["logits"]))

    def prepare_targets(self, x):
        return tf.cast(tf.round(x * (self.num_categories - 1)), tf.int32)

    def mean(self, params):
        levels = tf.linspace(0.0, 1.0, self.num_categories)
        return tf.reduce_sum(tf.nn.softmax(params["logits"]) * tf.cast(levels, params["logits"].dtype), -1)

    def _in_support(self, x):
        scaled = x * (self.num_categories - 1)
        return (x >= 0) & (x <= 1) & (np.abs(scaled - np.round(scaled)) < 1e-3)

    def get_config(self):
        return {**super().get_config(), "num_categories": self.num_categories}


from vaezoo.distributions.structured import StructuredGaussian

LIKELIHOODS: dict[str, type[LikelihoodHead]] = {
    "bernoulli": Bernoulli,
    "continuous_bernoulli": ContinuousBernoulli,
    "gaussian": Gaussian,
    "categorical": Categorical,
    "structured_gaussian": StructuredGaussian,
}


def likelihood_head(kind: str, data_shape: tuple[int, ...], **options: Any) -> LikelihoodHead:
    """Build a likelihood head by name: one of ``LIKELIHOODS``.

    Example:
        >>> likelihood_head("gaussian", (28, 28, 1), sigma="predicted").network_output_shape
        (28, 28, 2)
    """
    if kind not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {kind!r}; known: {sorted(LIKELIHOODS)}")
    try:
        return LIKELIHOODS[kind](data_shape, **options)
    except TypeError as err:
        raise ValueError(f"bad options for likelihood {kind!r}: {options!r} ({err})") from None
