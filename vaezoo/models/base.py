"""The machinery every vaezoo model shares: networks, heads and prior from a config,
Keras ``train_step``/``test_step``, metrics, input checks and importance-sampled
likelihood estimates. A variant subclasses :class:`BaseVAE` (usually through
:class:`vaezoo.models.vae.VAE`) and writes its objective in ``objective``."""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaezoo import distribute, validation
from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions import StandardNormalPrior, likelihood_head, posterior_head
from vaezoo.nets import build_decoder, build_encoder

# Floats that one chunk of the importance-sampling estimate may hold at once
# (2**26 float32 = 256 MiB per tensor; a handful of tensors stay well under 4 GB).
_ESTIMATE_BUDGET = 2**26
# Values that ``check_data`` validates at once: its temporary masks stay near 16 MB.
_CHECK_CHUNK = 2**24

#: What a training step does when a loss term or a gradient is NaN or Inf (``compile(on_nan=...)``).
ON_NAN = ("stop", "skip")
# Terms and gradient groups that a non-finite report can name.
_REPORT_SLOTS = 32


class NonFiniteError(FloatingPointError):
    """A training step produced a NaN or Inf (``on_nan="stop"``). The step's update was
    not applied: the model holds the weights from before that step."""


class _NonFiniteMonitor:
    """Device-side record of non-finite steps, read on the host after each execution.

    A plain object, so Keras and TensorFlow do not track its variables: they are never
    saved with a model. Created in the model's strategy scope, so replicas share them.
    """

    def __init__(self) -> None:
        def variable(shape, dtype):
            return tf.Variable(
                tf.zeros(shape, dtype), trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )

        self.step = variable([], tf.int64)  # training steps since ``fit`` began
        self.bad_step = variable([], tf.int64)  # the first unreported non-finite step (1-based), 0: none
        self.skipped = variable([], tf.int64)  # steps whose update was not applied
        self.flags = variable([_REPORT_SLOTS], tf.float32)  # replicas that saw a non-finite value, per slot
        self.values = variable([_REPORT_SLOTS], tf.float32)  # each slot's value (mean over replicas)
        self.batch = variable([6], tf.float32)  # input batch: examples, values, min, max, sum, non-finite values
        self.names: list[str] = []

    def reset(self) -> None:
        for v in (self.step, self.bad_step, self.skipped):
            v.assign(tf.zeros_like(v))

    def report(self) -> str:
        step = int(self.bad_step.numpy())
        flags, values, batch = self.flags.numpy(), self.values.numpy(), self.batch.numpy()
        named = list(zip(self.names, flags, values))
        bad = [f"{name} = {value:g}" for name, flag, value in named if flag > 0]
        fine = [f"{name} = {value:g}" for name, flag, value in named if flag == 0]
        examples, count, low, high, total, nonfinite = batch
        stats = (
            f"input batch: {int(examples)} examples, min {low:g}, max {high:g}, "
            f"mean {total / max(count - nonfinite, 1):g} (of the finite values), {int(nonfinite)} non-finite values"
        )
        return (
            f"non-finite value at training step {step} of this fit: {', '.join(bad) or '?'} "
            f"(finite: {', '.join(fine) or 'none'}; grad(...) is the gradient norm); {stats}"
        )


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

    Training, for every subclass: the step weights each replica's gradient by its
    share of the global batch (``tf.distribute``), draws noise per replica
    (``_next_seed``), applies no update when a term or gradient is NaN or Inf
    (``compile(on_nan="stop" | "skip")``), and logs means over the global batch. A
    subclass with its own ``train_step`` (two optimizers, say) gets all of it by
    computing its terms under its tapes and returning
    ``self._apply_updates(x, terms, [(tape, term, optimizer, variables), ...])``.
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

        # Distributions and densities stay float32 under a mixed-precision policy: only the
        # networks compute in float16 (their outputs are cast to float32 before the heads).
        self.posterior = self._make_posterior(posterior)
        self.likelihood = likelihood_head(
            likelihood, self.data_shape, name="likelihood", dtype="float32", **self.likelihood_options
        )
        self.prior = self._make_prior(prior)
        self._check_size()
        nets = {"hidden_units": self.hidden_units, "conv_filters": self.conv_filters, "activation": activation}
        self.encoder = self._make_encoder(nets)
        self.decoder = build_decoder(
            network, self.decoder_input_units(), self.likelihood.network_output_shape, name="decoder", **nets
        )
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self._estimators: dict[int, Any] = {}
        self.on_nan = "stop"
        self._monitor = _NonFiniteMonitor()
        self._executions_to_skip = 0
        self.build((None,) + self.data_shape)

    # ------------------------------------------------------------------ construction

    def _make_posterior(self, posterior: str):
        """The head of q(z|x) for the ``posterior`` argument (a model with its own kind of
        posterior overrides this; the encoder is sized by the head's ``num_params``).
        None: the model has no encoder network (it infers z otherwise)."""
        return posterior_head(posterior, self.latent_dim, name="posterior", dtype="float32")

    def _make_encoder(self, nets: dict[str, Any]) -> keras.layers.Layer:
        """The encoder network: x -> the posterior head's parameters; for a model without
        posterior head, the identity (``encode`` and ``call`` then read x itself)."""
        if self.posterior is None:
            encoder = keras.layers.Identity(name="encoder")
            encoder.build((None,) + self.data_shape)
            return encoder
        return build_encoder(self.network, self.data_shape, self.encoder_output_units(), name="encoder", **nets)

    def _make_prior(self, prior):
        if prior is None:
            return StandardNormalPrior(self.latent_dim, name="prior", dtype="float32")
        if isinstance(prior, dict):
            prior = keras.saving.deserialize_keras_object(prior)
        if getattr(prior, "latent_dim", self.latent_dim) != self.latent_dim:
            raise ValueError(f"prior has latent_dim {prior.latent_dim}, the model {self.latent_dim}")
        return prior

    def _check_size(self) -> None:
        """Refuse a configuration (e.g. from a tampered file) whose networks could not be
        held in memory, before building them: ``MemoryError`` instead of an abort."""
        pixels, channels = self.data_shape, self.data_shape[-1]
        estimate, flat = 0, math.prod(pixels)
        networks = 1 if self.posterior is None else 2  # the decoder, and the encoder if any
        if self.network == "conv" and len(pixels) == 3:
            height, width = pixels[0], pixels[1]
            for filters in self.conv_filters:
                estimate += networks * 16 * channels * filters  # 4x4 kernels
                channels, height, width = filters, -(-height // 2), -(-width // 2)
            flat = height * width * channels
        output = flat if self.network == "conv" else math.prod(self.likelihood.network_output_shape)
        dense = [[self.decoder_input_units(), *reversed(self.hidden_units), output]]
        if self.posterior is not None:
            dense.append([flat, *self.hidden_units, self.encoder_output_units()])
        for widths in dense:
            estimate += sum(a * b for a, b in itertools.pairwise(widths))
        _ensure_memory(4 * 4 * estimate, f"a {type(self).__name__} of about {estimate:.3g} weights (with its optimizer state)")

    def encoder_output_units(self) -> int:
        """Width of the encoder's output: the posterior head's parameters."""
        return self.posterior.num_params

    def decoder_input_units(self) -> int:
        """Width of the decoder's input: z (conditional models add the label)."""
        return self.latent_dim

    def build(self, input_shape=None):
        for head in (self.posterior, self.likelihood, self.prior):
            if head is not None and not head.built:
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

    @classmethod
    def from_preset(cls, handle: str, download: bool = True, progress: bool | None = None) -> BaseVAE:
        """Load a preset (name, folder or URL; see ``vaezoo.presets``) as this class.

        Example:
            >>> from vaezoo.models import VAE
            >>> VAE.from_preset("vae_mlp_binarized_mnist").latent_dim
            32
        """
        from vaezoo.presets import PresetError, from_preset

        model = from_preset(handle, download, progress)
        if not isinstance(model, cls):
            raise PresetError(f"preset {handle!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # ------------------------------------------------------------------ the model

    def _next_seed(self) -> tf.Tensor:
        """A fresh stateless seed pair for this step's noise. Under ``tf.distribute`` the
        replica id is folded in, so replicas never draw the same noise."""
        return distribute.fold_replica_id(tf.cast(self.seed_generator.next(), tf.int32))

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

    def _log(
        self, terms: dict[str, tf.Tensor], x: tf.Tensor | None = None, applied: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """Update the metrics with this step's terms and return the logs.

        Each term is weighted by the examples of the replica's batch ``x`` (1 when
        ``x`` is None), so metrics are means over the global batch and the epoch.
        A step whose update was not applied (``applied`` False) adds nothing.
        """
        weight = tf.constant(1.0) if x is None else tf.cast(tf.shape(x)[0], tf.float32)
        if applied is not None:
            weight = tf.where(applied, weight, 0.0)
        for name, tracker in self.trackers.items():
            value = tf.cast(terms[name], tf.float32)
            if x is not None or applied is not None:
                value = tf.where(weight > 0, value, 0.0)  # an empty or skipped batch adds nothing, not 0 * NaN
            tracker.update_state(value, sample_weight=weight)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if distribute.is_multi_worker():
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _with_regularisers(self, terms):
        if self.losses:
            terms = {**terms, "loss": terms["loss"] + tf.add_n([tf.cast(l, tf.float32) for l in self.losses])}
        return terms

    def _step_inputs(self, data) -> tuple[tf.Tensor, Any]:
        """``(x, the input of objective)`` of a training batch: x itself here (a model
        that takes labels pairs them with x)."""
        x = self._unpack(data)
        return x, x

    def optimizer_variables(self) -> list:
        """The variables that the compiled optimizer updates, along the gradient of
        ``loss``: every trainable variable, unless a subclass leaves some to another
        optimizer (:class:`vaezoo.models.players.Players`) or to another stage of training.

        Example:
            >>> import vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> len(model.optimizer_variables()) == len(model.trainable_variables)
            True
        """
        return self.trainable_variables

    def players(self) -> list[tuple[str, Any, list]]:
        """``(term, optimizer, variables)`` of each optimizer of a training step: here the
        compiled optimizer, minimising ``loss`` over ``optimizer_variables()``; a model
        trained by several players (:class:`vaezoo.models.players.Players`) lists each."""
        return [("loss", getattr(self, "optimizer", None), self.optimizer_variables())]

    def _build_optimizers(self, partial_only: bool = False) -> None:
        """Build each optimizer of ``players()`` that is not built yet over its variables;
        with ``partial_only``, only those that update a part of the trainable variables
        (where Keras would build them over all of them, in ``fit`` under ``tf.distribute``)."""
        every = len(self.trainable_variables)
        for _, optimizer, variables in self.players():
            if optimizer is not None and not optimizer.built and not (partial_only and len(variables) == every):
                optimizer.build(variables)

    def train_step(self, data):
        x, inputs = self._step_inputs(data)
        with tf.GradientTape() as tape:
            terms = self._with_regularisers(self.objective(inputs, training=True))
        return self._apply_updates(x, terms, [(tape, "loss", self.optimizer, self.optimizer_variables())])

    def _apply_updates(self, x: tf.Tensor, terms: dict[str, tf.Tensor], updates: Sequence[tuple]) -> dict[str, tf.Tensor]:
        """One training step's updates, guarded, and its logs; every ``train_step`` ends here.

        Args:
            x: the replica's input batch (for the batch size and the report).
            terms: ``objective``'s terms, computed under the tapes.
            updates: ``(tape, term, optimizer, variables)`` tuples: each optimizer
                minimises ``terms[term]`` over its variables, with the gradient from its
                tape (a model with two players passes two tuples and two tapes).

        Under ``tf.distribute`` each replica's gradient is weighted by its share of the
        global batch (the optimizers sum gradients over replicas), so the update is the
        gradient of the global-batch mean whatever the split. If any term or gradient
        is NaN or Inf on any replica, no update of this step is applied, the step is
        recorded, and ``on_nan`` (see ``compile``) decides what happens next.
        """
        monitor = self._monitor
        monitor.step.assign_add(1)
        halted = tf.logical_and(tf.constant(self.on_nan == "stop"), monitor.bad_step > 0)
        replicas = distribute.replicas_in_sync()
        context = tf.distribute.get_replica_context()
        examples = tf.cast(tf.shape(x)[0], tf.float32)
        # (float: MirroredStrategy cannot all-reduce int32 inside Keras's steps_per_execution loop)
        total = examples if replicas == 1 else context.all_reduce(tf.distribute.ReduceOp.SUM, examples)
        grads = []
        for tape, term, optimizer, variables in updates:
            variables = list(variables)
            target = terms[term]
            if replicas == 1 and optimizer.loss_scale_factor is None and not _scales_loss(optimizer):
                grads.append(tape.gradient(target, variables))
                continue
            share = tf.cast(examples / tf.maximum(total, 1.0), target.dtype)
            grads.append(tape.gradient(target, variables, output_gradients=optimizer.scale_loss(share)))
        finite = self._check_finite(x, terms, updates, grads)
        applied = tf.logical_and(tf.logical_and(finite, tf.logical_not(halted)), total > 0)
        monitor.skipped.assign_add(tf.cast(tf.logical_and(tf.logical_not(applied), total > 0), tf.int64))
        for (_, _, optimizer, variables), step_grads in zip(updates, grads):
            _apply_if(applied, optimizer, step_grads, list(variables))
        return self._log(terms, x, applied)

    def _check_finite(self, x, terms, updates, grads) -> tf.Tensor:
        """Whether every floating term and gradient is finite on every replica; on the
        first failure, record the step, each slot's value and the batch statistics."""
        names, flags, values = [], [], []
        for name, value in terms.items():
            if isinstance(value, tf.Tensor) and value.dtype.is_floating:
                names.append(name)
                flags.append(tf.logical_not(tf.reduce_all(tf.math.is_finite(value))))
                values.append(tf.reduce_mean(tf.cast(value, tf.float32)))
        grad_slots = []
        for (_, term, optimizer, _), step_grads in zip(updates, grads):
            present = [g for g in step_grads if g is not None]
            if not present or _scales_loss(optimizer):  # a loss-scale optimizer skips non-finite steps itself
                continue
            # A gradient element whose square overflows counts as non-finite too: it would
            # overflow Adam's second moment, which turns to NaN one step later.
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.square(g))) for g in present])
            names.append(f"grad({term})")
            flags.append(tf.logical_not(finite))
            grad_slots.append(present)
        if grad_slots:
            # The gradient norms are for the report only, so they are computed on a failing
            # step alone (benchmarks/README.md, "Profile", measures the guard's cost).
            failing = tf.reduce_any(tf.stack(flags))
            norms = tf.cond(
                failing,
                lambda: [tf.cast(tf.linalg.global_norm(slot), tf.float32) for slot in grad_slots],
                lambda: [tf.constant(0.0)] * len(grad_slots),
            )
            values += list(norms)
        names, flags, values = names[:_REPORT_SLOTS], flags[:_REPORT_SLOTS], values[:_REPORT_SLOTS]
        monitor = self._monitor
        monitor.names = names
        pad = [0] * (_REPORT_SLOTS - len(names))
        nonempty = tf.cast(tf.shape(x)[0] > 0, tf.float32)  # an empty replica batch has NaN means, not errors
        flags = tf.concat([tf.cast(tf.stack(flags), tf.float32) * nonempty, tf.constant(pad, tf.float32)], 0)
        values = tf.concat([tf.where(nonempty > 0, tf.stack(values), 0.0), tf.constant(pad, tf.float32)], 0)
        batch = _batch_statistics(x)
        if distribute.replicas_in_sync() > 1:
            context = tf.distribute.get_replica_context()
            flags = context.all_reduce(tf.distribute.ReduceOp.SUM, flags)
            values = context.all_reduce(tf.distribute.ReduceOp.MEAN, values)
            # Each replica fills its own row; the sum is the gather (all_gather fails like int32).
            own = tf.equal(tf.range(context.num_replicas_in_sync), context.replica_id_in_sync_group)
            gathered = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(own[:, None], batch[None, :], 0.0))
            sums = tf.reduce_sum(gathered, 0)
            batch = tf.stack(
                [sums[0], sums[1], tf.reduce_min(gathered[:, 2]), tf.reduce_max(gathered[:, 3]), sums[4], sums[5]]
            )
        finite = tf.equal(tf.reduce_sum(flags), 0.0)
        record = tf.logical_and(tf.logical_not(finite), tf.equal(monitor.bad_step, 0))
        monitor.flags.assign(tf.where(record, flags, monitor.flags))
        monitor.values.assign(tf.where(record, values, monitor.values))
        monitor.batch.assign(tf.where(record, batch, monitor.batch))
        monitor.bad_step.assign(tf.where(record, monitor.step, monitor.bad_step))
        return finite

    def compile(self, *args: Any, on_nan: str = "stop", **kwargs: Any) -> None:
        """``keras.Model.compile`` plus ``on_nan``, what a training step does when a loss
        term or gradient is NaN or Inf (checked on every step, also under XLA):

        - ``"stop"`` (default): the step's update is not applied and ``fit`` raises
          :class:`NonFiniteError` naming the step, each term's value and the input
          batch's statistics; the model keeps the weights from before that step.
        - ``"skip"``: the step's update is not applied, a warning names it, and
          training goes on; ``nonfinite_steps`` counts the skipped steps.

        Example:
            >>> import vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.compile(optimizer="adam", on_nan="skip")
            >>> model.get_compile_config()["on_nan"]
            'skip'
        """
        if on_nan not in ON_NAN:
            raise ValueError(f"on_nan must be one of {', '.join(map(repr, ON_NAN))}, got {on_nan!r}")
        super().compile(*args, **kwargs)
        self.on_nan = on_nan

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Recompile a loaded model as it was compiled (Keras skips models whose
        ``compile`` is overridden unless they define this), each optimizer built over
        the variables it updates (Keras would build the compiled one over all of them)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self._build_optimizers()

    def get_compile_config(self) -> dict[str, Any] | None:
        config = super().get_compile_config()
        if config:  # {} when not compiled: then nothing to restore
            config["on_nan"] = self.on_nan
        return config

    @property
    def nonfinite_steps(self) -> int:
        """Training steps of the last ``fit`` whose update was not applied because a
        term or gradient was NaN or Inf.

        Example:
            >>> import vaezoo
            >>> vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2).nonfinite_steps
            0
        """
        return int(self._monitor.skipped.numpy())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras builds a model under ``tf.distribute`` from the first batch, reduced
        over replicas with MEAN; MultiWorkerMirroredStrategy's reduce refuses a batch
        that is a tuple, such as the ``(x, y)`` pairs of a conditional model. A batch
        only gives shapes here, so this builds from the first replica's share instead."""
        strategy = self._distribute_strategy
        if iterator is None or strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        def share(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(share, next(batches))
            break
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def make_train_function(self, force: bool = False):
        """Keras's train function, wrapped: after each execution the host reads the
        non-finite record (raising or warning, per ``on_nan``), and executions that a
        resumed run has already done (``_executions_to_skip``) are passed over."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=force)
        run = self.train_function

        def train_function(iterator):
            if self._executions_to_skip > 0:
                self._executions_to_skip -= 1
                return self.get_metrics_result()
            logs = run(iterator)
            self._after_execution()
            return logs

        self.train_function = train_function
        return train_function

    def _after_execution(self) -> None:
        monitor = self._monitor
        if int(monitor.bad_step.numpy()) == 0:
            return
        report = monitor.report()
        if self.on_nan == "stop":
            self.stop_training = True
            raise NonFiniteError(
                f"{type(self).__name__} '{self.name}': {report}. The update was not applied: the model "
                "keeps the weights from before that step. Lower the learning rate, check the data, "
                "or compile with on_nan='skip'."
            )
        warnings.warn(f"{type(self).__name__} '{self.name}' skipped a step: {report}", RuntimeWarning, stacklevel=2)
        monitor.bad_step.assign(0)

    def test_step(self, data):
        x, inputs = self._step_inputs(data)
        return self._log(self._with_regularisers(self.objective(inputs, training=False)), x)

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
        return self._check(x, name, self.likelihood.check_support)

    def _check(self, x, name: str, support) -> np.ndarray:
        """``check_data`` with any support check (or None); validates big arrays in
        chunks and broadcast views by their distinct values, without copying them whole."""
        arr = np.asarray(x)
        structured = arr.dtype.kind in "biuf" and arr.shape[1:] == self.data_shape and arr.ndim > 0 and len(arr) > 0
        broadcast = [i for i, (n, stride) in enumerate(zip(arr.shape, arr.strides)) if n > 1 and stride == 0]
        if not structured or (not broadcast and arr.size <= _CHECK_CHUNK):
            return validation.check_array(arr, self.data_shape, name, support)
        if broadcast:
            # A broadcast view (stride 0) repeats its values: check the distinct ones, and
            # return a float32 view of the full shape, never the full array.
            distinct = arr[tuple(slice(0, 1) if i in broadcast else slice(None) for i in range(arr.ndim))]
            checked = validation.check_array(distinct, distinct.shape[1:], name, support)
            return np.broadcast_to(checked, arr.shape)
        copy = arr.dtype != np.float32
        _ensure_memory(4 * arr.size if copy else 0, f"{name} as float32 (shape {arr.shape})")
        out = np.empty(arr.shape, np.float32) if copy else arr
        rows = max(1, _CHECK_CHUNK // math.prod(self.data_shape))
        for start in range(0, len(arr), rows):
            stop = min(start + rows, len(arr))
            chunk = validation.check_array(arr[start:stop], self.data_shape, f"{name}[{start}:{stop}]", support)
            if copy:
                out[start:stop] = chunk
        return out

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
        checked = self.check_data(data, name)
        # Keras copies arrays into TensorFlow: refuse one that would not fit in memory
        # (e.g. a broadcast view of a huge shape) before it tries.
        _ensure_memory(checked.size * checked.itemsize, f"{name} (shape {checked.shape}) copied into TensorFlow")
        return checked

    def _checked_dataset(self, dataset: tf.data.Dataset, name: str) -> tf.data.Dataset:
        if getattr(dataset, "_vaezoo_checked", False):
            return dataset
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
        self._monitor.reset()
        self._build_optimizers(partial_only=True)
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
        """``_log_weights`` for ``num_samples`` samples, compiled; called with a batch, its
        labels where the model takes them (``_with_labels``) and a seed."""
        if num_samples not in self._estimators:
            self._estimators[num_samples] = tf.function(
                lambda *batch_and_seed: self._log_weights(*batch_and_seed, num_samples),
                jit_compile=True,
                reduce_retracing=True,
            )
        return self._estimators[num_samples]

    def _with_labels(self, x: np.ndarray, *labels) -> tuple[np.ndarray, ...]:
        """The checked examples ``x`` and, for a model that takes labels, the checked
        label arrays that the estimates and ``reconstruct`` pass on with each batch of
        ``x`` (its public methods' ``labels``); none here."""
        return (x,)

    def _chunk_size(self, batch_size: int) -> int:
        """Samples per example drawn at once by the estimates, so that the floats alive at
        once (about ``per_sample`` per sample and example) stay near ``_ESTIMATE_BUDGET``:
        the likelihood's parameters and log-densities, or every decoder activation (and
        its pre-activation) where those are more, as in convolutional decoders."""
        heads = 4 * math.prod(self.likelihood.network_output_shape) + 2 * sum(self.hidden_units)
        decoder = 2 * sum(math.prod(layer.output.shape[1:]) for layer in self.decoder.layers)
        per_sample = max(heads, decoder) + 4 * self.latent_dim
        return max(1, _ESTIMATE_BUDGET // (batch_size * per_sample))

    def importance_estimates(
        self, x, num_samples: int, batch_size: int = 100, seed: int = 0, verbose: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-example (ELBO estimate, log p(x) estimate) from ``num_samples`` samples of q.

        The log-likelihood estimate is the importance-weighted bound of Burda et al.
        (2016), log (1/k) sum_s w_s, computed in log space; samples are drawn in chunks
        so memory stays bounded for any k. Noise is stateless: same seed, same numbers.
        """
        return self._importance_estimates(x, (), num_samples, batch_size, seed, verbose)

    def _importance_estimates(
        self, x, labels: tuple, num_samples: int, batch_size: int, seed: int, verbose: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``importance_estimates`` of ``x`` given the ``labels`` of a model that takes
        them (checked by ``_with_labels``; each batch's go to ``_log_weights`` after x)."""
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        x, *labels = self._with_labels(self.check_data(x), *labels)
        chunk = min(int(num_samples), self._chunk_size(batch_size))
        elbo, log_px = [], []
        progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="example")
        for b, start in enumerate(range(0, len(x), batch_size)):
            xb, *label_batches = (tf.constant(a[start : start + batch_size]) for a in (x, *labels))
            total = tf.zeros([len(xb)], tf.float64)
            lse = tf.fill([len(xb)], tf.constant(-np.inf, tf.float64))
            for c, begin in enumerate(range(0, num_samples, chunk)):
                n = min(chunk, num_samples - begin)
                seed_t = tf.constant([seed, b * 1_000_003 + c], tf.int32)
                logw = tf.cast(self._estimator(n)(xb, *label_batches, seed_t), tf.float64)
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
        return self._sample(n, seed, mean)

    def _sample(self, n: int, seed: int, mean: bool, labels=None) -> np.ndarray:
        """``sample``, decoded at the labels that ``_sample_labels`` makes of ``labels``."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        n = int(n)
        given = self._sample_labels(n, seed, labels)
        _ensure_memory(n * 4 * math.prod(self.likelihood.network_output_shape), f"{n} samples")
        eps = tf.random.stateless_normal((n,) + self.prior.noise_shape, seed=[seed, 0])
        params = self.decoder_params(self.prior.from_noise(eps), *given)
        if mean:
            return self.likelihood.mean(params).numpy()
        return self.likelihood.distribution(params).sample(seed=tf.constant([seed, 1])).numpy()

    def _sample_labels(self, n: int, seed: int, labels) -> tuple:
        """The labels of ``n`` samples that ``decoder_params`` takes after z, made from
        ``sample``'s ``labels`` by a model that takes them; none here."""
        return ()

    def reconstruct(self, x, batch_size: int = 256) -> np.ndarray:
        """The deterministic reconstruction of every example of ``x`` (see ``call``).

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
            >>> model.reconstruct(np.zeros((3, 28, 28, 1))).shape
            (3, 28, 28, 1)
        """
        return self._reconstruct(x, (), batch_size)

    def _reconstruct(self, x, labels: tuple, batch_size: int) -> np.ndarray:
        """``reconstruct`` of ``x`` given the ``labels`` of a model that takes them
        (checked by ``_with_labels``; each batch's go to ``_reconstruction`` after x)."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        x, *labels = self._with_labels(self._check(x, "x", None), *labels)
        _ensure_memory(x.size * 4, f"the reconstruction of {len(x)} examples")
        arrays = (x, *labels)
        return np.concatenate(
            [np.asarray(self._reconstruction(*(a[i : i + batch_size] for a in arrays))) for i in range(0, len(x), batch_size)]
        )

    def _reconstruction(self, x, *labels):
        """``call`` on a batch ``x`` (with its labels: ``call((x, *labels))``)."""
        return self((x, *labels) if labels else x)


def trusted_dataset(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Mark ``dataset`` as made from arrays that ``check_data`` has already validated,
    so that ``fit`` does not check its batches again (``vaezoo.training.train`` does so).

    Example:
        >>> import numpy as np
        >>> data = trusted_dataset(tf.data.Dataset.from_tensor_slices(np.zeros((4, 2))).batch(2))
        >>> data._vaezoo_checked
        True
    """
    dataset._vaezoo_checked = True
    return dataset


def _scales_loss(optimizer) -> bool:
    """Whether ``optimizer`` is a loss-scale optimizer (mixed precision), which skips
    steps with non-finite gradients itself."""
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def _apply_if(applied: tf.Tensor, optimizer, grads: list, variables: list) -> None:
    """``optimizer.apply(grads, variables)`` when ``applied`` is True, in one or all replicas.

    ``applied`` is the same on every replica. Where the strategy runs replicas without
    merge calls (none, multi-worker), a ``tf.cond`` in the replica does it; otherwise
    (``MirroredStrategy``) the condition moves to the cross-replica context, as Keras's
    ``LossScaleOptimizer`` does, because a replica-context ``cond`` cannot hold a merge call.
    """
    if not optimizer.built:
        optimizer.build(variables)

    def apply():
        optimizer.apply(grads, variables)
        return tf.constant(True)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(applied, apply, lambda: tf.constant(False))
        return

    def cross_replica(distribution, applied, grads):
        def apply_each():
            distribution.extended.call_for_each_replica(optimizer.apply, args=(grads, variables))
            return tf.constant(True)

        tf.cond(distribution.experimental_local_results(applied)[0], apply_each, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(applied, grads))


def _batch_statistics(x: tf.Tensor) -> tf.Tensor:
    """[examples, values, min, max, sum, non-finite count] of a batch; min, max and sum
    over its finite values."""
    values = tf.reshape(tf.cast(x, tf.float32), [-1])
    finite = tf.math.is_finite(values)
    return tf.stack(
        [
            tf.cast(tf.shape(x)[0], tf.float32),
            tf.cast(tf.size(values), tf.float32),
            tf.reduce_min(tf.where(finite, values, np.inf)),
            tf.reduce_max(tf.where(finite, values, -np.inf)),
            tf.reduce_sum(tf.where(finite, values, 0.0)),
            tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.float32)),
        ]
    )


def _available_memory() -> int | None:
    """Bytes of memory available to this process (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _ensure_memory(needed: int, what: str) -> None:
    """Raise ``MemoryError`` before allocating ``needed`` bytes if they exceed half the
    available memory."""
    available = _available_memory()
    if available is not None and needed > available // 2:
        raise MemoryError(
            f"{what} needs {needed / 2**30:.1f} GiB, more than half of the {available / 2**30:.1f} GiB "
            "of memory available; pass fewer examples at a time (e.g. a tf.data.Dataset of batches)"
        )
