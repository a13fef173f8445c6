"""The conditional VAE of Sohn, Lee and Yan (2015): encoder q(z|x, y) and decoder
p(x|z, y), both given a label y (integer class ids or any float vector)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaezoo import validation
from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.vae import VAE


def prior_draws(model, n: tf.Tensor) -> tf.Tensor:
    """``n`` draws of ``model``'s prior p(z), z = prior.from_noise(eps), with fresh
    noise from ``model._next_seed()`` (for objectives that decode prior samples)."""
    shape = tf.concat([[n], tf.constant(model.prior.noise_shape, tf.int32)], 0)
    return model.prior.from_noise(tf.random.stateless_normal(shape, seed=model._next_seed()))


class LabelInputs:
    """The network widths of a model that reads a label y next to x and z (a mixin
    before :class:`vaezoo.models.VAE`; the model has a ``label_dim``): the encoder gives
    x's last hidden features, which a joint network (``_joint_network``) reads with y to
    give the posterior's parameters, and the decoder reads [z, y]."""

    #: Whether the model's methods take labels (read by the CLI, training and tests).
    conditional = True

    def encoder_output_units(self) -> int:
        """Width of the x features that the label joins: the last hidden width."""
        return self.hidden_units[-1] if self.hidden_units else self.posterior.num_params

    def decoder_input_units(self) -> int:
        """Width of the decoder's input [z, y]."""
        return self.latent_dim + self.label_dim

    def _joint_network(self, name: str) -> keras.Sequential:
        """[x features, y] -> the posterior's parameters, through one hidden layer as wide
        as the features."""
        width = self.encoder_output_units()
        return keras.Sequential(
            [
                keras.Input((width + self.label_dim,)),
                keras.layers.Dense(width, activation=self.activation),
                keras.layers.Dense(self.posterior.num_params),
            ],
            name=name,
        )


