"""Semi-supervised deep generative models of Kingma, Rezende, Mohamed and Welling (2014):
M2, a VAE with a class label y next to the latent z, and M1+M2, M2 stacked on the latent
code of a pretrained VAE (M1)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.base import BaseVAE
from vaezoo.models.conditional import LabelInputs
from vaezoo.models.vae import VAE
from vaezoo.nets import build_encoder

#: Label value that marks an unlabelled example in ``fit(x, y)``.
UNLABELLED = -1


@keras.saving.register_keras_serializable(package="vaezoo")
class M2(LabelInputs, VAE):
    """M2: a VAE whose generative model has a class label y next to the latent z.

    Kingma, Rezende, Mohamed and Welling, "Semi-Supervised Learning with Deep
    Generative Models", NeurIPS 2014.

    Generative model p(y) p(z) p(x|y, z) with p(y) = Cat(1/K) and p(z) = N(0, I);
    inference model q(y|x) (a classifier, ``self.classifier``) and
    q(z|x, y) = N(mu(x, y), diag sigma^2(x, y)). The bounds of a labelled and of an
    unlabelled example are (the paper's equations 6 and 7)

        log p(x, y) >= E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)] = -L(x, y)
        log p(x)    >= sum_y q(y|x) (-L(x, y)) + H(q(y|x))                            = -U(x)

    where the sum over the K classes is computed exactly (one z sample per class), and
    the objective adds the classifier's cross-entropy on the labelled examples:

        J^alpha = sum_labelled L(x, y) + sum_unlabelled U(x) + alpha * E_labelled[-log q(y|x)]

    with the paper's alpha = 0.1 * N. Per example (divided by N), that is
    ``loss = -elbo + alpha * classification`` with ``alpha = 0.1``: ``elbo`` is the mean
    bound of the batch (-L for its labelled, -U for its unlabelled examples) and
    ``classification`` the mean of -log q(y|x) over its labelled examples (as in the
    authors' code, which scales the labelled cross-entropy by 0.1 * N / N_labelled).

    Labels: ``fit(x, y)`` takes integer class ids in ``y`` with ``-1`` (``UNLABELLED``)
    for every unlabelled example; ``fit(x)`` treats all of ``x`` as unlabelled; a
    ``tf.data`` input yields ``x`` or ``(x, y)`` batches. With few labels, a stream
    that puts some labelled examples in every batch (:func:`semi_supervised_batches`)
    trains the classifier far faster than shuffling them among the unlabelled ones.

    Metrics: ``loss``; ``elbo``, ``reconstruction`` and ``kl`` (batch means, with
    ``elbo = -(reconstruction + kl)``: for an unlabelled example ``kl`` is
    KL(q(y, z|x) || p(y) p(z)) and ``reconstruction`` -E_q(y,z|x)[log p(x|y, z)]; for a
    labelled one q(y|x) is replaced by the observed label); ``labelled_bound`` (the mean
    of -L(x, y) over the batch's labelled examples), ``unlabelled_bound`` (the mean of
    -U(x) over its unlabelled ones) and ``classification`` (see above); each is 0 for
    a batch without examples of its kind.

    Networks: ``classifier`` (x -> K logits, dense layers of ``classifier_units``);
    ``encoder`` (x -> features) and ``posterior_net`` ([features, one-hot y] -> the
    posterior's parameters); ``decoder`` ([z, one-hot y] -> the likelihood's
    parameters).

    The API is that of a conditional model (``conditional = True``, as
    :class:`vaezoo.models.ConditionalVAE`) with every label optional: ``encode(x, y)``,
    ``posterior_params(x, y)``, ``reconstruct(x, y)`` use the classifier's most probable
    class where ``y`` is None (or -1); ``decoder_params(z, y)`` and ``decode(z, y)`` take
    class ids or one-hot rows; ``sample(n, labels=None)`` draws y uniformly;
    ``importance_estimates(x, y)``, ``elbo`` and ``log_likelihood`` estimate log p(x, y)
    for a labelled example and log p(x) for an unlabelled one. ``classify(x)`` gives
    q(y|x) and ``predict_labels(x)`` its most probable class. Exported parts take the
    label as a one-hot input ``y``; a ``classifier`` part gives it from ``x``.

    Args:
        num_classes: K, the number of classes (>= 2).
        alpha: weight of the labelled cross-entropy per example, >= 0 (the paper's
            alpha = 0.1 * N is 0.1 here). Measured on Fashion-MNIST pixels with 1,000
            labels and a few hundred steps: 0.1 leaves q(y|x) far below the same network
            trained on the labels alone (0.55-0.65 vs 0.80 accuracy); 30 matches it or
            beats it slightly.
        classifier_units: widths of the classifier's dense layers (default:
            ``hidden_units``).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import M2
        >>> rng = np.random.default_rng(0)
        >>> x = (rng.random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> y = np.where(np.arange(64) < 16, np.arange(64) % 10, -1)  # 16 labels, 48 unlabelled
        >>> model = M2(num_classes=10, hidden_units=(16,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, y, epochs=1, batch_size=32, verbose=0).history)  # doctest: +NORMALIZE_WHITESPACE
        ['classification', 'elbo', 'kl', 'labelled_bound', 'loss', 'reconstruction',
         'unlabelled_bound']
        >>> model.predict_labels(x[:3]).shape, model.classify(x[:3]).shape
        ((3,), (3, 10))
    """

    metric_names = VAE.metric_names + ("labelled_bound", "unlabelled_bound", "classification")

    def __init__(
        self,
        num_classes: int = 10,
        alpha: float = 0.1,
        classifier_units: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        num_classes = positive_int("num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
        alpha = non_negative("alpha", alpha)
        units = kwargs.get("hidden_units", (512, 256)) if classifier_units is None else classifier_units
        units = tuple(int(u) for u in units)
        if any(u < 1 for u in units):
            raise ValueError(f"classifier_units must be positive widths, got {classifier_units!r}")
        # Read by LabelInputs (label_dim) and build, which BaseVAE.__init__ calls.
        self.num_classes = num_classes
        self.classifier_units = units
        super().__init__(**kwargs)
        self.alpha = alpha

    # ------------------------------------------------------------------ construction

    @property
    def label_dim(self) -> int:
        """Width of a one-hot label: ``num_classes``."""
        return self.num_classes

    def build(self, input_shape=None):
        if not self.built:
            self.posterior_net = self._joint_network("posterior_net")
            self.classifier = build_encoder(
                self.network,
                self.data_shape,
                self.num_classes,
                hidden_units=self.classifier_units,
                conv_filters=self.conv_filters,
                activation=self.activation,
                name="classifier",
            )
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "alpha": self.alpha,
            "classifier_units": list(self.classifier_units),
        }

    # ------------------------------------------------------------------ the model

    @property
    def observation_likelihood(self):
        """The likelihood head of the data that M2 models (M1+M2: M1's latent code)."""
        return self.likelihood

    def _features(self, x, training: bool = False, seed=None) -> tf.Tensor:
        """What M2 models: ``x`` itself (M1+M2 maps images to M1's latent code)."""
        return self._as_float(x)

    def _one_hot(self, y) -> tf.Tensor:
        """Labels as vectors (batch, num_classes): class ids are one-hot encoded, float
        vectors (e.g. one-hot rows) pass through."""
        y = tf.convert_to_tensor(y)
        if y.dtype.is_floating and y.shape.rank == 2:
            return tf.cast(y, self.compute_dtype)
        return tf.one_hot(tf.cast(y, tf.int32), self.num_classes, dtype=self.compute_dtype)

    def classifier_logits(self, x, training: bool = False) -> tf.Tensor:
        """The logits of q(y|x), shape (batch, num_classes)."""
        return self._classifier_logits(self._features(x, training), training)

    def _classifier_logits(self, features, training=False):
        return tf.cast(self.classifier(features, training=training), tf.float32)

    def _posterior(self, features, y, training=False) -> tfd.Distribution:
        return self._posterior_at(self.encoder(features, training=training), y, training)

    def _posterior_params_at(self, h, y, training=False) -> dict[str, tf.Tensor]:
        """The parameters of q(z|x, y) from the encoder's features ``h`` of x."""
        h = self.posterior_net(tf.concat([h, self._one_hot(y)], -1), training=training)
        return self.posterior.params(tf.cast(h, tf.float32))

    def _posterior_at(self, h, y, training=False) -> tfd.Distribution:
        return self.posterior.distribution(self._posterior_params_at(h, y, training))

    def _per_class(self, features, training=False):
        """Class ids and the encoder features and data repeated once per class: row
        c * batch + b holds example b with class c."""
        k = self.num_classes
        labels = tf.repeat(tf.range(k), tf.shape(features)[0])
        h = self.encoder(features, training=training)
        targets = self.observation_likelihood.prepare_targets(features)
        return labels, _repeat(h, k), _repeat(targets, k)

    def _predicted(self, features, y=None, training=False) -> tf.Tensor:
        """``y`` (class ids or one-hot rows), or the classifier's most probable classes."""
        if y is None:
            return tf.argmax(self._classifier_logits(features, training), -1, output_type=tf.int32)
        return y

    def posterior_params(self, x, y=None, training: bool = False) -> dict[str, tf.Tensor]:
        """The parameters of q(z|x, y); ``y`` (class ids (batch,) or one-hot rows) defaults
        to the classifier's most probable class."""
        features = self._features(x, training)
        h = self.encoder(features, training=training)
        return self._posterior_params_at(h, self._predicted(features, y, training), training)

    def encode(self, x, y=None, training: bool = False) -> tfd.Distribution:
        """q(z|x, y); ``y`` defaults to the classifier's most probable class."""
        return self.posterior.distribution(self.posterior_params(x, y, training))

    def _decoder_params(self, z, y, training=False) -> dict[str, tf.Tensor]:
        h = self.decoder(tf.concat([self._as_float(z), self._one_hot(y)], -1), training=training)
        return self.observation_likelihood.params(tf.cast(h, tf.float32))

    def decoder_params(self, z, y, training: bool = False) -> dict[str, tf.Tensor]:
        """The likelihood's parameters of p(x|y, z) for latents ``z`` (batch, latent_dim)
        and labels ``y``: class ids (batch,) or one-hot rows (batch, num_classes)."""
        return self._decoder_params(z, y, training)

    def decode(self, z, y, training: bool = False) -> tfd.Distribution:
        """p(x|y, z) for latents ``z`` and labels ``y``."""
        return self.likelihood.distribution(self.decoder_params(z, y, training))

    def call(self, inputs, training: bool = False):
        """The deterministic reconstruction of ``x`` or ``(x, y)``: the posterior mean of z
        at the label (default: the classifier's most probable class), decoded."""
        x, y = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        features = self._features(x, training)
        y = self._predicted(features, y, training)
        z = self._posterior(features, y, training).mean()
        return self.likelihood.mean(self.decoder_params(z, y, training))

    # ------------------------------------------------------------------ objective

    def _per_class_terms(self, features, training, seed) -> tuple[tf.Tensor, tf.Tensor]:
        """-log p(x|y, z) and KL(q(z|x, y) || p(z)) for every example and every class y,
        one reparameterised z per pair; each of shape (batch, num_classes)."""
        k, batch = self.num_classes, tf.shape(features)[0]
        labels, h, targets = self._per_class(features, training)
        q = self._posterior_at(h, labels, training)
        z = q.sample(seed=seed)
        p_x = self.observation_likelihood.distribution(self._decoder_params(z, labels, training))
        reconstruction = -p_x.log_prob(targets)
        kl = self.kl_divergence(q, z)
        return tf.transpose(tf.reshape(reconstruction, [k, batch])), tf.transpose(tf.reshape(kl, [k, batch]))

    def _labels(self, y, batch) -> tf.Tensor:
        """Class ids (batch,), -1 for unlabelled, from None, ids or one-hot rows."""
        if y is None:
            return tf.fill([batch], UNLABELLED)
        y = tf.convert_to_tensor(y)
        if y.dtype.is_floating and y.shape.rank == 2 and y.shape[-1] == self.num_classes:
            return tf.where(tf.reduce_sum(y, -1) > 0, tf.argmax(y, -1, output_type=tf.int32), UNLABELLED)
        return tf.reshape(tf.cast(y, tf.int32), [-1])

    def semi_supervised_terms(self, x, y=None, training: bool = False) -> dict[str, tf.Tensor]:
        """The batch's scalar terms for class ids ``y`` (``-1``: unlabelled; None: all)."""
        features = self._features(x, training, seed=self._next_seed())
        batch = tf.shape(features)[0]
        y = self._labels(y, batch)
        labelled = y >= 0
        log_k = math.log(self.num_classes)
        reconstruction, kl = self._per_class_terms(features, training, self._next_seed())
        logits = self._classifier_logits(features, training)
        log_q = tf.nn.log_softmax(logits)
        q = tf.exp(log_q)
        # A labelled example puts all mass of q(y|x) on its label; -log p(y) = log K joins kl.
        target = tf.one_hot(tf.maximum(y, 0), self.num_classes)
        weights = tf.where(labelled[:, None], target, q)
        kl_y = tf.where(labelled, log_k, tf.reduce_sum(q * log_q, -1) + log_k)  # KL(q(y|x) || p(y))
        example_reconstruction = tf.reduce_sum(weights * reconstruction, -1)
        example_kl = tf.reduce_sum(weights * kl, -1) + kl_y
        bound = -(example_reconstruction + example_kl)  # -L(x, y) or -U(x)
        cross_entropy = -tf.reduce_sum(target * log_q, -1)

        def mean_over(mask, values):
            count = tf.reduce_sum(tf.cast(mask, tf.float32))
            return tf.reduce_sum(tf.where(mask, values, 0.0)) / tf.maximum(count, 1.0)

        classification = mean_over(labelled, cross_entropy)
        reconstruction_mean = tf.reduce_mean(example_reconstruction)
        kl_mean = tf.reduce_mean(example_kl)
        elbo = -(reconstruction_mean + kl_mean)
        return {
            "loss": -elbo + self.alpha * classification,
            "elbo": elbo,
            "reconstruction": reconstruction_mean,
            "kl": kl_mean,
            "labelled_bound": mean_over(labelled, bound),
            "unlabelled_bound": mean_over(tf.logical_not(labelled), bound),
            "classification": classification,
        }

    def objective(self, x, training=False):
        return self.semi_supervised_terms(x, None, training)

    def _unpack_labelled(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._as_float(x), y

    def train_step(self, data):
        x, y = self._unpack_labelled(data)
        with tf.GradientTape() as tape:
            terms = self._with_regularisers(self.semi_supervised_terms(x, y, training=True))
        return self._apply_updates(x, terms, [(tape, "loss", self.optimizer, self.trainable_variables)])

    def test_step(self, data):
        x, y = self._unpack_labelled(data)
        return self._log(self._with_regularisers(self.semi_supervised_terms(x, y, training=False)), x)

    # ------------------------------------------------------------------ labels in fit

    def check_labels(self, y, num_examples: int | None = None, name: str = "y") -> np.ndarray:
        """Validate labels and return them as int32 class ids, -1 for unlabelled: integer
        ids in [-1, num_classes) of shape (n,) or (n, 1), or float one-hot rows
        (n, num_classes) where an all-zero row marks an unlabelled example.

        Example:
            >>> import numpy as np
            >>> from vaezoo.models import M2
            >>> model = M2(num_classes=3, hidden_units=(4,), latent_dim=2)
            >>> model.check_labels(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])).tolist()
            [2, -1]
            >>> model.check_labels(np.array([0, 3]))
            Traceback (most recent call last):
            ...
            ValueError: y has 1 label(s) outside [-1, 3) (-1 marks unlabelled examples); first: y[1] = 3
        """
        arr = np.asarray(y)
        count = "n" if num_examples is None else num_examples
        if arr.dtype.kind == "f" and arr.ndim == 2 and arr.shape[1] == self.num_classes:
            one_hot = np.isin(arr, (0.0, 1.0)).all(1) & (arr.sum(1) <= 1)
            if not one_hot.all():
                first = int(np.argmin(one_hot))
                raise ValueError(f"{name} has float rows that are not one-hot (or all zero); first: {name}[{first}] = {arr[first]!r}")
            arr = np.where(arr.sum(1) > 0, np.argmax(arr, 1), UNLABELLED)
        elif arr.dtype.kind not in "iu":
            raise TypeError(
                f"{name} must hold integer class ids (-1 for unlabelled) or one-hot rows of size "
                f"{self.num_classes}, got dtype {arr.dtype} and shape {arr.shape}"
            )
        elif arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1 or (num_examples is not None and len(arr) != num_examples):
            raise ValueError(f"{name} must have shape ({count},), one class id per example, got {np.shape(y)}")
        bad = (arr < UNLABELLED) | (arr >= self.num_classes)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"{name} has {int(bad.sum())} label(s) outside [-1, {self.num_classes}) "
                f"(-1 marks unlabelled examples); first: {name}[{first}] = {arr[first]!r}"
            )
        return arr.astype(np.int32)

    def _checked_labels(self, x, y, name: str):
        if y is None or isinstance(x, tf.data.Dataset):
            return y
        return self.check_labels(y, len(x), name)

    def _labelled_dataset(self, dataset, name: str):
        spec = dataset.element_spec
        if not (isinstance(spec, tuple) and len(spec) > 1):
            return dataset
        k = self.num_classes

        def check(x, y, *rest):
            y = self._labels(y, tf.shape(x)[0])
            ok = tf.reduce_all((y >= UNLABELLED) & (y < k))
            with tf.control_dependencies([tf.debugging.Assert(ok, [f"{name} labels outside [-1, {k})", y])]):
                return (tf.identity(x), tf.identity(y), *rest)

        checked = dataset.map(check)
        checked._vaezoo_checked = getattr(dataset, "_vaezoo_checked", False)
        return checked

    def _with_checked_labels(self, data, name: str):
        if isinstance(data, tf.data.Dataset):
            return self._labelled_dataset(data, name)
        if isinstance(data, (tuple, list)) and len(data) > 1 and data[1] is not None:
            return type(data)([data[0], self.check_labels(data[1], len(data[0]), f"{name} labels"), *data[2:]])
        return data

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        """``keras.Model.fit`` with class ids ``y`` (-1: unlabelled; None: all unlabelled)."""
        return super().fit(
            self._with_checked_labels(x, "x"),
            self._checked_labels(x, y, "y"),
            validation_data=self._with_checked_labels(validation_data, "validation_data"),
            **kwargs,
        )

    def evaluate(self, x=None, y=None, **kwargs):
        return super().evaluate(self._with_checked_labels(x, "x"), self._checked_labels(x, y, "y"), **kwargs)

    # ------------------------------------------------------------------ classification

    def classify(self, x, batch_size: int = 256) -> np.ndarray:
        """q(y|x) for every example: probabilities of shape (N, num_classes)."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        x = self.check_data(x)
        return np.concatenate(
            [tf.nn.softmax(self.classifier_logits(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
        )

    def predict_labels(self, x, batch_size: int = 256) -> np.ndarray:
        """The most probable class under q(y|x) for every example, shape (N,)."""
        return np.argmax(self.classify(x, batch_size), -1)

    # ------------------------------------------------------------------ sampling and estimates

    def _with_labels(self, x: np.ndarray, y=None) -> tuple[np.ndarray, np.ndarray]:
        return x, np.full(len(x), UNLABELLED, np.int32) if y is None else self.check_labels(y, len(x))

    def _reconstruction(self, x, y):
        return self((x, tf.where(y >= 0, y, self._predicted(self._features(x)))))

    def reconstruct(self, x, y=None, batch_size: int = 256) -> np.ndarray:
        """The deterministic reconstruction (see ``call``) of every example of ``x``, at
        the labels ``y`` (class ids; default, or -1: the classifier's most probable class).

        Example:
            >>> import numpy as np
            >>> from vaezoo.models import M2
            >>> M2(num_classes=3, hidden_units=(8,), latent_dim=2).reconstruct(np.zeros((2, 28, 28, 1)), [0, -1]).shape
            (2, 28, 28, 1)
        """
        return self._reconstruct(x, (y,), batch_size)

    def _sample_labels(self, n: int, seed: int, labels) -> tuple[tf.Tensor]:
        if labels is None:
            return (tf.random.stateless_uniform([n], [seed, 2], 0, self.num_classes, dtype=tf.int32),)
        ids = np.atleast_1d(np.asarray(labels))
        ids = self.check_labels(ids, len(ids), "labels")
        if len(ids) not in (1, n) or (ids < 0).any():
            raise ValueError(f"labels must be one class id or {n}, each in [0, {self.num_classes}); got {labels!r}")
        return (tf.constant(np.broadcast_to(ids, (n,))),)

    def sample(self, n: int, seed: int = 0, mean: bool = True, labels=None) -> np.ndarray:
        """Draw ``n`` examples: y ~ p(y) (uniform; or the class id(s) ``labels``: one for
        all, or ``n``), z ~ p(z), then the likelihood's mean (``mean=True``) or a sample
        of p(x|y, z).

        Example:
            >>> from vaezoo.models import M2
            >>> M2(num_classes=3, hidden_units=(8,), latent_dim=2).sample(4, labels=2).shape
            (4, 28, 28, 1)
        """
        return self._sample(n, seed, mean, labels)

    def _class_log_weights(self, features, seed) -> tf.Tensor:
        """log p(y) + log p(x|y, z_y) + log p(z_y) - log q(z_y|x, y), z_y ~ q(z|x, y), for
        every row of ``features`` and every class y; shape (rows, num_classes)."""
        k, rows = self.num_classes, tf.shape(features)[0]
        labels, h, targets = self._per_class(features)
        q = self._posterior_at(h, labels)
        z = q.sample(seed=seed)
        p_x = self.observation_likelihood.distribution(self._decoder_params(z, labels))
        log_w = p_x.log_prob(targets) + self.prior.distribution().log_prob(z) - q.log_prob(z)
        return tf.transpose(tf.reshape(log_w, [k, rows])) - math.log(k)

    def _observed_log_weights(self, features, y, seed) -> tf.Tensor:
        """One importance weight per row: of p(x, y) where the label is known (y >= 0),
        else of p(x) with y summed out exactly."""
        log_w = self._class_log_weights(features, seed)
        known = tf.gather(log_w, tf.maximum(y, 0), batch_dims=1)
        return tf.where(y >= 0, known, tf.reduce_logsumexp(log_w, -1))

    def _log_weights(self, x, y, seed, num_samples):
        features = self._features(x)
        tiled = _repeat(features, num_samples)
        log_w = self._observed_log_weights(tiled, tf.tile(y, [num_samples]), seed)
        return tf.reshape(log_w, [num_samples, tf.shape(features)[0]])

    def _chunk_size(self, batch_size: int) -> int:
        return max(1, super()._chunk_size(batch_size) // self.num_classes)

    def importance_estimates(
        self, x, y=None, num_samples: int = 1, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-example (ELBO estimate, log-likelihood estimate) of what was observed:
        log p(x, y) for an example with a label (``y`` >= 0), log p(x) for one without
        (``y`` -1 or None), where y is summed out exactly in every importance weight (so
        the k = 1 estimate is at least -U(x)). Otherwise as ``BaseVAE.importance_estimates``.

        Example:
            >>> import numpy as np
            >>> from vaezoo.models import M2
            >>> model = M2(num_classes=3, hidden_units=(8,), latent_dim=2)
            >>> [a.shape for a in model.importance_estimates(np.zeros((2, 28, 28, 1)), [1, -1], 5)]
            [(2,), (2,)]
        """
        return self._importance_estimates(x, (y,), num_samples, batch_size, seed, verbose)

    def elbo(self, x, y=None, num_samples: int = 1, batch_size: int = 100, seed: int = 0) -> np.ndarray:
        """Per-example ELBO estimate (nats) of (x, y), or of x where y is -1 or None."""
        return self.importance_estimates(x, y, num_samples, batch_size, seed)[0]

    def log_likelihood(
        self, x, y=None, num_samples: int = 5000, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> np.ndarray:
        """Per-example estimate of log p(x, y), or of log p(x) where y is -1 or None (nats)."""
        return self.importance_estimates(x, y, num_samples, batch_size, seed, verbose)[1]

    # ------------------------------------------------------------------ export

    def export_parts(self) -> dict[str, Any]:
        """The parts of a conditional model (each takes the label ``y`` as a float one-hot
        row (batch, num_classes), as :class:`vaezoo.models.ConditionalVAE`'s do) and the
        ``classifier``: ``x`` -> ``probs`` (q(y|x)) and ``y`` (its most probable class,
        one-hot), the label to feed the others when none is known.

        - ``encoder``: ``x``, ``y`` -> the parameters of q(z|x, y);
        - ``decoder``: ``z``, ``y`` -> the likelihood's parameters and ``mean``;
        - ``sampler``: ``eps``, ``y`` -> ``z = prior.from_noise(eps)`` and the decoder's outputs.
        """
        from vaezoo.export.manifest import TensorInfo
        from vaezoo.export.parts import ExportPart, parts_from

        def classifier(x):
            logits = self._classifier_logits(self._features(x))
            y = tf.one_hot(tf.argmax(logits, -1), self.num_classes, dtype=tf.float32)
            return {"probs": tf.nn.softmax(logits), "y": y}

        x_info = TensorInfo("x", (None,) + tuple(self.data_shape), "float32")
        parts = parts_from(self, self.posterior_params, self.decoder_params, TensorInfo("y", (None, self.num_classes), "float32"))
        parts["classifier"] = ExportPart("classifier", (x_info,), classifier, lambda x: {"x": np.asarray(x, np.float32)})
        return parts


def _repeat(t: tf.Tensor, k: int) -> tf.Tensor:
    """``t`` stacked ``k`` times along its first axis."""
    return tf.tile(t, tf.concat([[k], tf.ones_like(tf.shape(t)[1:])], 0))


def semi_supervised_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, labelled_per_batch: int, seed: int = 0
) -> tf.data.Dataset:
    """An endless stream of ``(x, y)`` batches for :class:`M2`: each batch holds
    ``labelled_per_batch`` labelled examples (drawn in reshuffled passes over the
    labelled ones, however few) and ``batch_size - labelled_per_batch`` unlabelled ones
    (label -1, reshuffled passes over the rest). Give ``fit`` a ``steps_per_epoch``.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((10, 2, 2, 1), "float32")
        >>> y = np.array([0, 1] + [-1] * 8)
        >>> xb, yb = next(iter(semi_supervised_batches(x, y, 4, 2)))
        >>> sorted(yb.numpy().tolist())
        [-1, -1, 0, 1]
    """
    batch_size = positive_int("batch_size", batch_size)
    labelled_per_batch = positive_int("labelled_per_batch", labelled_per_batch)
    y = np.asarray(y)
    labelled = np.flatnonzero(y >= 0)
    unlabelled = np.flatnonzero(y < 0)
    if labelled_per_batch >= batch_size or not len(labelled) or not len(unlabelled):
        raise ValueError(
            f"need labelled and unlabelled examples and labelled_per_batch < batch_size; got "
            f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, labelled_per_batch={labelled_per_batch}, "
            f"batch_size={batch_size}"
        )

    def stream(indices, per_batch, offset):
        data = tf.data.Dataset.from_tensor_slices((x[indices], y[indices].astype(np.int32)))
        return data.shuffle(len(indices), seed=seed + offset, reshuffle_each_iteration=True).repeat().batch(per_batch)

    both = tf.data.Dataset.zip(stream(labelled, labelled_per_batch, 0), stream(unlabelled, batch_size - labelled_per_batch, 1))
    return both.map(lambda a, b: (tf.concat([a[0], b[0]], 0), tf.concat([a[1], b[1]], 0))).prefetch(2)


@keras.saving.register_keras_serializable(package="vaezoo")
class M1M2(M2):
    """M1+M2: M2 trained on the latent code of a pretrained, frozen VAE (M1).

    Kingma, Rezende, Mohamed and Welling, "Semi-Supervised Learning with Deep
    Generative Models", NeurIPS 2014 (section 3.2, "stacked generative semi-supervised
    model"). The generative model is p(y) p(z2) p_M2(z1|y, z2) p_M1(x|z1); M2's data are
    z1 ~ q_M1(z1|x), drawn afresh at every training step as in the authors' code, and
    the classifier q(y|z1) is applied to the posterior mean of z1 (``classify``). The
    M2 part is an MLP with the likelihood ``likelihood`` over z1 (default: a Gaussian
    with a learned scale per dimension); its objective and metrics are those of
    :class:`M2`, measured on z1 (so ``elbo`` bounds log p(z1), not log p(x)).

    M1 is held, frozen, as ``self.m1``; its weights are saved with the model. The
    generative side works on images: ``decoder_params(z2, y)`` gives M1's likelihood
    parameters at z1 = the mean of p_M2(z1|y, z2), so ``sample``, ``reconstruct`` and the
    exported decoder and sampler return images, and ``likelihood`` is M1's (M2's own
    likelihood of z1 is ``feature_likelihood``); ``importance_estimates`` estimates
    log p(x) (or log p(x, y)) of the stack, with z1 ~ q_M1(z1|x).

    Args:
        m1: the pretrained VAE (copied: the argument is not changed), or its
            serialized form (``keras.saving.serialize_keras_object``), or a dict of
            :class:`vaezoo.models.VAE` arguments for a new one (untrained: for tests), or
            None for ``VAE(data_shape=data_shape)``.
        data_shape: the image shape; defaults to M1's.
        likelihood: the likelihood of z1 under M2.
        likelihood_options: its options (default: ``{"sigma": "per_output"}``).
        **kwargs: the arguments of :class:`M2` (``latent_dim`` is z2's size;
            ``network`` must be ``"mlp"``).

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import M1M2, VAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> m1 = VAE(hidden_units=(16,), latent_dim=4)  # pretrained in practice
        >>> model = M1M2(m1=m1, num_classes=10, hidden_units=(16,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> model.fit(x, np.arange(64) % 10, epochs=1, batch_size=32, verbose=0).history["classification"][0] > 0
        True
        >>> model.sample(2).shape, model.predict_labels(x[:2]).shape
        ((2, 28, 28, 1), (2,))
    """

    def __init__(
        self,
        m1: dict[str, Any] | BaseVAE | None = None,
        data_shape: Sequence[int] | None = None,
        likelihood: str = "gaussian",
        likelihood_options: dict[str, Any] | None = None,
        network: str = "mlp",
        **kwargs: Any,
    ) -> None:
        if network != "mlp":
            raise ValueError(f"M1M2's M2 part models a latent vector: network must be 'mlp', got {network!r}")
        self.m1 = _m1_spec(m1, data_shape)
        options = {"sigma": "per_output"} if likelihood_options is None and likelihood == "gaussian" else likelihood_options
        super().__init__(
            data_shape=(self.m1.latent_dim,), likelihood=likelihood, likelihood_options=options, network=network, **kwargs
        )
        self.data_shape = tuple(self.m1.data_shape)  # the images; the M2 networks work on (latent,)
        # Frozen after keras.Model.__init__ (whose trainable=True reaches every sub-layer), down
        # to each variable: Keras's setter leaves a deserialized model's variables trainable.
        self.m1.trainable = False
        for variable in self.m1.weights:
            variable.trainable = False

    def build(self, input_shape=None):
        if not self.built:
            self.feature_likelihood = self.likelihood
            self.feature_likelihood.build(None)
            self.likelihood = self.m1.likelihood  # what the model generates: images
        super().build(input_shape)

    @property
    def observation_likelihood(self):
        return self.feature_likelihood

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "m1": keras.saving.serialize_keras_object(self.m1)}

    def _features(self, x, training=False, seed=None):
        params = self.m1.posterior.params(tf.cast(self.m1.encoder(self._as_float(x)), tf.float32))
        return params["loc"] if seed is None else self.m1.posterior.distribution(params).sample(seed=seed)

    def decoder_params(self, z, y, training: bool = False) -> dict[str, tf.Tensor]:
        """M1's likelihood parameters (the image) at z1 = the mean of p(z1|y, z)."""
        z1 = self.feature_likelihood.mean(self._decoder_params(z, y, training))
        return self.m1.decoder_params(z1, training)

    def _log_weights(self, x, y, seed, num_samples):
        """log p_M1(x|z1) + log p^(z1, y) - log q_M1(z1|x), z1 ~ q_M1(z1|x), where p^ is
        M2's one-sample estimate of p(z1, y) (of p(z1), y summed out, without a label)."""
        x = self._as_float(x)
        params = self.m1.posterior.params(tf.cast(self.m1.encoder(x), tf.float32))
        q1 = self.m1.posterior.distribution(params)
        z1 = q1.sample(num_samples, seed=seed)  # (S, B, latent)
        batch = tf.shape(z1)[1]
        flat = tf.reshape(z1, [-1, self.m1.latent_dim])
        log_p_z1 = self._observed_log_weights(flat, tf.tile(y, [num_samples]), tf.reverse(seed, [0]))
        targets = tf.tile(self.likelihood.prepare_targets(x), [num_samples] + [1] * len(self.data_shape))
        log_px = self.likelihood.distribution(self.m1.decoder_params(flat)).log_prob(targets)
        return tf.reshape(log_px + log_p_z1, [num_samples, batch]) - q1.log_prob(z1)


def _m1_spec(m1, data_shape) -> BaseVAE:
    """The frozen M1 of :class:`M1M2`: a copy of a model, or one built from a config."""
    if isinstance(m1, BaseVAE):
        copied = type(m1).from_config(m1.get_config())
        copied.set_weights(m1.get_weights())
        m1 = copied
    elif isinstance(m1, dict) and "class_name" in m1:
        m1 = keras.saving.deserialize_keras_object(copy.deepcopy(m1))
    elif m1 is None or isinstance(m1, dict):
        options = dict(m1 or {})
        if data_shape is not None:
            options.setdefault("data_shape", tuple(data_shape))
        m1 = VAE(**options)
    else:
        raise TypeError(f"m1 must be a vaezoo model, its serialized config, a dict of VAE arguments or None, got {m1!r}")
    if not isinstance(m1, BaseVAE):
        raise TypeError(f"m1 must be a vaezoo model, got {type(m1).__name__}")
    if data_shape is not None and tuple(int(s) for s in data_shape) != tuple(m1.data_shape):
        raise ValueError(f"data_shape {tuple(data_shape)} differs from M1's data_shape {tuple(m1.data_shape)}")
    return m1
