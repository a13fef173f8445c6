"""Training throughput of vaezoo next to pythae (PyTorch), in one interleaved run.

What is measured (GitHub issue 8):

- Training samples/s, steady state, of the MLP VAE 784-512-16 (``create_model("vae",
  hidden_units=(512,), latent_dim=16)``: ReLU, Bernoulli likelihood, Adam) on
  Fashion-MNIST binarized at 0.5, and of ``create_model("conv_vae")`` (continuous
  Bernoulli) on Fashion-MNIST in [0, 1], for each batch size, XLA off/on,
  ``steps_per_execution`` values and precisions (float32, ``mixed_float16``, ...).
- The same network, batch and examples in pythae (``benchmarks/peers/pythae_vae.py``,
  run by ``--peer-python`` in its own virtual environment): a raw PyTorch loop over
  pythae's ``VAE`` and pythae's ``TrainingPipeline``. pythae's BCE on sigmoid outputs
  is the Bernoulli log-likelihood vaezoo computes from logits; for the conv VAE pythae
  has no continuous Bernoulli, and the BCE it runs instead lacks only the per-pixel
  log-normaliser (a few elementwise operations next to the convolutions).
- For the profile (``--extras`` networks; ``--profile`` runs it alone), in the same
  run: the guard ablation, vaezoo's model with pieces of ``BaseVAE``'s guarded
  training step taken out (``ABLATIONS``: the host read of the non-finite record
  after each execution, the gradient check or its per-gradient reductions, the whole
  check), with Keras's plain ``train_step``, and a minimal hand-written Keras VAE (the
  same arithmetic, no TFP); the GEMM floor of the MLP, its dense GEMMs alone
  (forward, weight and input gradients of one training step, the exact shapes) as a
  ``tf.function`` (XLA on and off) and in PyTorch through the peer, which gives each
  framework's GFLOP/s and the samples/s that bound its training; and the input
  pipeline: numpy arrays given to ``fit`` against a ``tf.data`` pipeline (cache,
  shuffle, batch, prefetch), through vaezoo's ``fit`` (which checks each batch) and
  through ``keras.Model.fit``.
- Evaluation speed: ``log_likelihood`` with k importance samples on a subset of the
  binarized-MNIST test split, extrapolated to the whole 10k split (and pythae's
  ``get_nll`` on the same kind of subset).
- Peak RSS of training at batch 1024 (``resource.getrusage`` and ``VmHWM`` in a child
  process), for vaezoo and for the pythae raw loop.

Method: within each comparison (network, batch size) every variant is built and warmed
up first (two short ``fit`` calls: the first traces and compiles, the second does not;
their difference is reported as the compile time), then the variants run one epoch
each in turn, A B C ... A B C ..., for ``--rounds`` rounds; an epoch is timed between
Keras's ``on_epoch_begin`` and ``on_epoch_end`` (pythae: its epoch callbacks; the raw
loop: around the loop), in wall-clock and in process CPU seconds, and its size is
chosen per variant to take about ``--seconds`` (at least ``--min-examples``). The
medians over rounds are reported, samples/s and samples per CPU-second (the steadier
measure on a machine shared with other jobs), with ratios to the pythae runs of the
same comparison. Every step has a full batch. Threads: ``--threads N`` gives TensorFlow
(intra- and inter-op) and PyTorch N threads each; on a machine shared with other jobs,
thread pools larger than the free cores can slow down by an order of magnitude, which
would measure the scheduler rather than the frameworks.

Prints JSON (also to ``--json FILE``) and markdown tables (also to ``--markdown FILE``);
the profile section gives each profile row's samples per CPU-second, its ratio to the
full vaezoo step and to pythae's raw loop, and its fraction of its framework's GEMM floor.

Examples:
    $ python benchmarks/throughput.py --threads 1 --json throughput.json
    $ python benchmarks/throughput.py --profile --threads 1 --xla on --spe 16 1 --no-eval --no-rss
    $ python benchmarks/throughput.py --networks mlp --batch-sizes 128 --rounds 3
    $ python benchmarks/throughput.py --smoke      # seconds; no peer; checks the machinery
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PEER_SCRIPT = REPO / "benchmarks" / "peers" / "pythae_vae.py"
DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"
SCHEMA_VERSION = 1

#: network -> (registry name, overrides, binarized data)
NETWORKS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "mlp": ("vae", {"hidden_units": (512,), "latent_dim": 16}, True),
    "conv": ("conv_vae", {}, False),
}
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
INPUTS = ("numpy", "tf.data", "tf.data-unchecked")
#: Issue 8's targets: vaezoo samples/s over the pythae raw loop's, MLP, per batch size.
TARGETS = {128: 2.0, 1024: 1.2}
#: Issue 8's GPU target for the conv VAE: XLA on over XLA off (same spe and precision).
CONV_XLA_TARGET = 1.5
#: Examples in a training epoch at most (a multiple of 16 * 1024 and of 16 * 128).
MAX_EXAMPLES = 49152
#: The guard ablation: each framework is vaezoo's model with these pieces of
#: ``BaseVAE``'s training step taken out (see ``_ablated_class``).
ABLATIONS: dict[str, tuple[str, ...]] = {
    "vaezoo": (),
    "vaezoo-no-host-read": ("host-read",),
    "vaezoo-terms-check": ("gradient-check",),
    "vaezoo-norm-check": ("per-gradient-check",),
    "vaezoo-no-check": ("check",),
    "vaezoo-no-guard": ("check", "host-read"),
    "vaezoo-plain-step": ("host-read", "step"),
}
#: Frameworks timed for the profile of an ``--extras`` network, next to vaezoo and pythae.
PROFILE_FRAMEWORKS = (*[name for name in ABLATIONS if name != "vaezoo"], "keras-minimal")
#: The GEMM floors: the dense GEMMs of a training step alone, in TensorFlow (XLA on and
#: off, whatever ``--xla`` says) and in PyTorch.
GEMM_FRAMEWORKS = ("gemm-tf", "gemm-torch")
#: Networks made of dense layers alone, which get a GEMM floor (``dense_gemms``).
DENSE_NETWORKS = ("mlp",)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of training a network at one batch size.

    Attributes:
        framework: ``vaezoo``, an ablation of it (``ABLATIONS``), ``keras-minimal``
            (see benchmarks/README.md), ``pythae``, or a GEMM floor (``gemm-tf``,
            ``gemm-torch``: the dense GEMMs of the MLP's training step alone).
        xla: Keras ``jit_compile``.
        spe: Keras ``steps_per_execution``.
        precision: the Keras dtype policy the model is built under.
        input: how the examples reach ``fit`` (one of ``INPUTS``).
        mode: pythae's ``raw`` loop or its ``pipeline``.
    """

    framework: str
    xla: bool = False
    spe: int = 1
    precision: str = "float32"
    input: str = "numpy"
    mode: str = ""

    @property
    def label(self) -> str:
        """The variant's name in the report, e.g. ``vaezoo xla=on spe=16 float32``."""
        if self.framework == "pythae":
            return f"pythae {self.mode}"
        if self.framework == "gemm-torch":
            return "gemm-torch (dense GEMMs alone)"
        if self.framework == "gemm-tf":
            return f"gemm-tf xla={'on' if self.xla else 'off'} (dense GEMMs alone)"
        label = f"{self.framework} xla={'on' if self.xla else 'off'} spe={self.spe} {self.precision}"
        return label if self.input == "numpy" else f"{label} {self.input}"


