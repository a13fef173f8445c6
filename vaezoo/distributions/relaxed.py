"""The Gumbel-softmax (Concrete) relaxation of categorical latents.

Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017;
Maddison, Mnih and Teh, "The Concrete Distribution: A Continuous Relaxation of
Discrete Random Variables", ICLR 2017.

A one-hot categorical sample z = one_hot(argmax_k (log pi_k + g_k)), g_k ~ Gumbel(0, 1),
is relaxed to y = softmax((log pi + g) / tau): differentiable in pi, and one-hot as the
temperature tau -> 0.

Example:
    >>> import numpy as np
    >>> head = GumbelSoftmaxPosterior(latent_dim=6, num_classes=3)
    >>> params = head.params(np.zeros((1, 6), "float32"))
    >>> y = head.relaxed_sample(params, temperature=0.5, seed=(1, 2))
    >>> y.shape, np.allclose(np.asarray(y).reshape(2, 3).sum(-1), 1.0)
    (TensorShape([1, 6]), True)
"""

from __future__ import annotations

import math
from typing import Any

from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions.discrete import at_least_two, one_hot_categorical
from vaezoo.distributions.heads import PosteriorHead


def annealed_temperature(step, initial: float, minimum: float, rate: float, interval: int) -> tf.Tensor:
    """Jang et al.'s schedule tau(t) = max(minimum, initial * exp(-rate * t)), with t the
    training step rounded down to a multiple of ``interval`` (the paper updates tau
    every N steps).

    Example:
        >>> [round(float(annealed_temperature(t, 1.0, 0.5, 1e-3, 100)), 4) for t in (0, 99, 100, 5000)]
        [1.0, 1.0, 0.9048, 0.5]
    """
    step = tf.cast(step, tf.float32)
    t = tf.floor(step / float(interval)) * float(interval)
    return tf.maximum(float(minimum), float(initial) * tf.exp(-float(rate) * t))


@keras.saving.register_keras_serializable(package="vaezoo")
class GumbelSoftmaxPosterior(PosteriorHead):
    """q(z|x) = prod_n Cat(z_n; pi_n(x)): N categorical variables of K classes, z their
    one-hot vectors flattened (``latent_dim`` = N K, the encoder emits N K logits).

    ``params`` returns ``loc``, the class probabilities pi (the mean of z, what
    ``call`` decodes) and ``logits``, log pi, each ``(batch, N K)``. ``distribution``
    is the hard one-hot categorical (``sample`` and ``log_prob`` of one-hot z, used by
    the importance-sampled estimates); training draws from the relaxation
    (:meth:`relaxed_sample`), and :meth:`kl_to_uniform` is the analytic KL.

    Args:
        latent_dim: N K, the width of z.
        num_classes: K, a divisor of ``latent_dim``.

    Example:
        >>> import numpy as np
        >>> head = GumbelSoftmaxPosterior(4, num_classes=2)
        >>> params = head.params(np.array([[0.0, 0.0, 5.0, -5.0]], "float32"))
        >>> np.round(params["loc"], 3).tolist()
        [[0.5, 0.5, 1.0, 0.0]]
        >>> round(float(head.kl_to_uniform(params)[0]), 4)  # 0 + (log 2 - H(0.99995))
        0.6926
    """

    param_names = ("loc", "logits")

    def __init__(self, latent_dim: int, num_classes: int = 10, **kwargs: Any) -> None:
        super().__init__(latent_dim, **kwargs)
        self.num_classes = at_least_two("num_classes", num_classes)
        if self.latent_dim % self.num_classes:
            raise ValueError(
                f"latent_dim must be a multiple of num_classes={self.num_classes}, got latent_dim={self.latent_dim}"
            )
        self.num_latents = self.latent_dim // self.num_classes

    @property
    def num_params(self) -> int:
        return self.latent_dim

    def _blocks(self, flat: tf.Tensor) -> tf.Tensor:
        return tf.reshape(flat, [-1, self.num_latents, self.num_classes])

    def _flat(self, blocks: tf.Tensor) -> tf.Tensor:
        return tf.reshape(blocks, [-1, self.latent_dim])

    def params(self, h):
        logits = tf.nn.log_softmax(self._blocks(tf.convert_to_tensor(h)), axis=-1)
        return {"loc": self._flat(tf.exp(logits)), "logits": self._flat(logits)}

    def distribution(self, params):
        return one_hot_categorical(self._blocks(params["logits"]))

    def relaxed_sample(self, params: dict[str, tf.Tensor], temperature, seed, hard: bool = False) -> tf.Tensor:
        """A Gumbel-softmax sample y = softmax((log pi + g) / temperature), flattened.

        With ``hard`` (the straight-through estimator) the value is one_hot(argmax y) and
        the gradient is that of y: ``y + stop_gradient(one_hot - y)``.
        """
        logits = self._blocks(params["logits"])
        y = tfd.RelaxedOneHotCategorical(temperature, logits=logits).sample(seed=seed)
        if hard:
            hot = tf.one_hot(tf.argmax(y, axis=-1), self.num_classes, dtype=y.dtype)
            y = y + tf.stop_gradient(hot - y)
        return self._flat(y)

    def kl_to_uniform(self, params: dict[str, tf.Tensor]) -> tf.Tensor:
        """KL(q(z|x) || uniform) per example: sum_n sum_k pi_nk log pi_nk + N log K."""
        entropy_terms = tf.reduce_sum(params["loc"] * params["logits"], axis=-1)
        return entropy_terms + self.num_latents * math.log(self.num_classes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}
