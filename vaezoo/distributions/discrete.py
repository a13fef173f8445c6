"""Discrete latents: the uniform categorical prior and the vector quantiser of VQ-VAE.

Exported sampler graphs take standard-normal noise, never random ops: a uniform draw
of one of K classes is the argmax of K independent standard-normal values (by
symmetry each index is the largest with probability 1/K), so ``from_noise`` maps
noise of shape ``(N, K)`` to N uniform categorical draws.

Example:
    >>> import numpy as np
    >>> prior = UniformCategoricalPrior(num_latents=2, num_classes=3, one_hot=False)
    >>> prior.from_noise(np.array([[[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]]], "float32")).numpy().tolist()
    [[1.0, 0.0]]
"""

from __future__ import annotations

import math
from typing import Any

from vaezoo._tf import keras, tf, tfb, tfd
from vaezoo.distributions.heads import PosteriorHead
from vaezoo.losses import positive_int

_PACKAGE = "vaezoo"


def at_least_two(name: str, value: int) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an integer >= 2 (a number of classes).

    Example:
        >>> at_least_two("num_classes", 1)
        Traceback (most recent call last):
        ...
        ValueError: num_classes must be an integer >= 2, got 1
    """
    if positive_int(name, value) < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    return int(value)


def one_hot_categorical(logits: tf.Tensor) -> tfd.Distribution:
    """N independent one-hot categoricals with ``logits`` of shape ``(..., N, K)``, as one
    distribution over the flattened event of N * K values (float32 one-hot blocks).

    Example:
        >>> import numpy as np
        >>> q = one_hot_categorical(np.zeros((2, 3), "float32"))
        >>> q.event_shape.as_list(), round(float(q.log_prob(np.array([1, 0, 0, 0, 1, 0], "float32"))), 4)
        ([6], -2.1972)
    """
    logits = tf.convert_to_tensor(logits)
    n, k = logits.shape[-2], logits.shape[-1]
    base = tfd.Independent(tfd.OneHotCategorical(logits=logits, dtype=logits.dtype), reinterpreted_batch_ndims=1)
    return tfd.TransformedDistribution(base, tfb.Reshape(event_shape_out=[n * k], event_shape_in=[n, k]))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UniformCategoricalPrior(keras.layers.Layer):
    """p(z): N independent categoricals, each uniform over K classes.

    With ``one_hot=True`` z is the N one-hot vectors flattened (``latent_dim`` = N K,
    the Gumbel-softmax VAE); with ``one_hot=False`` z holds the N class indices as
    float32 (``latent_dim`` = N, VQ-VAE's code indices). Either way log p(z) = -N log K.
    The logits are a non-trainable weight fixed at 0.

    ``from_noise(eps)``, eps standard normal of shape ``(N, K)``: class n is
    argmax_k eps[n, k], a uniform draw.

    Args:
        num_latents: N, the number of categorical variables.
        num_classes: K, the classes of each.
        one_hot: the form of z (see above).

    Example:
        >>> import numpy as np
        >>> prior = UniformCategoricalPrior(2, 4)
        >>> prior.latent_dim, prior.noise_shape
        (8, (2, 4))
        >>> round(float(prior.distribution().log_prob(prior.from_noise(np.ones((1, 2, 4), "float32") * [0, 1, 0, 0]))[0]), 4)
        -2.7726
    """

    def __init__(self, num_latents: int, num_classes: int, one_hot: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_latents = positive_int("num_latents", num_latents)
        self.num_classes = at_least_two("num_classes", num_classes)
        self.one_hot = bool(one_hot)
        self.latent_dim = self.num_latents * (self.num_classes if self.one_hot else 1)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes."""
        return (self.num_latents, self.num_classes)

    def build(self, input_shape=None):
        # A non-trainable variable rather than a constant: XLA would otherwise fold the
        # log-density of a whole batch of samples at compile time, which takes minutes.
        self.logits = self.add_weight(
            name="logits", shape=(self.num_latents, self.num_classes), initializer="zeros", trainable=False
        )
        self.built = True

    def distribution(self) -> tfd.Distribution:
        """The prior as a ``tfd`` distribution with event shape ``[latent_dim]``."""
        if not self.built:
            self.build(None)
        logits = tf.cast(self.logits, self.compute_dtype)
        if self.one_hot:
            return one_hot_categorical(logits)
        return tfd.Independent(tfd.Categorical(logits=logits, dtype=logits.dtype), reinterpreted_batch_ndims=1)

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z for standard-normal noise ``eps`` of shape ``(batch, N, K)``: the argmax of
        each row, one-hot (flattened) or as an index."""
        eps = tf.convert_to_tensor(eps)
        if self.one_hot:
            hot = tf.cast(tf.equal(eps, tf.reduce_max(eps, axis=-1, keepdims=True)), eps.dtype)
            return tf.reshape(hot, [-1, self.latent_dim])
        return tf.cast(tf.argmax(eps, axis=-1), eps.dtype)

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_latents": self.num_latents,
            "num_classes": self.num_classes,
            "one_hot": self.one_hot,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VectorQuantizer(PosteriorHead):
    """VQ-VAE's posterior: nearest-neighbour quantisation of the encoder output in a
    learned codebook (van den Oord, Vinyals and Kavukcuoglu, NeurIPS 2017).

    The encoder emits z_e(x), N vectors of size D; each is replaced by its nearest of
    the K codebook embeddings e_k (squared Euclidean distance). The posterior is the
    point mass q(k|x) = 1 for k = argmin_j ||z_e(x) - e_j||^2 (``tfd.Deterministic`` over
    the code indices, so log q = 0 at its sample).

    ``params`` returns ``loc``, the N code indices (float32 integers: the latent z of
    the model, ``latent_dim`` = N) and ``z_q``, their embeddings flattened to N D
    values. :meth:`embed` maps indices back to embeddings (the decoder's first step).

    Args:
        latent_dim: N, the number of quantised vectors per example.
        num_embeddings: K, the codebook size.
        embedding_dim: D, the size of each embedding.

    Example:
        >>> import numpy as np
        >>> head = VectorQuantizer(2, num_embeddings=8, embedding_dim=3)
        >>> head.build(None)
        >>> p = head.params(np.zeros((4, head.num_params), "float32"))
        >>> p["loc"].shape, p["z_q"].shape
        (TensorShape([4, 2]), TensorShape([4, 6]))
    """

    param_names = ("loc", "z_q")

    def __init__(self, latent_dim: int, num_embeddings: int = 512, embedding_dim: int = 64, **kwargs: Any) -> None:
        super().__init__(latent_dim, **kwargs)
        self.num_embeddings = at_least_two("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)

    @property
    def num_params(self) -> int:
        return self.latent_dim * self.embedding_dim

    def build(self, input_shape=None):
        limit = math.sqrt(3.0 / self.embedding_dim)  # unit-variance entries, as Sonnet's VQ layer
        self.codebook = self.add_weight(
            name="codebook",
            shape=(self.num_embeddings, self.embedding_dim),
            initializer=keras.initializers.RandomUniform(-limit, limit),
        )
        self.built = True

    def nearest(self, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(z_e, z_q, codes)`` for encoder outputs ``h``: z_e and z_q of shape
        ``(batch, N, D)``, codes (int32) of shape ``(batch, N)``. The nearest code
        minimises ||e_k||^2 - 2 z_e . e_k (||z_e||^2 is the same for every k)."""
        h = tf.convert_to_tensor(h)
        codebook = tf.cast(self.codebook, h.dtype)
        z_e = tf.reshape(h, [-1, self.latent_dim, self.embedding_dim])
        distances = tf.reduce_sum(tf.square(codebook), axis=-1) - 2.0 * tf.einsum("bnd,kd->bnk", z_e, codebook)
        codes = tf.argmin(distances, axis=-1, output_type=tf.int32)
        return z_e, tf.gather(codebook, codes), codes

    def embed(self, z: tf.Tensor) -> tf.Tensor:
        """Flattened embeddings ``(batch, N * D)`` of code indices ``z`` (float, rounded
        and clipped to 0..K-1)."""
        z = tf.convert_to_tensor(z)
        codes = tf.cast(tf.clip_by_value(tf.round(z), 0.0, float(self.num_embeddings - 1)), tf.int32)
        z_q = tf.gather(tf.cast(self.codebook, z.dtype), codes)
        return tf.reshape(z_q, [-1, self.latent_dim * self.embedding_dim])

    def params(self, h):
        _, z_q, codes = self.nearest(h)
        return {"loc": tf.cast(codes, z_q.dtype), "z_q": tf.reshape(z_q, [-1, self.num_params])}

    def distribution(self, params):
        return tfd.Independent(tfd.Deterministic(loc=params["loc"]), reinterpreted_batch_ndims=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