@keras.saving.register_keras_serializable(package="vaezoo")
class ConditionalVAE(LabelInputs, VAE):
    """Conditional variational autoencoder: the VAE of an image x given its label y.

    Sohn, Lee and Yan, "Learning Structured Output Representation using Deep
    Conditional Generative Models", NeurIPS 2015.

    The paper models an output given an input; here the output is the image x and the
    input its label y (the paper's x and y swapped). Its lower bound (eq. 4) is

        L_CVAE(x, y) = -KL(q(z|x, y) || p(z|y)) + E_q(z|x, y)[log p(x|z, y)]

    with the relaxation the paper allows (Section 4): a prior p(z) that does not
    depend on y (the model's ``prior``). Trained on L_CVAE alone, the decoder learns
    to read z, which the encoder fills from x, and samples z ~ p(z) at test time may
    ignore y; the paper's hybrid objective (Section 4.2) also trains the decoder on
    prior samples, as its Gaussian stochastic neural network (GSNN) does:

        L_GSNN(x, y) = log p(x|z, y), z ~ p(z)   (one sample)
        L_hybrid = alpha L_CVAE + (1 - alpha) L_GSNN

    ``loss`` = -L_hybrid (-L_CVAE for ``alpha`` = 1); the metrics are
    ``reconstruction`` = -log p(x|z, y) (one sample of q), ``kl``, ``elbo`` = L_CVAE
    and ``gsnn`` = -L_GSNN.

    A label is a class id (integers, one-hot encoded to ``label_dim`` classes) or a
    float vector of size ``label_dim``. The decoder reads [z, y]; the encoder reads x
    through its usual layers, then [its last hidden features, y] through one more
    hidden layer (``joint_encoder``) to the posterior's parameters. Every method that
    reads data takes the labels too: ``fit(x, y)`` (or a ``tf.data.Dataset`` of
    ``(x, y)`` pairs), ``encode(x, y)``, ``decode(z, y)``, ``reconstruct(x, y)``,
    ``elbo(x, y)``, ``log_likelihood(x, y)`` (of log p(x|y)) and ``sample(n,
    labels=...)``; missing, misshapen, out-of-range or non-finite labels raise a
    ``ValueError`` (``TypeError`` for a wrong dtype) before any training step. The
    exported parts take a label input ``y`` (float one-hot or vector, ``(batch,
    label_dim)``): ``encoder(x, y)``, ``decoder(z, y)`` and ``sampler(eps, y)``.

    Args:
        label_dim: number of classes (integer labels) or size of the label vectors.
        alpha: weight of L_CVAE in the hybrid objective, in [0, 1] (1: the CVAE alone).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import ConditionalVAE
        >>> rng = np.random.default_rng(0)
        >>> x, y = (rng.random((64, 28, 28, 1)) > 0.5).astype("float32"), rng.integers(0, 10, 64)
        >>> model = ConditionalVAE(label_dim=10, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, y, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'gsnn', 'kl', 'loss', 'reconstruction']
        >>> model.sample(3, labels=7).shape
        (3, 28, 28, 1)
        >>> model.fit(x, y + 5, verbose=0)
        Traceback (most recent call last):
        ...
        ValueError: y has 28 class id(s) outside [0, 10) (label_dim=10); first: y[0] = 14
    """

    metric_names = VAE.metric_names + ("gsnn",)

    def __init__(self, label_dim: int = 10, alpha: float = 1.0, **kwargs: Any) -> None:
        self.label_dim = positive_int("label_dim", label_dim)  # read by BaseVAE.__init__
        alpha = non_negative("alpha", alpha)
        if alpha > 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        super().__init__(**kwargs)
        self.alpha = alpha

    def build(self, input_shape=None):
        if not self.built:
            self.joint_encoder = self._joint_network("joint_encoder")
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_dim": self.label_dim, "alpha": self.alpha}

    # ------------------------------------------------------------------ labels

    def label_vectors(self, y) -> tf.Tensor:
        """Labels as float vectors ``(batch, label_dim)``: class ids (``(batch,)`` or
        ``(batch, 1)`` integers) one-hot encoded, vectors cast to the compute dtype."""
        y = tf.convert_to_tensor(y)
        if y.dtype.is_integer and (y.shape.rank == 1 or y.shape[-1] == 1):
            return tf.one_hot(tf.reshape(y, [-1]), self.label_dim, dtype=self.compute_dtype)
        return tf.reshape(tf.cast(y, self.compute_dtype), [-1, self.label_dim])

    def check_labels(self, y, count: int | None = None, name: str = "y") -> np.ndarray:
        """Validate labels: int64 class ids ``(n,)`` (from ``(n,)`` or ``(n, 1)``
        integers) or float32 vectors ``(n, label_dim)``; ``count`` is the number of
        examples they label.

        Example:
            >>> import vaezoo
            >>> model = vaezoo.create_model("cvae", hidden_units=(8,), latent_dim=2)
            >>> model.check_labels([[3], [9]]).tolist()
            [3, 9]
            >>> model.check_labels(np.zeros((2, 4)))
            Traceback (most recent call last):
            ...
            ValueError: y holds label vectors of size 4; the model's label_dim is 10
        """
        what = (
            f"class ids in [0, {self.label_dim}) or float vectors of size {self.label_dim}, "
            f"one per example, e.g. model.fit(x, y)"
        )
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional and needs labels, but {name} is None; pass {what}")
        arr = np.asarray(y)
        if arr.dtype.kind in "iu" and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
            ids = arr.reshape(-1)
            if not len(ids):
                raise ValueError(f"{name} is empty (shape {arr.shape}); pass {what}")
            bad = (ids < 0) | (ids >= self.label_dim)
            if bad.any():
                first = int(np.argmax(bad))
                raise ValueError(
                    f"{name} has {int(bad.sum())} class id(s) outside [0, {self.label_dim}) "
                    f"(label_dim={self.label_dim}); first: {name}[{first}] = {ids[first]}"
                )
            checked = ids.astype(np.int64, copy=False)
        elif arr.dtype.kind == "f" and arr.ndim == 1:
            raise ValueError(
                f"{name} is a float array of shape {arr.shape}: class ids must be integers, "
                f"label vectors of shape (batch, {self.label_dim})"
            )
        elif arr.ndim == 2 and arr.dtype.kind in "biuf" and arr.shape[1] != self.label_dim:
            raise ValueError(
                f"{name} holds label vectors of size {arr.shape[1]}; the model's label_dim is {self.label_dim}"
            )
        else:
            checked = validation.check_array(arr, (self.label_dim,), name)
        if count is not None and len(checked) != count:
            raise ValueError(f"{name} has {len(checked)} labels but x has {count} examples")
        return checked

    def _labels_for(self, x, y, name: str = "y") -> np.ndarray:
        return self.check_labels(y, len(x) if hasattr(x, "__len__") else None, name)

    # ------------------------------------------------------------------ the model

    def posterior_params(self, x, y, training: bool = False) -> dict[str, tf.Tensor]:
        """The posterior head's parameter tensors of q(z|x, y)."""
        features = keras.activations.get(self.activation)(self.encoder(self._as_float(x), training=training))
        h = self.joint_encoder(tf.concat([features, self.label_vectors(y)], -1), training=training)
        return self.posterior.params(tf.cast(h, tf.float32))

    def encode(self, x, y, training: bool = False) -> tfd.Distribution:
        """q(z|x, y) for images ``x`` and their labels ``y``."""
        return self.posterior.distribution(self.posterior_params(x, y, training))

    def decoder_params(self, z, y, training: bool = False) -> dict[str, tf.Tensor]:
        """The likelihood's parameter tensors of p(x|z, y)."""
        h = self.decoder(tf.concat([tf.cast(z, self.compute_dtype), self.label_vectors(y)], -1), training=training)
        return self.likelihood.params(tf.cast(h, tf.float32))

    def decode(self, z, y, training: bool = False) -> tfd.Distribution:
        """p(x|z, y) for latents ``z`` and labels ``y``."""
        return self.likelihood.distribution(self.decoder_params(z, y, training))

    def call(self, inputs, training: bool = False):
        """The deterministic reconstruction of ``inputs = (x, y)``: the likelihood mean
        at the posterior mean."""
        x, y = inputs
        return self.likelihood.mean(self.decoder_params(self.encode(x, y, training).mean(), y, training))

    def elbo_terms(self, inputs, training: bool = False) -> dict[str, tf.Tensor]:
        """``VAE.elbo_terms`` of ``inputs = (x, y)``: -log p(x|z, y), z ~ q(z|x, y), and
        KL(q(z|x, y) || p(z)); ``elbo_summary`` and ``objective`` take the same pair."""
        x, y = inputs
        q = self.encode(x, y, training)
        z = q.sample(seed=self._next_seed())
        p_x = self.likelihood.distribution(self.decoder_params(z, y, training))
        reconstruction = -p_x.log_prob(self.likelihood.prepare_targets(x))
        return {"reconstruction": reconstruction, "kl": self.kl_divergence(q, z), "z": z, "q": q}

    def objective(self, inputs, training=False):
        x, y = inputs
        _, elbo = self.elbo_summary(inputs, training)
        p_x = self.likelihood.distribution(self.decoder_params(prior_draws(self, tf.shape(x)[0]), y, training))
        gsnn = -tf.reduce_mean(p_x.log_prob(self.likelihood.prepare_targets(x)))
        return {"loss": -self.alpha * elbo["elbo"] + (1 - self.alpha) * gsnn, **elbo, "gsnn": gsnn}

    def export_parts(self) -> dict[str, Any]:
        """The exported parts, each with the label input ``y`` (float, ``(batch, label_dim)``)."""
        from vaezoo.export.manifest import TensorInfo
        from vaezoo.export.parts import parts_from

        label = TensorInfo("y", (None, self.label_dim), "float32")
        return parts_from(self, self.posterior_params, self.decoder_params, label)

    # ------------------------------------------------------------------ Keras training

    def _step_inputs(self, data) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        """The batch's images and the objective's input ``(x, y)``."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: its batches need labels, (x, y) pairs")
        x = self._as_float(x)
        return x, (x, self.label_vectors(y))

    def predict_step(self, data):
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)  # predict((x, y)): the pair is the input
        x, y = inputs if isinstance(inputs, (tuple, list)) and len(inputs) == 2 else (inputs, None)
        return self(self._step_inputs((x, y))[1], training=False)

    def _checked_dataset(self, dataset: tf.data.Dataset, name: str) -> tf.data.Dataset:
        if getattr(dataset, "_vaezoo_checked", False):
            return dataset
        spec = dataset.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(
                f"{name} yields images without labels; {type(self).__name__} is conditional: "
                "make it yield (x, y) pairs"
            )
        label = spec[1]
        if not isinstance(label, tf.TensorSpec) or not (label.dtype.is_integer or label.dtype.is_floating):
            raise TypeError(f"{name} yields labels {label!r}; expected integer class ids or float vectors")
        rank, size = label.shape.rank, label.shape[-1] if label.shape.rank else None
        ids = label.dtype.is_integer and (rank == 1 or size == 1)
        if rank not in (1, 2) or (rank == 1 and not ids) or (not ids and size not in (None, self.label_dim)):
            raise ValueError(
                f"{name} yields labels of shape {label.shape}; expected class ids (batch,) or "
                f"vectors (batch, {self.label_dim}) (label_dim={self.label_dim})"
            )
        checked = super()._checked_dataset(dataset, name)
        dtype, shape = (tf.int64, [None]) if ids else (tf.float32, [None, self.label_dim])

        def check(x, y, *rest):
            labels = tf.numpy_function(
                lambda a, n: self.check_labels(a, int(n), f"{name} labels"), [y, tf.shape(x)[0]], dtype, stateful=False
            )
            return (x, tf.ensure_shape(labels, shape), *rest)

        return checked.map(check)

    def _checked_validation(self, data):
        if data is None or isinstance(data, tf.data.Dataset):
            return data
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise ValueError(
                f"validation_data has no labels; {type(self).__name__} is conditional: pass (x_valid, y_valid)"
            )
        return type(data)([data[0], self._labels_for(data[0], data[1], "validation_data labels"), *data[2:]])

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        if not isinstance(x, tf.data.Dataset):
            y = self._labels_for(x, y)
        return super().fit(x, y, validation_data=self._checked_validation(validation_data), **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        if not isinstance(x, tf.data.Dataset):
            y = self._labels_for(x, y)
        return super().evaluate(x, y, **kwargs)

    # ------------------------------------------------------------------ estimates

    def _log_weights(self, x: tf.Tensor, y: tf.Tensor, seed: tf.Tensor, num_samples: int) -> tf.Tensor:
        """log w_s = log p(x|z_s, y) + log p(z_s) - log q(z_s|x, y), z_s ~ q(z|x, y); shape (S, B)."""
        q = self.encode(x, y)
        z = q.sample(num_samples, seed=seed)
        batch = tf.shape(x)[0]
        labels = tf.tile(self.label_vectors(y), [num_samples, 1])  # index s * B + b, as the flat z
        params = self.decoder_params(tf.reshape(z, [-1, self.latent_dim]), labels)
        targets = tf.tile(self.likelihood.prepare_targets(x), [num_samples] + [1] * len(self.data_shape))
        log_px = tf.reshape(self.likelihood.distribution(params).log_prob(targets), [num_samples, batch])
        return log_px + self.prior.distribution().log_prob(z) - q.log_prob(z)

    def _with_labels(self, x: np.ndarray, y) -> tuple[np.ndarray, np.ndarray]:
        return x, self.check_labels(y, len(x))

    def importance_estimates(
        self, x, y, num_samples: int, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-example (ELBO estimate, log p(x|y) estimate) from ``num_samples`` samples
        of q(z|x, y), as ``BaseVAE.importance_estimates`` computes them for x alone."""
        return self._importance_estimates(x, (y,), num_samples, batch_size, seed, verbose)

    def elbo(self, x, y, num_samples: int = 1, batch_size: int = 100, seed: int = 0) -> np.ndarray:
        """Per-example conditional ELBO (nats) of x given y."""
        return self.importance_estimates(x, y, num_samples, batch_size, seed)[0]

    def log_likelihood(
        self, x, y, num_samples: int = 5000, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> np.ndarray:
        """Per-example importance-sampled estimate of log p(x|y) (nats)."""
        return self.importance_estimates(x, y, num_samples, batch_size, seed, verbose)[1]

    def _sample_labels(self, n: int, seed: int, labels) -> tuple[np.ndarray]:
        given = np.asarray(labels) if labels is not None else None
        if given is not None and given.ndim == 0:
            given = np.full(n, given)
        return (self.check_labels(given, n, "labels"),)

    def sample(self, n: int, seed: int = 0, mean: bool = True, labels=None) -> np.ndarray:
        """Draw ``n`` examples of the given labels: z ~ p(z), then the mean (or a
        sample) of p(x|z, y). ``labels``: one class id for all, ``n`` class ids or
        ``n`` label vectors."""
        return self._sample(n, seed, mean, labels)

    def reconstruct(self, x, y, batch_size: int = 256) -> np.ndarray:
        """The deterministic reconstruction of every example of ``x`` given its label."""
        return self._reconstruct(x, (y,), batch_size)