@dataclasses.dataclass
class Measured:
    """A variant's runner and its timings (samples/s of each round, wall and CPU)."""

    variant: Variant
    runner: Any = None
    examples: int = 0
    first_fit_s: float | None = None
    compile_s: float | None = None
    rates: list[float] = dataclasses.field(default_factory=list)
    cpu_rates: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None


# --------------------------------------------------------------------------- data


def load_images(network: str, split: str, limit: int, smoke: bool) -> tuple[np.ndarray, str]:
    """Fashion-MNIST (binarized for the MLP) for ``network``; synthetic in ``--smoke``
    mode when the files are not there. Returns the images and where they came from."""
    from vaezoo import datasets

    binarize = NETWORKS[network][2]
    try:
        data = datasets.load("fashion_mnist", download=False, binarize=binarize, limit=limit)
        return getattr(data, split).x, "fashion_mnist" + (" binarized at 0.5" if binarize else "")
    except datasets.DataUnavailableError:
        if not smoke:
            raise
    images = np.random.default_rng(0).random((limit, 28, 28, 1), dtype=np.float32)
    return (images > 0.5).astype(np.float32) if binarize else images, "synthetic (smoke)"


def load_binarized_mnist_test(limit: int, smoke: bool) -> tuple[np.ndarray, str]:
    """The binarized-MNIST test split (first ``limit`` examples); synthetic in smoke mode
    when the files are not there."""
    from vaezoo import datasets

    try:
        return datasets.load("binarized_mnist", download=False, limit=limit).test.x, "binarized_mnist test"
    except datasets.DataUnavailableError:
        if not smoke:
            raise
    return (np.random.default_rng(1).random((limit, 28, 28, 1)) > 0.5).astype(np.float32), "synthetic (smoke)"


# --------------------------------------------------------------------------- Keras runners


