"""Normalizing-flow posteriors: q(z_T|x) is a diagonal Normal q(z_0|x) pushed through
T invertible steps built as TFP bijectors.

- Inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever and
  Welling, "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS
  2016): each step is ``z <- sigma * z + (1 - sigma) * m``, ``[m, s] = MADE(z, h)``,
  ``sigma = sigmoid(s)``, with a masked autoregressive network (:class:`MADE`, Keras
  layers owned here) conditioned on a context h(x) that the encoder emits.
- Planar flow (Rezende and Mohamed, "Variational Inference with Normalizing Flows",
  ICML 2015): each step is ``z <- z + u_hat * tanh(w^T z + b)`` with per-example
  (amortised) u, w, b from the encoder and the invertibility constraint
  ``w^T u_hat = -1 + softplus(w^T u) > -1``.

Both give log q(z_T|x) = log q(z_0|x) - sum_t log|det dz_t/dz_{t-1}|, computed in the
same forward pass as the sample (``experimental_sample_and_log_prob``): no step is
ever inverted.

Example:
    >>> import numpy as np
    >>> head = PlanarPosterior(latent_dim=2, num_flows=3)
    >>> q = head(np.zeros((4, head.num_params), "float32"))
    >>> z, log_q = q.experimental_sample_and_log_prob(seed=(1, 2))
    >>> tuple(z.shape), tuple(log_q.shape)
    ((4, 2), (4,))
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from tensorflow_probability.python.internal import parameter_properties

from vaezoo._tf import keras, tf, tfb, tfd
from vaezoo.distributions.heads import PosteriorHead
from vaezoo.losses import positive_int

_PACKAGE = "vaezoo"
#: Initial bias of the IAF gate s: sigma_t = sigmoid(s) starts near 1 and each step near
#: the identity (Kingma et al. 2016, section 4, initialise s_t near +1 or +2).
IAF_GATE_BIAS = 2.0
#: Floor of |det| inside the planar log-determinant and of ||w||^2 in u_hat.
_TINY = 1e-12


def made_degrees(latent_dim: int, hidden_units: Sequence[int], reverse: bool) -> list[np.ndarray]:
    """MADE degrees (Germain, Gregor, Murray and Larochelle, ICML 2015): the inputs' order
    (1..D, or D..1 when ``reverse``), then each hidden layer's units cycling through
    0..D-1. A hidden unit of degree k sees the inputs of degree <= k; degree 0 sees only
    the context. Output i (degree d_i) sees hidden units of degree < d_i.

    Example:
        >>> [d.tolist() for d in made_degrees(3, (4,), reverse=True)]
        [[3, 2, 1], [0, 1, 2, 0]]
    """
    inputs = np.arange(latent_dim, 0, -1) if reverse else np.arange(1, latent_dim + 1)
    return [inputs] + [np.arange(units) % latent_dim for units in hidden_units]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MADE(keras.layers.Layer):
    """Masked autoencoder for distribution estimation, conditioned on a context.

    ``call(z, context)`` returns ``(m, s)``, each shaped like ``z``, where output i
    depends on the inputs before i in the layer's order and on the whole context,
    never on z_i or later inputs: the Jacobian of (m, s) in z is strictly triangular.
    The context enters the first hidden layer through an unmasked kernel (Kingma et
    al. 2016, figure 2).

    Args:
        latent_dim: size of z.
        context_units: size of the context h.
        hidden_units: widths of the masked hidden layers.
        reverse: take the inputs in reverse order (consecutive IAF steps alternate).
        activation: hidden activation.

    Example:
        >>> import numpy as np
        >>> made = MADE(3, context_units=2, hidden_units=(8,))
        >>> m, s = made(np.ones((5, 3), "float32"), np.ones((5, 2), "float32"))
        >>> m.shape, s.shape
        (TensorShape([5, 3]), TensorShape([5, 3]))
    """

    def __init__(
        self,
        latent_dim: int,
        context_units: int,
        hidden_units: Sequence[int] = (320, 320),
        reverse: bool = False,
        activation: str = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.context_units = int(context_units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.reverse = bool(reverse)
        self.activation = activation
        self._activation = keras.activations.get(activation)
        degrees = made_degrees(self.latent_dim, self.hidden_units, self.reverse)
        masks = [(later[None, :] >= earlier[:, None]) for earlier, later in pairwise(degrees)]
        masks.append(np.tile(degrees[0][None, :] > degrees[-1][:, None], (1, 2)))  # m and s
        self.masks = [m.astype(np.float32) for m in masks]

    def build(self, input_shape=None):
        widths = [self.latent_dim, *self.hidden_units, 2 * self.latent_dim]
        self.kernels, self.biases = [], []
        for i, (n_in, n_out) in enumerate(pairwise(widths)):
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=(n_in, n_out), initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(n_out,), initializer="zeros"))
        self.biases[-1].assign(np.repeat([0.0, IAF_GATE_BIAS], self.latent_dim).astype(np.float32))
        self.context_kernel = self.add_weight(
            name="context_kernel", shape=(self.context_units, widths[1]), initializer="glorot_uniform"
        )
        self.built = True

    def call(self, z, context):
        dtype = z.dtype
        h, last = z, len(self.kernels) - 1
        for i, (kernel, bias, mask) in enumerate(zip(self.kernels, self.biases, self.masks)):
            h = tf.matmul(h, tf.cast(kernel, dtype) * tf.constant(mask, dtype)) + tf.cast(bias, dtype)
            if i == 0:
                h = h + tf.matmul(context, tf.cast(self.context_kernel, dtype))
            if i < last:
                h = self._activation(h)
        m, s = tf.split(h, 2, axis=-1)
        return m, s

    def compute_output_spec(self, z, context):
        spec = keras.KerasTensor(z.shape, z.dtype)
        return spec, spec

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "context_units": self.context_units,
            "hidden_units": list(self.hidden_units),
            "reverse": self.reverse,
            "activation": self.activation,
        }


class IAFStep(tfb.Bijector):
    """One IAF step: ``z' = sigma * z + (1 - sigma) * m``, ``[m, s] = made(z, context)``,
    ``sigma = sigmoid(s)``; log|det dz'/dz| = sum_i log sigma_i (the Jacobian is
    triangular with diagonal sigma, as m and s of dimension i depend on z_<i only).
    Only the forward direction is implemented.

    Example:
        >>> import numpy as np
        >>> step = IAFStep(MADE(2, context_units=1, hidden_units=(4,)), np.zeros((1, 1), "float32"))
        >>> float(step.forward_log_det_jacobian(np.zeros((1, 2), "float32"), event_ndims=1)[0]) < 0
        True
    """

    def __init__(self, made: MADE, context: tf.Tensor, name: str = "iaf_step") -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as scope:
            self.made = made
            self.context = tf.convert_to_tensor(context)
            super().__init__(forward_min_event_ndims=1, parameters=parameters, name=scope)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {"context": parameter_properties.ParameterProperties(event_ndims=1)}

    def _shift_and_gate(self, z):
        return self.made(z, tf.cast(self.context, z.dtype))

    def _forward(self, z):
        m, s = self._shift_and_gate(z)
        sigma = tf.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m

    def _forward_log_det_jacobian(self, z):
        _, s = self._shift_and_gate(z)
        return tf.reduce_sum(tf.math.log_sigmoid(s), axis=-1)


class PlanarStep(tfb.Bijector):
    """One planar step: ``z' = z + u_hat * tanh(w^T z + b)``, with per-example u_hat, w, b.

    By the matrix determinant lemma, det dz'/dz = 1 + w^T u_hat (1 - tanh^2(w^T z + b)),
    positive when w^T u_hat > -1; its log is floored at log(1e-12). Only the forward
    direction is implemented.

    Example:
        >>> import numpy as np
        >>> z = np.zeros((1, 2), "float32")
        >>> step = PlanarStep(np.ones((1, 2), "float32"), np.ones((1, 2), "float32"), np.zeros(1, "float32"))
        >>> step.forward(z).numpy().tolist(), round(float(step.forward_log_det_jacobian(z, event_ndims=1)[0]), 4)
        ([[0.0, 0.0]], 1.0986)
    """

    def __init__(self, u_hat, w, b, name: str = "planar_step") -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as scope:
            self.u_hat = tf.convert_to_tensor(u_hat)
            self.w = tf.convert_to_tensor(w)
            self.b = tf.convert_to_tensor(b)
            super().__init__(forward_min_event_ndims=1, parameters=parameters, name=scope)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        pp = parameter_properties.ParameterProperties
        return {"u_hat": pp(event_ndims=1), "w": pp(event_ndims=1), "b": pp()}

    def _activation(self, z):
        return tf.tanh(tf.reduce_sum(self.w * z, axis=-1) + self.b)

    def _forward(self, z):
        return z + self.u_hat * self._activation(z)[..., None]

    def _forward_log_det_jacobian(self, z):
        wu = tf.reduce_sum(self.w * self.u_hat, axis=-1)
        return tf.math.log(tf.maximum(1.0 + wu * (1.0 - tf.square(self._activation(z))), _TINY))


class FlowDistribution(tfd.TransformedDistribution):
    """q(z_T|x): a base distribution pushed through a chain of flow steps.

    ``mean()`` is the plug-in point f(E[z_0]), the flow applied to the base mean (the
    point estimate that ``call``, ``reconstruct`` and an export's ``loc`` use); the true
    E[z_T] has no closed form. ``log_prob`` works at samples that the distribution has
    just drawn (TFP's bijector cache) and raises elsewhere, since the steps are never
    inverted; ``experimental_sample_and_log_prob`` is the intended entry point.
    """

    def _mean(self, **kwargs):
        return self.bijector.forward(self.distribution.mean())


class FlowPosterior(PosteriorHead):
    """Base class of the flow heads: the encoder output is ``[mu, raw sigma, flow
    parameters]``; z_0 ~ N(mu, diag(sigma^2)), sigma = softplus(raw) + floor, then
    ``num_flows`` steps (:meth:`steps`).

    ``params`` returns ``loc`` (the flow applied to mu, see
    :class:`FlowDistribution`), ``base_loc`` (mu), ``base_scale`` (sigma) and the flow's
    per-example parameters, which are all an exported encoder emits.
    """

    def __init__(self, latent_dim: int, num_flows: int = 2, **kwargs: Any) -> None:
        super().__init__(latent_dim, **kwargs)
        self.num_flows = positive_int("num_flows", num_flows)

    @property
    def num_params(self) -> int:
        return 2 * self.latent_dim + self.flow_units

    @property
    def flow_units(self) -> int:
        """Width of the encoder output that parameterises the flow."""
        raise NotImplementedError

    def flow_params(self, h: tf.Tensor) -> dict[str, tf.Tensor]:
        """The flow's named per-example parameters from the last ``flow_units`` outputs."""
        raise NotImplementedError

    def steps(self, params: dict[str, tf.Tensor]) -> list[tfb.Bijector]:
        """The flow steps in the order they apply to z_0."""
        raise NotImplementedError

    def bijector(self, params: dict[str, tf.Tensor]) -> tfb.Bijector:
        """z_0 -> z_T: the steps chained (``tfb.Chain`` applies its list right to left)."""
        return tfb.Chain(list(reversed(self.steps(params))))

    def params(self, h):
        h = tf.convert_to_tensor(h)
        d = self.latent_dim
        base_loc = h[..., :d]
        base_scale = tf.nn.softplus(h[..., d : 2 * d]) + self.scale_floor
        flow = self.flow_params(h[..., 2 * d :])
        loc = self.bijector(flow).forward(base_loc)
        return {"loc": loc, "base_loc": base_loc, "base_scale": base_scale, **flow}

    def distribution(self, params):
        base = tfd.MultivariateNormalDiag(loc=params["base_loc"], scale_diag=params["base_scale"])
        return FlowDistribution(base, self.bijector(params))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_flows": self.num_flows}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IAFPosterior(FlowPosterior):
    """Inverse autoregressive flow posterior (Kingma et al., NeurIPS 2016).

    The encoder emits mu, sigma and a context h of ``context_units``; step t is
    ``z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t`` with ``[m_t, s_t] =
    MADE_t(z_{t-1}, h)``, ``sigma_t = sigmoid(s_t)`` (the paper's numerically stable,
    LSTM-like update), and

        log q(z_T|x) = log N(z_0; mu, sigma) - sum_t sum_i log sigma_{t,i}.

    Consecutive steps take the variables in reverse order of each other.

    Args:
        latent_dim: size of z.
        num_flows: T, the number of IAF steps (the paper's depth; 2 on MNIST).
        hidden_units: widths of each MADE's hidden layers (the paper's width: 320).
        context_units: size of the context h(x).
        activation: the MADEs' hidden activation.

    Example:
        >>> import numpy as np
        >>> head = IAFPosterior(3, num_flows=2, hidden_units=(8,), context_units=4)
        >>> head.num_params, sorted(head.param_names)
        (10, ['base_loc', 'base_scale', 'context', 'loc'])
        >>> head(np.zeros((2, 10), "float32")).mean().shape
        TensorShape([2, 3])
    """

    param_names = ("loc", "base_loc", "base_scale", "context")

    def __init__(
        self,
        latent_dim: int,
        num_flows: int = 2,
        hidden_units: Sequence[int] = (320, 320),
        context_units: int = 64,
        activation: str = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__(latent_dim, num_flows, **kwargs)
        units = tuple(int(u) for u in hidden_units)
        if not units or min(units) < 1:
            raise ValueError(f"hidden_units must be one or more positive widths, got {hidden_units!r}")
        self.hidden_units = units
        self.context_units = positive_int("context_units", context_units)
        self.activation = activation

    def build(self, input_shape=None):
        self.mades = [
            MADE(self.latent_dim, self.context_units, self.hidden_units, reverse=t % 2 == 1,
                 activation=self.activation, name=f"made_{t}", dtype=self.dtype_policy)
            for t in range(self.num_flows)
        ]
        for made in self.mades:
            made.build(None)
        self.built = True

    @property
    def flow_units(self) -> int:
        return self.context_units

    def flow_params(self, h):
        return {"context": h}

    def steps(self, params):
        if not self.built:
            self.build(None)
        return [IAFStep(made, params["context"], name=f"iaf_step_{t}") for t, made in enumerate(self.mades)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "context_units": self.context_units,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PlanarPosterior(FlowPosterior):
    """Planar flow posterior (Rezende and Mohamed, ICML 2015) with amortised parameters.

    For each of K steps the encoder emits u, w (size D) and b; step k is
    ``z_k = z_{k-1} + u_hat tanh(w^T z_{k-1} + b)`` with the paper's invertibility
    constraint (appendix A.1)

        u_hat = u + (m(w^T u) - w^T u) w / ||w||^2,  m(a) = -1 + softplus(a),

    so that w^T u_hat = m(w^T u) > -1, and

        log q(z_K|x) = log N(z_0; mu, sigma) - sum_k log|1 + u_hat^T w (1 - tanh^2(w^T z_{k-1} + b))|.

    ``params`` returns ``u_hat``, ``w`` (each ``(batch, K, D)``) and ``b`` (``(batch, K)``).

    Args:
        latent_dim: size of z.
        num_flows: K, the number of planar steps (the paper: 2 to 80).

    Example:
        >>> import numpy as np
        >>> head = PlanarPosterior(2, num_flows=4)
        >>> head.num_params  # mu, sigma, then 4 x (u, w, b)
        24
        >>> p = head.params(np.random.default_rng(0).normal(size=(3, 24)).astype("float32"))
        >>> bool(np.all(np.sum(p["w"] * p["u_hat"], -1) > -1))
        True
    """

    param_names = ("loc", "base_loc", "base_scale", "u_hat", "w", "b")

    @property
    def flow_units(self) -> int:
        return self.num_flows * (2 * self.latent_dim + 1)

    def _split(self, h):
        d = self.latent_dim
        per_step = tf.reshape(h, [-1, self.num_flows, 2 * d + 1])
        return per_step[..., :d], per_step[..., d : 2 * d], per_step[..., 2 * d]

    def flow_params(self, h):
        u, w, b = self._split(h)
        wu = tf.reduce_sum(w * u, axis=-1, keepdims=True)
        m = -1.0 + tf.nn.softplus(wu)
        u_hat = u + (m - wu) * w / tf.maximum(tf.reduce_sum(tf.square(w), axis=-1, keepdims=True), _TINY)
        return {"u_hat": u_hat, "w": w, "b": b}

    def steps(self, params):
        u_hat, w, b = params["u_hat"], params["w"], params["b"]
        return [PlanarStep(u_hat[..., k, :], w[..., k, :], b[..., k], name=f"planar_step_{k}") for k in range(self.num_flows)]


#: Flow heads by name (``FlowVAE(flow=...)``).
FLOWS: dict[str, type[FlowPosterior]] = {"iaf": IAFPosterior, "planar": PlanarPosterior}