def _keras_classes() -> dict[str, Any]:
    """The Keras classes of this benchmark, defined once TensorFlow is imported (after
    ``main`` has set the thread counts)."""
    if "classes" in _CACHE:
        return _CACHE["classes"]
    from vaezoo._tf import keras, tf

    class EpochTimer(keras.callbacks.Callback):
        """Wall and process CPU seconds from ``on_epoch_begin`` to ``on_epoch_end``."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds = self.cpu_seconds = math.nan
            self._start = self._cpu_start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start, self._cpu_start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds = time.perf_counter() - self._start
            self.cpu_seconds = time.process_time() - self._cpu_start

    class MinimalVAE(keras.Model):
        """vaezoo's VAE arithmetic written by hand: Keras layers, ``tf`` ops, no TFP,
        one loss metric and Keras's plain training step.

        The posterior scale is softplus + 1e-4, z = loc + scale * eps, KL is the
        closed form against N(0, I), and the likelihood is Bernoulli (``mlp``) or
        continuous Bernoulli (``conv``) from logits, as in vaezoo.
        """

        def __init__(self, network: str, data_shape: tuple[int, ...], latent_dim: int = 16, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            layers = keras.layers
            self.continuous = network == "conv"
            if network == "mlp":
                encoder = [layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dense(2 * latent_dim)]
                decoder = [
                    layers.Dense(512, activation="relu"),
                    layers.Dense(math.prod(data_shape)),
                    layers.Reshape(data_shape),
                ]
            else:
                start = (data_shape[0] // 4, data_shape[1] // 4, 64)
                encoder = [
                    layers.Conv2D(32, 4, strides=2, padding="same", activation="relu"),
                    layers.Conv2D(64, 4, strides=2, padding="same", activation="relu"),
                    layers.Flatten(),
                    layers.Dense(256, activation="relu"),
                    layers.Dense(2 * latent_dim),
                ]
                decoder = [
                    layers.Dense(256, activation="relu"),
                    layers.Dense(math.prod(start), activation="relu"),
                    layers.Reshape(start),
                    layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu"),
                    layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu"),
                    layers.Conv2D(data_shape[-1], 3, padding="same"),
                ]
            self.encoder = keras.Sequential([keras.Input(data_shape), *encoder])
            self.decoder = keras.Sequential([keras.Input((latent_dim,)), *decoder])
            self.seed_generator = keras.random.SeedGenerator(0)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.built = True

        @property
        def metrics(self) -> list:
            return [self.loss_tracker]

        def train_step(self, data: Any) -> dict[str, Any]:
            x = tf.cast(data[0] if isinstance(data, tuple) else data, tf.float32)
            with tf.GradientTape() as tape:
                h = tf.cast(self.encoder(x, training=True), tf.float32)
                loc, raw = tf.split(h, 2, axis=-1)
                scale = tf.nn.softplus(raw) + 1e-4
                z = loc + scale * keras.random.normal(tf.shape(loc), seed=self.seed_generator)
                logits = tf.cast(self.decoder(z, training=True), tf.float32)
                if self.continuous:
                    log_px = x * logits - tf.nn.softplus(logits) + _continuous_bernoulli_log_norm(logits)
                else:
                    log_px = -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
                reconstruction = -tf.reduce_sum(log_px, axis=[1, 2, 3])
                kl = 0.5 * tf.reduce_sum(tf.square(loc) + tf.square(scale) - 1.0 - 2.0 * tf.math.log(scale), axis=-1)
                loss = tf.reduce_mean(reconstruction + kl)
                scaled = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

    _CACHE["classes"] = {"EpochTimer": EpochTimer, "MinimalVAE": MinimalVAE}
    return _CACHE["classes"]


_CACHE: dict[str, Any] = {}


def _continuous_bernoulli_log_norm(logits: Any) -> Any:
    """log C(lambda) of the continuous Bernoulli with lambda = sigmoid(logits):
    C = logits / tanh(logits / 2), which tends to 2 (log 2 + logits^2 / 12) near 0."""
    from vaezoo._tf import tf

    small = tf.abs(logits) < 1e-3
    safe = tf.where(small, tf.ones_like(logits), logits)
    return tf.where(small, math.log(2.0) + tf.square(logits) / 12.0, tf.math.log(safe / tf.math.tanh(safe / 2.0)))


def _ablated_class(cls: type, removed: Sequence[str]) -> type:
    """``cls`` (a vaezoo model class) with the ``removed`` pieces of ``BaseVAE``'s
    training step taken out; the objective, networks and heads stay vaezoo's:

    - ``host-read``: Keras's own train function, without the host read of the
      non-finite record after each execution (``_after_execution``).
    - ``gradient-check``: ``_check_finite`` checks the terms alone, not the gradients
      and their global norm.
    - ``per-gradient-check``: ``_check_finite`` checks the gradients by their global
      norm alone (given to it as one more term; the norm is NaN or Inf whenever an
      element is), without a finiteness reduction over each gradient.
    - ``check``: ``_check_finite`` is a constant True (no finiteness reductions, no
      record); the conditional update, the step counters and the example-weighted
      metrics of ``_apply_updates`` remain.
    - ``step``: Keras's plain training step (tape, scaled loss, ``optimizer.apply``,
      metrics), none of ``_apply_updates``.
    """
    from vaezoo._tf import keras, tf

    if not removed:
        return cls

    def keras_train_function(self: Any, force: bool = False) -> Any:
        return keras.Model.make_train_function(self, force=force)

    def terms_check(self: Any, x: Any, terms: dict, updates: Sequence, grads: Sequence) -> Any:
        return cls._check_finite(self, x, terms, [], [])

    def norm_check(self: Any, x: Any, terms: dict, updates: Sequence, grads: Sequence) -> Any:
        norms = {f"grad_norm_{i}": tf.linalg.global_norm([g for g in step if g is not None]) for i, step in enumerate(grads)}
        return cls._check_finite(self, x, {**terms, **norms}, [], [])

    def no_check(self: Any, x: Any, terms: dict, updates: Sequence, grads: Sequence) -> Any:
        return tf.constant(True)

    def plain_train_step(self: Any, data: Any) -> dict[str, Any]:
        x = self._unpack(data)
        with tf.GradientTape() as tape:
            terms = self.objective(x, training=True)
            scaled = self.optimizer.scale_loss(terms["loss"])
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    replacements = {
        "host-read": ("make_train_function", keras_train_function),
        "gradient-check": ("_check_finite", terms_check),
        "per-gradient-check": ("_check_finite", norm_check),
        "check": ("_check_finite", no_check),
        "step": ("train_step", plain_train_step),
    }
    methods = dict(replacements[piece] for piece in removed)
    name = cls.__name__ + "Without" + "".join(piece.title().replace("-", "") for piece in removed)
    return types.new_class(name, (cls,), exec_body=lambda namespace: namespace.update(methods))


def build_keras_model(variant: Variant, network: str, data_shape: tuple[int, ...]) -> Any:
    """The Keras model of ``variant`` under its dtype policy (the global policy is
    restored afterwards)."""
    from vaezoo._tf import keras
    from vaezoo.registry import get_spec

    keras.mixed_precision.set_global_policy(variant.precision)
    try:
        name, overrides, _ = NETWORKS[network]
        spec = get_spec(name)
        config = {**spec.config, **overrides, "data_shape": data_shape, "name": name}
        if variant.framework == "keras-minimal":
            return _keras_classes()["MinimalVAE"](network, data_shape, int(config["latent_dim"]), name=f"minimal_{network}")
        return _ablated_class(spec.load_class(), ABLATIONS[variant.framework])(**config)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def dense_gemms(network: str, data_shape: Sequence[int]) -> list[tuple[int, int, bool]] | None:
    """The dense layers of ``network``'s training step as ``(inputs, outputs, input
    gradient)``, the input gradient being needed by every layer but the first; None for
    a network with convolutions. MLP 784-512-16: 784->512->32 (the posterior's loc and
    scale), 16->512->784."""
    if network not in DENSE_NETWORKS:
        return None
    overrides = NETWORKS[network][1]
    hidden, latent = list(overrides["hidden_units"]), int(overrides["latent_dim"])
    encoder, decoder = [math.prod(data_shape), *hidden, 2 * latent], [latent, *reversed(hidden), math.prod(data_shape)]
    layers = [(a, b, i > 0) for i, (a, b) in enumerate(itertools.pairwise(encoder))]
    return layers + [(a, b, True) for a, b in itertools.pairwise(decoder)]


def gemm_flops(layers: Sequence[tuple[int, int, bool]]) -> int:
    """Floating-point operations per example of ``dense_gemms``: 2 * inputs * outputs
    for the forward product, the weight gradient and (where needed) the input gradient."""
    return sum(2 * a * b * (3 if input_grad else 2) for a, b, input_grad in layers)


class GemmRunner:
    """The GEMM floor in TensorFlow: one ``tf.function`` call per step (XLA-compiled
    with ``xla``) runs the dense GEMMs of one training step (``dense_gemms``) on fixed
    random operands, in Keras's layout (kernel ``(inputs, outputs)``): ``x @ W``,
    ``x^T @ dy`` and ``dy @ W^T``; nothing else (no bias, activation, loss or optimizer)."""

    def __init__(self, layers: Sequence[tuple[int, int, bool]], batch_size: int, xla: bool) -> None:
        from vaezoo._tf import tf

        self.batch_size = batch_size
        shapes = [((batch_size, a), (a, b), (batch_size, b)) for a, b, _ in layers]
        self.operands = [
            tuple(tf.random.stateless_normal(shape, seed=(i, j)) for j, shape in enumerate(group))
            for i, group in enumerate(shapes)
        ]
        input_grads = [input_grad for _, _, input_grad in layers]

        def step(operands: list) -> list:
            out = []
            for (x, kernel, dy), input_grad in zip(operands, input_grads):
                out.append(tf.matmul(x, kernel))
                out.append(tf.matmul(x, dy, transpose_a=True))
                if input_grad:
                    out.append(tf.matmul(dy, kernel, transpose_b=True))
            return out

        self.step = tf.function(step, jit_compile=xla, autograph=False)

    def epoch(self, examples: int) -> tuple[float, float]:
        """Wall and CPU seconds of ``examples // batch_size`` steps' GEMMs."""
        start, cpu_start = time.perf_counter(), time.process_time()
        out = []
        for _ in range(examples // self.batch_size):
            out = self.step(self.operands)
        float(out[-1][0, 0])  # waits for the device
        return time.perf_counter() - start, time.process_time() - cpu_start


class KerasRunner:
    """Trains one Keras model: one ``fit`` epoch per call, timed by a callback."""

    def __init__(self, variant: Variant, network: str, batch_size: int, images: np.ndarray) -> None:
        from vaezoo._tf import keras

        self.variant = variant
        self.batch_size = batch_size
        self.images = images
        self.model = build_keras_model(variant, network, tuple(images.shape[1:]))
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3), jit_compile=variant.xla, steps_per_execution=variant.spe
        )
        self._datasets: dict[int, Any] = {}

    def _dataset(self, examples: int) -> Any:
        """A tf.data pipeline over the first ``examples`` images: cache, shuffle, batch
        (full batches), prefetch; built once per size."""
        from vaezoo._tf import tf

        if examples not in self._datasets:
            self._datasets[examples] = (
                tf.data.Dataset.from_tensor_slices(self.images[:examples])
                .cache()
                .shuffle(examples, seed=0, reshuffle_each_iteration=True)
                .batch(self.batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE)
            )
        return self._datasets[examples]

    def epoch(self, examples: int) -> tuple[float, float]:
        """Wall and CPU seconds of one training epoch over the first ``examples`` images."""
        from vaezoo._tf import keras

        timer = _keras_classes()["EpochTimer"]()
        common = {"epochs": 1, "verbose": 0, "callbacks": [timer]}
        if self.variant.input == "numpy":
            self.model.fit(self.images[:examples], batch_size=self.batch_size, shuffle=True, **common)
        elif self.variant.input == "tf.data":
            self.model.fit(self._dataset(examples), shuffle=False, **common)
        else:  # tf.data-unchecked: Keras's fit, without vaezoo's per-batch check
            keras.Model.fit(self.model, self._dataset(examples), shuffle=False, **common)
        return timer.seconds, timer.cpu_seconds


class PeerClient:
    """The pythae peer in a child process (``pythae_vae.py --serve``), one JSON line per
    request and answer. Its stderr (pythae's progress bars) goes to a temporary file."""

    def __init__(self, python: str, threads: int | None, device: str = "cpu") -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- lives as long as the client
        command = [python, str(PEER_SCRIPT), "--serve", "--device", "cuda" if device == "gpu" else "cpu"]
        command += ["--threads", str(threads)] if threads else []
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1
        )

    def request(self, **request: Any) -> dict[str, Any]:
        """Send one request and return its answer; a failure raises RuntimeError."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the pythae peer exited ({self.process.wait()}): {self.log.read()[-2000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"pythae peer: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


class PeerRunner:
    """One timed request to the peer: a pythae mode (raw loop or pipeline) for one network
    and batch size (``op`` ``epoch``), or its GEMM floor (``op`` ``gemm``)."""

    def __init__(self, client: PeerClient, **request: Any) -> None:
        self.client = client
        self.request = request

    def epoch(self, examples: int) -> tuple[float, float]:
        answer = self.client.request(**self.request, examples=examples)
        return float(answer["seconds"]), float(answer["cpu_seconds"])


# --------------------------------------------------------------------------- one comparison


def variants_for(args: argparse.Namespace, network: str, peer: bool) -> list[Variant]:
    """Every variant of one comparison: vaezoo's matrix, then (for ``--extras``
    networks) the profile variants, the input-pipeline variants of ``--inputs`` and the
    GEMM floors, then pythae's two runs."""
    variants = [
        Variant("vaezoo", xla, spe, precision)
        for precision in args.precision
        for xla in args.xla
        for spe in args.spe
    ]
    if network in args.extras:
        extra_xla, extra_spe = (args.xla, args.spe) if not args.smoke else ([False], [1])
        variants += [
            Variant(framework, xla, spe)
            for framework in PROFILE_FRAMEWORKS
            for xla in extra_xla
            for spe in extra_spe
        ]
        variants += [
            Variant("vaezoo", True in args.xla, min(args.spe), input=source) for source in args.inputs if source != "numpy"
        ]
        if network in DENSE_NETWORKS:
            variants += [Variant("gemm-tf", xla=xla) for xla in (True, False)] + ([Variant("gemm-torch")] if peer else [])
    if peer:
        variants += [Variant("pythae", mode=mode) for mode in ("raw", "pipeline")]
    return variants


def _examples_for(rate: float, seconds: float, batch_size: int, spe: int, available: int) -> int:
    """Full batches worth about ``seconds`` at ``rate`` samples/s: a multiple of
    ``batch_size * spe`` where that fits, at least two batches, at most ``available``."""
    most = (available // batch_size) * batch_size
    wanted = rate * seconds
    unit = batch_size * spe
    if wanted >= unit and most >= unit:
        return int(min(max(round(wanted / unit), 1) * unit, (most // unit) * unit))
    return int(min(max(round(wanted / batch_size), 2) * batch_size, most))


def run_comparison(
    network: str,
    batch_size: int,
    variants: Sequence[Variant],
    images: np.ndarray,
    data_path: str | None,
    peer: PeerClient | None,
    args: argparse.Namespace,
    log: Callable[[str], None],
    slow: dict[tuple, str],
) -> list[Measured]:
    """Warm up, size and then time every variant, interleaved over ``args.rounds``.

    A variant whose second warm-up (two steps, compiled) takes longer than
    ``args.max_epoch_seconds`` (or its first, compiling one longer than that plus
    ``args.compile_allowance``) is reported with its warm-up rate and not timed;
    ``slow`` remembers it (framework, precision, XLA, input), so that later
    comparisons, which do more work per step, skip it.
    """
    measured = [Measured(v) for v in variants]
    warm = 2 * batch_size
    for m in measured:
        v = m.variant
        key = (v.framework, v.precision, v.xla, v.input)
        if v.framework != "pythae" and key in slow:
            m.error = f"not timed: {slow[key]}"
            log(f"  SKIPPED {v.label}: {m.error}")
            continue
        try:
            gemms = dense_gemms(network, images.shape[1:])
            if v.framework == "pythae":
                assert peer is not None and data_path is not None
                m.runner = PeerRunner(
                    peer, op="epoch", data=data_path, mode=v.mode, network=network, batch_size=batch_size
                )
            elif v.framework == "gemm-torch":
                assert peer is not None and gemms is not None
                m.runner = PeerRunner(peer, op="gemm", batch_size=batch_size, layers=gemms)
            elif v.framework == "gemm-tf":
                assert gemms is not None
                m.runner = GemmRunner(gemms, batch_size, v.xla)
            else:
                m.runner = KerasRunner(v, network, batch_size, images)
            start = time.perf_counter()
            seconds, _ = m.runner.epoch(warm)  # includes tracing and compilation
            m.first_fit_s = time.perf_counter() - start
            if seconds <= args.max_epoch_seconds + args.compile_allowance:
                start = time.perf_counter()
                seconds, _ = m.runner.epoch(warm)
                m.compile_s = max(m.first_fit_s - (time.perf_counter() - start), 0.0)
            rate = warm / seconds
            if seconds > args.max_epoch_seconds:
                slow[key] = f"{rate:,.1f} samples/s in the warm-up (2 steps) of {network}, batch {batch_size}"
                m.error, m.runner = f"too slow to time: {slow[key]}", None
                log(f"  SKIPPED {v.label}: {m.error}")
                continue
            if seconds < 0.25 * args.seconds:  # short epochs are mostly start-up: probe longer
                probe = _examples_for(rate, 0.25 * args.seconds, batch_size, v.spe, len(images))
                rate = probe / m.runner.epoch(probe)[0]
            # At least --min-examples (where that takes under --max-epoch-seconds), so that
            # a size chosen while the machine was busy still spans many steps.
            floor = min(args.min_examples, rate * args.max_epoch_seconds)
            m.examples = _examples_for(max(rate, floor / args.seconds), args.seconds, batch_size, v.spe, len(images))
            log(f"  ready {v.label}: compile {m.compile_s:.1f} s, ~{rate:,.0f}/s, {m.examples} examples/epoch")
        except Exception as error:  # noqa: BLE001 -- a failing variant is reported, the others still run
            m.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            m.runner = None
            log(f"  FAILED {v.label}: {m.error}")
    for round_index in range(args.rounds):
        for m in measured:
            if m.runner is None:
                continue
            seconds, cpu_seconds = m.runner.epoch(m.examples)
            m.rates.append(m.examples / seconds)
            m.cpu_rates.append(m.examples / cpu_seconds)
        log(f"  round {round_index + 1}/{args.rounds} done")
    return measured


def summarize(network: str, batch_size: int, measured: Sequence[Measured]) -> list[dict[str, Any]]:
    """One JSON row per variant, with the ratios to pythae's runs of the comparison, in
    wall-clock samples/s and in samples per CPU-second."""
    wall = {m.variant.label: statistics.median(m.rates) for m in measured if m.rates}
    cpu = {m.variant.label: statistics.median(m.cpu_rates) for m in measured if m.cpu_rates}

    def ratio(table: dict[str, float], label: str, peer: str) -> float | None:
        return table[label] / table[peer] if label in table and peer in table else None

    rows = []
    for m in measured:
        label = m.variant.label
        rows.append(
            {
                "network": network,
                "batch_size": batch_size,
                "variant": label,
                **dataclasses.asdict(m.variant),
                "samples_per_second": wall.get(label),
                "samples_per_cpu_second": cpu.get(label),
                "rounds": [round(r, 1) for r in m.rates],
                "cpu_rounds": [round(r, 1) for r in m.cpu_rates],
                "min": min(m.rates) if m.rates else None,
                "max": max(m.rates) if m.rates else None,
                "examples_per_epoch": m.examples,
                "steps_per_epoch": m.examples // batch_size,
                "first_fit_s": m.first_fit_s,
                "compile_s": m.compile_s,
                "ratio_vs_pythae_raw": ratio(wall, label, "pythae raw"),
                "ratio_vs_pythae_pipeline": ratio(wall, label, "pythae pipeline"),
                "cpu_ratio_vs_pythae_raw": ratio(cpu, label, "pythae raw"),
                "cpu_ratio_vs_pythae_pipeline": ratio(cpu, label, "pythae pipeline"),
                "error": m.error,
            }
        )
    return rows


def check_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 8's targets (MLP, vaezoo over the pythae raw loop) per batch size: the best
    vaezoo configuration and vaezoo's defaults (``compile_model``: XLA on, spe 1, float32)."""
    targets = []
    for batch_size, target in TARGETS.items():
        group = [
            r for r in rows
            if r["network"] == "mlp" and r["batch_size"] == batch_size and r["framework"] == "vaezoo"
            and r["input"] == "numpy" and r["ratio_vs_pythae_raw"] is not None
        ]
        if not group:
            continue
        best = max(group, key=lambda r: r["ratio_vs_pythae_raw"])
        best_cpu = max(group, key=lambda r: r["cpu_ratio_vs_pythae_raw"] or 0.0)
        default = next((r for r in group if r["xla"] and r["spe"] == 1 and r["precision"] == "float32"), None)
        targets.append(
            {
                "network": "mlp",
                "batch_size": batch_size,
                "target": target,
                "best_variant": best["variant"],
                "best_ratio": best["ratio_vs_pythae_raw"],
                "met": best["ratio_vs_pythae_raw"] >= target,
                "default_ratio": default["ratio_vs_pythae_raw"] if default else None,
                "default_met": bool(default and default["ratio_vs_pythae_raw"] >= target),
                "best_cpu_variant": best_cpu["variant"],
                "best_cpu_ratio": best_cpu["cpu_ratio_vs_pythae_raw"],
                "cpu_met": (best_cpu["cpu_ratio_vs_pythae_raw"] or 0.0) >= target,
                "default_cpu_ratio": default["cpu_ratio_vs_pythae_raw"] if default else None,
            }
        )
    return targets


def xla_speedups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """vaezoo's XLA-on over XLA-off samples/s for each network, batch, spe and precision
    (issue 8 asks for >= ``CONV_XLA_TARGET`` on the conv VAE on a GPU)."""
    rates = {
        (r["network"], r["batch_size"], r["spe"], r["precision"], r["xla"]): r["samples_per_second"]
        for r in rows
        if r["framework"] == "vaezoo" and r["input"] == "numpy" and r["samples_per_second"]
    }
    out = []
    for (network, batch_size, spe, precision, xla), rate in rates.items():
        off = rates.get((network, batch_size, spe, precision, False))
        if xla and off:
            out.append(
                {
                    "network": network,
                    "batch_size": batch_size,
                    "spe": spe,
                    "precision": precision,
                    "xla_speedup": rate / off,
                    "gpu_target": CONV_XLA_TARGET if network == "conv" else None,
                }
            )
    return out


def profile(rows: Sequence[dict[str, Any]], flops: dict[str, int]) -> list[dict[str, Any]]:
    """The profile section: for each float32, numpy-input row of vaezoo, its ablations,
    ``keras-minimal``, pythae and the GEMM floors, in comparisons that have a GEMM floor
    or an ablation row: samples/s and per CPU-second, CPU microseconds per example,
    the ratio to the full vaezoo step of the same XLA and spe (and the CPU microseconds
    per example that the row saves against it), the ratio to pythae's raw loop, and
    the fraction of its framework's GEMM floor (Keras rows: ``gemm-tf`` with the same
    XLA setting; pythae: ``gemm-torch``). GEMM rows give GFLOP/s; their samples/s are
    the ceilings.

    ``flops``: floating-point operations per example of each network's dense GEMMs.
    """
    out = []
    comparisons = dict.fromkeys((r["network"], r["batch_size"]) for r in rows)
    for network, batch_size in comparisons:
        group = [
            r for r in rows
            if (r["network"], r["batch_size"]) == (network, batch_size) and r["samples_per_second"]
            and r["precision"] == "float32" and r["input"] == "numpy"
            and (r["framework"] in (*ABLATIONS, "keras-minimal", "pythae", *GEMM_FRAMEWORKS))
        ]
        if not any(r["framework"] in (*PROFILE_FRAMEWORKS, *GEMM_FRAMEWORKS) for r in group):
            continue
        full = {(r["xla"], r["spe"]): r for r in group if r["framework"] == "vaezoo"}
        floors = {(r["framework"], r["xla"]): r for r in group if r["framework"] in GEMM_FRAMEWORKS}
        for r in group:
            gemm = r["framework"] in GEMM_FRAMEWORKS
            keras_row = not gemm and r["framework"] != "pythae"
            base = full.get((r["xla"], r["spe"])) if keras_row else None
            floor = None if gemm else floors.get(("gemm-tf", r["xla"]) if keras_row else ("gemm-torch", False))
            entry = {
                "network": network,
                "batch_size": batch_size,
                "variant": r["variant"],
                "framework": r["framework"],
                "xla": r["xla"],
                "spe": r["spe"],
                "samples_per_second": r["samples_per_second"],
                "samples_per_cpu_second": r["samples_per_cpu_second"],
                "cpu_us_per_example": 1e6 / r["samples_per_cpu_second"],
                "ratio_vs_vaezoo": r["samples_per_second"] / base["samples_per_second"] if base else None,
                "cpu_ratio_vs_vaezoo": r["samples_per_cpu_second"] / base["samples_per_cpu_second"] if base else None,
                "cpu_us_saved_vs_vaezoo": 1e6 / base["samples_per_cpu_second"] - 1e6 / r["samples_per_cpu_second"]
                if base else None,
                "ratio_vs_pythae_raw": r["ratio_vs_pythae_raw"],
                "cpu_ratio_vs_pythae_raw": r["cpu_ratio_vs_pythae_raw"],
                "gemm_floor": floor["variant"] if floor else None,
                "fraction_of_gemm_floor": r["samples_per_second"] / floor["samples_per_second"] if floor else None,
                "cpu_fraction_of_gemm_floor": r["samples_per_cpu_second"] / floor["samples_per_cpu_second"]
                if floor else None,
            }
            if gemm:
                entry["gemm_flops_per_example"] = flops[network]
                entry["gflops"] = r["samples_per_second"] * flops[network] / 1e9
                entry["cpu_gflops"] = r["samples_per_cpu_second"] * flops[network] / 1e9
            out.append(entry)
    return out


# --------------------------------------------------------------------------- eval and memory


def eval_speed(args: argparse.Namespace, peer: PeerClient | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Seconds per example of ``log_likelihood(num_samples=k)`` on a subset of the
    binarized-MNIST test split, extrapolated to 10,000 examples.

    The subset runs in batches of 100 (the method's default); the first batch call of
    each model traces and compiles and is reported apart, the others are timed.
    """
    from vaezoo.registry import create_model

    batch = min(100, args.eval_examples)
    images, source = load_binarized_mnist_test(args.eval_examples + batch, args.smoke)
    out: dict[str, Any] = {"data": source, "num_samples": args.eval_k, "examples": args.eval_examples, "models": {}}
    configs = {"mlp 784-512-16": NETWORKS["mlp"][1], "vae (registry default, 784-512-256-32)": {}}
    if args.smoke:
        configs = {"mlp 784-512-16": NETWORKS["mlp"][1]}
    for label, overrides in configs.items():
        model = create_model("vae", **overrides)
        start = time.perf_counter()
        model.log_likelihood(images[-batch:], num_samples=args.eval_k, batch_size=batch)
        first = time.perf_counter() - start
        seconds = cpu_seconds = 0.0
        for begin in range(0, args.eval_examples, batch):
            start, cpu_start = time.perf_counter(), time.process_time()
            model.log_likelihood(images[begin : begin + batch], num_samples=args.eval_k, batch_size=batch)
            seconds += time.perf_counter() - start
            cpu_seconds += time.process_time() - cpu_start
        per_example, cpu_per_example = seconds / args.eval_examples, cpu_seconds / args.eval_examples
        out["models"][label] = {
            "first_call_s": first,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "seconds_per_example": per_example,
            "cpu_seconds_per_example": cpu_per_example,
            "extrapolated_10k_s": per_example * 10_000,
            "extrapolated_10k_cpu_s": cpu_per_example * 10_000,
        }
        log(f"  eval {label}: {per_example * 1e3:.1f} ms/example ({cpu_per_example * 1e3:.1f} ms CPU) -> "
            f"{per_example * 10_000 / 60:.1f} min for 10k")
    if peer is not None:
        path = os.path.join(args.workdir, "binarized_mnist_test.npy")
        np.save(path, images[: args.peer_eval_examples])
        answer = peer.request(op="nll", data=path, examples=args.peer_eval_examples, num_samples=args.eval_k)
        per_example, cpu_per_example = answer["seconds"] / answer["examples"], answer["cpu_seconds"] / answer["examples"]
        out["pythae_get_nll mlp 784-512-16"] = {
            **answer,
            "seconds_per_example": per_example,
            "cpu_seconds_per_example": cpu_per_example,
            "extrapolated_10k_s": per_example * 10_000,
            "extrapolated_10k_cpu_s": cpu_per_example * 10_000,
        }
        log(f"  eval pythae get_nll: {per_example * 1e3:.1f} ms/example ({cpu_per_example * 1e3:.1f} ms CPU)")
    return out


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process in MiB, two ways.

    ``ru_maxrss`` (``resource.getrusage``, KiB on Linux) keeps the high-water mark of
    the process image that ``exec`` replaced, so in a child it starts at the parent's
    peak; ``VmHWM`` (``/proc/self/status``) is the high-water mark of this process
    image alone, and is the number to read.
    """
    out = {"ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    out["vmhwm_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def rss_child(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process: load the data, build and compile the MLP VAE (vaezoo's
    defaults: XLA on, spe 1; XLA off in smoke mode), train one epoch at
    ``args.rss_batch``; report ``ru_maxrss`` after the imports, after loading and at
    the end."""
    from vaezoo.training import compile_model

    imported = peak_rss_mib()
    images, source = load_images("mlp", "train", args.rss_examples, args.smoke)
    model = compile_model(build_keras_model(Variant("vaezoo"), "mlp", tuple(images.shape[1:])), jit_compile=not args.smoke)
    loaded = peak_rss_mib()
    start = time.perf_counter()
    model.fit(images, batch_size=args.rss_batch, epochs=1, verbose=0)
    return {
        "data": source,
        "examples": len(images),
        "batch_size": args.rss_batch,
        "seconds": time.perf_counter() - start,
        "after_import": imported,
        "after_load_and_build": loaded,
        "peak": peak_rss_mib(),
    }


def measure_rss(args: argparse.Namespace, peer_python: str | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Peak RSS of training at ``--rss-batch``, each framework in its own child process."""
    out: dict[str, Any] = {}
    command = [sys.executable, __file__, "--rss-child", "--rss-batch", str(args.rss_batch), "--rss-examples", str(args.rss_examples)]
    if args.smoke:
        command.append("--smoke")
    out["vaezoo"] = _json_from(command)
    log(f"  RSS vaezoo: {out['vaezoo'].get('peak')}")
    if peer_python:
        images, _ = load_images("mlp", "train", args.rss_examples, args.smoke)
        path = os.path.join(args.workdir, "rss_train.npy")
        np.save(path, images)
        out["pythae_raw"] = _json_from(
            [peer_python, str(PEER_SCRIPT), "--rss", "--data", path, "--batch-size", str(args.rss_batch)]
            + (["--threads", str(args.threads)] if args.threads else [])
        )
        log(f"  RSS pythae: {out['pythae_raw'].get('peak')}")
    return out


def _json_from(command: list[str]) -> dict[str, Any]:
    """Run ``command`` and parse the last line of its stdout as JSON."""
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-1500:]}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- report


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    """Versions, threads and the vaezoo sources measured."""
    from vaezoo._tf import keras, tf, tfp

    base = REPO / "vaezoo" / "models" / "base.py"
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "vaezoo"], capture_output=True, text=True, check=False)
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": tfp.__version__,
        "threads": args.threads or "default",
        "git_head": head.stdout.strip(),
        "vaezoo_modified_files": [line[3:] for line in dirty.stdout.splitlines()],
        "base_py_sha256": hashlib.sha256(base.read_bytes()).hexdigest() if base.exists() else None,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report's tables in markdown: results, issue 8's targets, XLA speed-ups, profile."""

    def num(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    columns = (
        "network", "batch", "variant", "samples/s", "min-max", "x raw", "x pipeline", "samples/CPU-s",
        "x raw (CPU)", "x pipeline (CPU)", "compile s", "examples/epoch",
    )
    lines = ["| " + " | ".join(columns) + " |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        head = f"| {r['network']} | {r['batch_size']} | {r['variant']} |"
        if r["error"]:
            lines.append(f"{head} {r['error'][:100]} |" + " |" * 10)
            continue
        lines.append(
            f"{head} {num(r['samples_per_second'])} | {num(r['min'])}-{num(r['max'])} | "
            f"{num(r['ratio_vs_pythae_raw'], 2)} | {num(r['ratio_vs_pythae_pipeline'], 2)} | "
            f"{num(r['samples_per_cpu_second'])} | {num(r['cpu_ratio_vs_pythae_raw'], 2)} | "
            f"{num(r['cpu_ratio_vs_pythae_pipeline'], 2)} | {num(r['compile_s'], 1)} | {r['examples_per_epoch']} |"
        )
    if report["targets"]:
        lines += [
            "",
            "| target (MLP) | batch | best variant (wall) | ratio | met | defaults | best variant (CPU) | ratio | met | defaults |",
            "|---|---:|---|---:|---|---:|---|---:|---|---:|",
        ]
        for t in report["targets"]:
            lines.append(
                f"| >= {t['target']}x pythae raw | {t['batch_size']} | {t['best_variant']} | {t['best_ratio']:.2f} | "
                f"{'yes' if t['met'] else 'no'} | {num(t['default_ratio'], 2)} | {t['best_cpu_variant']} | "
                f"{num(t['best_cpu_ratio'], 2)} | {'yes' if t['cpu_met'] else 'no'} | {num(t['default_cpu_ratio'], 2)} |"
            )
    if report.get("xla_speedups"):
        lines += ["", "| network | batch | spe | precision | XLA on / off (wall) |", "|---|---:|---:|---|---:|"]
        for x in report["xla_speedups"]:
            lines.append(f"| {x['network']} | {x['batch_size']} | {x['spe']} | {x['precision']} | {x['xla_speedup']:.2f} |")
    if report.get("profile"):
        lines += [
            "",
            "| network | batch | profile row | samples/s | samples/CPU-s | CPU us/example | CPU us saved vs vaezoo | "
            + "x vaezoo (CPU) | x pythae raw | x pythae raw (CPU) | GFLOP/CPU-s | of GEMM floor (CPU) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in report["profile"]:
            lines.append(
                f"| {p['network']} | {p['batch_size']} | {p['variant']} | {num(p['samples_per_second'])} | "
                f"{num(p['samples_per_cpu_second'])} | {num(p['cpu_us_per_example'], 1)} | "
                f"{num(p['cpu_us_saved_vs_vaezoo'], 1)} | {num(p['cpu_ratio_vs_vaezoo'], 2)} | "
                f"{num(p['ratio_vs_pythae_raw'], 2)} | {num(p['cpu_ratio_vs_pythae_raw'], 2)} | "
                f"{num(p.get('cpu_gflops'), 1)} | {num(p['cpu_fraction_of_gemm_floor'], 2)} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="*", choices=sorted(NETWORKS), default=["mlp", "conv"],
                        help="none: no training comparisons (evaluation and memory only)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 1024])
    parser.add_argument("--xla", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--spe", nargs="+", type=int, default=[1, 16], help="steps_per_execution values")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32", "mixed_float16"])
    parser.add_argument("--extras", nargs="*", choices=sorted(NETWORKS), default=["mlp"],
                        help="networks that also get the profile, input-pipeline and GEMM-floor variants")
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS),
                        help="input pipelines of the --extras networks (numpy: the matrix alone)")
    parser.add_argument("--profile", action="store_true",
                        help="issue 8's profile alone: the MLP in float32 with numpy input (vaezoo, the guard "
                             "ablation, plain step, keras-minimal, GEMM floors, pythae); pick --xla, --spe, "
                             "--batch-sizes as usual")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-examples", type=int, default=8192,
                        help="examples per timed epoch at least (unless that takes over --max-epoch-seconds)")
    parser.add_argument("--max-epoch-seconds", type=float, default=20.0,
                        help="variants slower than this for two steps are reported, not timed")
    parser.add_argument("--compile-allowance", type=float, default=90.0,
                        help="seconds the first (compiling) warm-up may take beyond --max-epoch-seconds")
    parser.add_argument("--seconds", type=float, default=2.0, help="target length of one timed epoch")
    parser.add_argument("--threads", type=int, default=None, help="threads of each framework (default: theirs)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: require a GPU for TensorFlow and train the peer with --device cuda")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--eval-examples", type=int, default=200)
    parser.add_argument("--peer-eval-examples", type=int, default=20)
    parser.add_argument("--eval-k", type=int, default=5000)
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--rss-batch", type=int, default=1024)
    parser.add_argument("--rss-examples", type=int, default=50000)
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--json", help="also write the JSON report here")
    parser.add_argument("--markdown", help="also write the markdown tables here")
    parser.add_argument("--smoke", action="store_true", help="tiny settings, no peer: checks the machinery in seconds")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.xla = [x == "on" for x in args.xla]
    if args.profile:
        args.networks, args.extras, args.precision, args.inputs = ["mlp"], ["mlp"], ["float32"], ["numpy"]
    if args.smoke:
        args.networks, args.batch_sizes, args.xla, args.spe = ["mlp"], [32], [False], [1, 2]
        args.precision, args.extras, args.rounds, args.seconds = ["float32"], ["mlp"], 1, 0.05
        args.no_peer, args.eval_examples, args.eval_k, args.min_examples = True, 4, 8, 64
        args.rss_batch, args.rss_examples = 32, 256
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("VAEZOO_DATA", str(REPO.parent / "shared" / "data"))
    if args.threads:
        # Read by TensorFlow when its runtime starts (before any op), and by the children.
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    if args.rss_child:
        print(json.dumps(rss_child(args)))
        return {}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    started = time.perf_counter()
    args.workdir = tempfile.mkdtemp(prefix="vaezoo-throughput-")
    peer_python = None if args.no_peer else args.peer_python
    peer_status: dict[str, Any]
    if peer_python and not os.path.exists(peer_python):
        peer_status = {"skipped": f"{peer_python} not found: create it (see benchmarks/README.md) or pass --peer-python"}
        log(f"pythae peer skipped: {peer_status['skipped']}")
        peer_python = None
    elif not peer_python:
        peer_status = {"skipped": "--no-peer" if not args.smoke else "--smoke"}
    if args.device == "gpu":
        from vaezoo._tf import tf

        if not tf.config.list_physical_devices("GPU"):
            raise SystemExit("--device gpu: TensorFlow sees no GPU (is a CUDA build of TensorFlow installed?)")
    peer = PeerClient(peer_python, args.threads, args.device) if peer_python else None
    if peer is not None:
        peer_status = peer.request(op="info")

    report: dict[str, Any] = {"schema": SCHEMA_VERSION, "machine": machine_info(args), "peer": peer_status}
    report["settings"] = {
        key: getattr(args, key)
        for key in (
            "networks", "batch_sizes", "xla", "spe", "precision", "extras", "rounds", "seconds",
            "min_examples", "max_epoch_seconds", "compile_allowance", "inputs", "profile", "threads", "device", "smoke",
        )
    }
    rows: list[dict[str, Any]] = []
    data_notes = {}
    flops: dict[str, int] = {}
    slow: dict[tuple, str] = {}
    try:
        for network in args.networks:
            images, source = load_images(network, "train", MAX_EXAMPLES if not args.smoke else 256, args.smoke)
            data_notes[network] = source
            gemms = dense_gemms(network, images.shape[1:])
            if gemms is not None:
                flops[network] = gemm_flops(gemms)
            data_path = None
            if peer is not None:
                data_path = os.path.join(args.workdir, f"{network}_train.npy")
                np.save(data_path, images)
            for batch_size in args.batch_sizes:
                log(f"{network}, batch {batch_size}:")
                variants = variants_for(args, network, peer is not None)
                measured = run_comparison(network, batch_size, variants, images, data_path, peer, args, log, slow)
                rows += summarize(network, batch_size, measured)
        report["data"] = data_notes
        report["results"] = rows
        report["targets"] = check_targets(rows)
        report["xla_speedups"] = xla_speedups(rows)
        report["gemm_flops_per_example"] = flops
        report["profile"] = profile(rows, flops)
        report["eval"] = {"skipped": "--no-eval"} if args.no_eval else eval_speed(args, peer, log)
    finally:
        if peer is not None:
            peer.close()
    report["rss"] = {"skipped": "--no-rss"} if args.no_rss else measure_rss(args, peer_python, log)
    report["load_average"] = {"before": list(load_before), "after": list(os.getloadavg())}
    report["wall_s"] = time.perf_counter() - started

    text = json.dumps(report, indent=2)
    print(text)
    table = markdown(report)
    print(table)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return report


if __name__ == "__main__":
    main()
