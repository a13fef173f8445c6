"""Training and evaluation recipes shared by the CLI, the quickstart and the benchmarks
(importing this module imports TensorFlow)."""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the model, its Keras History dict and timings.

    ``samples_per_second`` is the steady state: training examples per second of the
    median epoch after the first (which includes XLA compilation), validation included.
    """

    model: Any
    history: dict[str, list[float]]
    seconds: float
    epoch_seconds: list[float]
    samples_per_second: float


def build_for_data(name: str, data_shape: tuple[int, ...], **overrides: Any):
    """Create the registered model ``name`` for examples of ``data_shape``.

    Example:
        >>> build_for_data("vae", (64, 64, 1), hidden_units=(8,), latent_dim=2).data_shape
        (64, 64, 1)
    """
    from vaezoo.registry import create_model

    return create_model(name, data_shape=tuple(data_shape), **overrides)


def compile_model(
    model,
    learning_rate: float = 1e-3,
    jit_compile: bool = True,
    steps_per_execution: int = 1,
    on_nan: str = "stop",
):
    """Compile with Adam; XLA (``jit_compile``) is on by default. ``on_nan`` is
    ``"stop"`` or ``"skip"`` (see ``BaseVAE.compile``).

    Inside a ``tf.distribute`` strategy's scope, XLA is off (Keras cannot compile a step
    whose replicas live on several devices; Keras's own ``jit_compile="auto"`` decides
    the same) and so is ``steps_per_execution`` > 1 (Keras 3 fails in that loop under
    these strategies, keras-team/keras#19246).

    Example:
        >>> model = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2))
        >>> model.jit_compile, model.on_nan
        (True, 'stop')
    """
    distributed = tf.distribute.has_strategy()
    if distributed and int(steps_per_execution) > 1:
        warnings.warn(
            f"steps_per_execution={steps_per_execution} -> 1 under {type(tf.distribute.get_strategy()).__name__} "
            "(keras-team/keras#19246)",
            RuntimeWarning,
            stacklevel=2,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        jit_compile=bool(jit_compile) and not distributed,
        steps_per_execution=1 if distributed else steps_per_execution,
        on_nan=on_nan,
    )
    return model


def steps_per_epoch(num_examples: int, batch_size: int, steps_per_execution: int = 1) -> int:
    """Steps of one epoch in ``train``: enough full batches to see every example once,
    rounded up to a multiple of ``steps_per_execution`` (so that executions never
    straddle two epochs); the last batches wrap around to the epoch's first examples.

    Example:
        >>> steps_per_epoch(1000, 128), steps_per_epoch(1000, 128, steps_per_execution=3)
        (8, 9)
    """
    if int(num_examples) < 1 or int(batch_size) < 1 or int(steps_per_execution) < 1:
        raise ValueError(
            f"need num_examples, batch_size and steps_per_execution >= 1, got "
            f"{num_examples}, {batch_size} and {steps_per_execution}"
        )
    steps = math.ceil(int(num_examples) / int(batch_size))
    return math.ceil(steps / int(steps_per_execution)) * int(steps_per_execution)


def batch_stream(x: np.ndarray | tuple, batch_size: int, seed: int, steps: int, start_step: int = 0):
    """The training batches of every epoch, from global step ``start_step`` on: a
    ``tf.data.Dataset`` (endless) in which epoch e holds ``steps`` batches of the
    examples in a stateless shuffle of (seed, e). Any step's batch depends only on
    (seed, step), which is what lets a resumed run see exactly the batches it missed.
    ``x`` may be a tuple of arrays (examples and their labels): batches are then tuples.

    Example:
        >>> x = np.arange(6, dtype="float32")[:, None]
        >>> whole = [b.numpy().ravel().tolist() for b in batch_stream(x, 4, 0, 2).take(4)]
        >>> resumed = [b.numpy().ravel().tolist() for b in batch_stream(x, 4, 0, 2, start_step=3).take(1)]
        >>> resumed == whole[3:]
        True
    """
    arrays = x if isinstance(x, tuple) else (x,)
    n, per_epoch = len(arrays[0]), int(steps) * int(batch_size)
    repeats = math.ceil(per_epoch / n)
    tensors = [tf.constant(a) for a in arrays]
    seed = int(seed)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch]))
        order = tf.tile(order, [repeats])[:per_epoch]
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order, [int(steps), int(batch_size)]))

    def gather(index):
        batch = tuple(tf.gather(t, index) for t in tensors)
        return batch if isinstance(x, tuple) else batch[0]

    first_epoch = int(start_step) // int(steps)
    dataset = (
        tf.data.Dataset.range(first_epoch, 2**62)
        .flat_map(epoch_batches)
        .skip(int(start_step) - first_epoch * int(steps))
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    # Every worker builds the same stream; each keeps its replicas' shares of a batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def train(
    model,
    x_train: np.ndarray | tuple,
    x_valid: np.ndarray | tuple | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    callbacks: list | None = None,
    verbose: int | str = "auto",
    seed: int = 0,
    backup_dir: str | None = None,
    backup_every: int | None = None,
) -> TrainResult:
    """Fit ``model`` (already compiled) on the batches of :func:`batch_stream` and time it.

    ``x_train`` and ``x_valid`` are arrays of examples, or tuples ``(examples, labels)``
    for a conditional model (``model.conditional``), whose labels are checked first.
    ``batch_size`` is the global batch (under ``tf.distribute``, split over replicas).
    With ``backup_dir``, a :class:`ResumableBackup` saves the training state there at
    every epoch end and every ``backup_every`` steps; if the run is killed, the same
    call resumes from the last save and ends with the weights of an uninterrupted run.

    Example:
        >>> import numpy as np
        >>> model = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2))
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> train(model, x, epochs=1, batch_size=32, verbose=0).history["loss"][0] > 0
        True
    """
    from vaezoo.models.base import trusted_dataset

    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    keras.utils.set_random_seed(seed)
    x_train, y_train = _labelled(model, x_train, "x_train")
    x_valid, y_valid = _labelled(model, x_valid, "x_valid")
    x_train = model._checked(x_train, "x_train")
    steps = steps_per_epoch(len(x_train), batch_size, model.steps_per_execution)
    if y_train is not None:
        x_train = (x_train, model.check_labels(y_train, len(x_train), "y_train"))
    valid = None if x_valid is None else (x_valid,) if y_valid is None else (x_valid, y_valid)
    callbacks = list(callbacks or [])
    start_step = 0
    if backup_dir:
        backup = ResumableBackup(backup_dir, steps, save_freq=backup_every or "epoch")
        start_step = backup.resume_step(model.distribute_strategy)
        callbacks.append(backup)
    epoch_seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - epoch_seconds.pop()),
    )
    start = time.perf_counter()
    with model.distribute_strategy.scope():  # variables a model makes in fit join its strategy
        history = model.fit(
            trusted_dataset(batch_stream(x_train, batch_size, seed, steps, start_step)),
            validation_data=valid,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=[*callbacks, timer],
            verbose=verbose,
            shuffle=False,  # batch_stream shuffles, per epoch and resumably
        )
    seconds = time.perf_counter() - start
    steady = float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds or [seconds]))
    history_dict = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return TrainResult(model, history_dict, seconds, epoch_seconds, steps * int(batch_size) / steady)


def _labelled(model, data, name: str) -> tuple[Any, Any]:
    """``(examples, labels)`` from an array, ``(x,)`` or ``(x, y)``; labels are required
    by a conditional model (``model.conditional``) and refused by any other."""
    x, y = (data[0], data[1] if len(data) > 1 else None) if isinstance(data, tuple) else (data, None)
    if getattr(model, "conditional", False):
        if x is not None and y is None:
            raise ValueError(f"{type(model).__name__} is conditional: pass {name} as (examples, labels)")
    elif y is not None:
        raise ValueError(f"{name} holds labels, but {type(model).__name__} is not conditional")
    return x, y


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` made exact and crash-safe, for :func:`train`.

    Keras's callback restarts an interrupted epoch from its first batch (repeating the
    batches done before the crash, in a new shuffle order), does not save the model's
    random-number state, and writes its files in place, so a kill during a save can
    leave a torn checkpoint. This one:

    - saves the weights and optimizer state, the state of every ``SeedGenerator``,
      and the position (epoch, batch) at every epoch end and every ``save_freq`` steps;
    - writes each checkpoint to a new file, flushed to disk, then atomically replaces
      ``training_state.json``, which names it and the checkpoint before it: a crash
      leaves the previous checkpoint;
    - on restart, restores all of it and passes over the steps already done without
      running them, while :func:`batch_stream` starts at the next step's batch;
    - under ``MultiWorkerMirroredStrategy`` (one folder per worker), the workers agree
      on the newest step they all have, which is the previous checkpoint of a worker
      killed after its own save but before the others'.

    The resumed epoch's logged metrics cover the batches after the restart only.

    Args:
        backup_dir: folder of the checkpoints (one folder per run, and per worker).
        steps_per_epoch: steps of one epoch (:func:`steps_per_epoch`).
        save_freq: ``"epoch"``, or also every this many steps.
        delete_checkpoint: delete ``backup_dir`` when training ends normally.

    Example:
        >>> import numpy as np, tempfile
        >>> backup = ResumableBackup(tempfile.mkdtemp(), steps_per_epoch=4, save_freq=2)
        >>> backup.resume_step()  # nothing saved yet
        0
    """

    STATE = "training_state.json"

    def __init__(
        self, backup_dir: str, steps_per_epoch: int, save_freq: int | str = "epoch", delete_checkpoint: bool = True
    ) -> None:
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a number of steps >= 1, got {save_freq!r}")
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.steps_per_epoch = int(steps_per_epoch)
        self._state_path = os.path.join(backup_dir, self.STATE)
        self._epoch = 0
        self._last_saved = 0
        self._resume: dict[str, Any] | None = None

    def checkpoints(self) -> list[dict[str, Any]]:
        """The saved checkpoints' records, newest first (at most two; none: ``[]``)."""
        if not os.path.exists(self._state_path):
            return []
        try:
            with open(self._state_path) as f:
                state = json.load(f)
            records = [state, *([state["previous"]] if state.get("previous") else [])]
            records = [{**r, "step": int(r["step"]), "weights": str(r["weights"])} for r in records]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self._state_path} is unreadable ({err}); delete {self.backup_dir} to start afresh") from None
        if int(state.get("steps_per_epoch", -1)) != self.steps_per_epoch:
            raise ValueError(
                f"the checkpoint in {self.backup_dir} was made with {state.get('steps_per_epoch')} steps per epoch, "
                f"this run has {self.steps_per_epoch} (other data, batch size or steps_per_execution); "
                "use another backup folder or delete it"
            )
        for record in records:
            if os.path.basename(record["weights"]) != record["weights"]:
                raise ValueError(f"{self._state_path} names a weights file outside {self.backup_dir}")
        return [r for r in records if os.path.exists(os.path.join(self.backup_dir, r["weights"]))]

    def resume_step(self, strategy=None) -> int:
        """The global step to resume after (0: from the start), agreed with the other
        workers when ``strategy`` spans several; ``on_train_begin`` restores it."""
        from vaezoo import distribute

        records = self.checkpoints()
        newest = records[0]["step"] if records else 0
        step = _agreed_step(strategy, newest) if distribute.is_multi_worker(strategy) else newest
        self._resume = next((r for r in records if r["step"] == step), None)
        if step and self._resume is None:
            raise ValueError(
                f"the workers' newest common checkpoint is step {step}, which {self.backup_dir} no longer has "
                f"(it has {[r['step'] for r in records]}); delete every worker's backup folder to start afresh"
            )
        return step

    def on_train_begin(self, logs=None):
        state = self._resume
        if state is None:
            return
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(self.backup_dir, state["weights"]))
        seeds = _seed_states(model)
        if len(seeds) != len(state["seeds"]):
            raise ValueError(f"the checkpoint in {self.backup_dir} has {len(state['seeds'])} seed states, the model {len(seeds)}")
        for variable, value in zip(seeds, state["seeds"]):
            variable.assign(np.asarray(value, variable.dtype))
        epoch, batch = divmod(state["step"], self.steps_per_epoch)
        model._initial_epoch = epoch
        model._executions_to_skip = batch // model.steps_per_execution
        self._epoch, self._last_saved = epoch, state["step"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self.steps_per_epoch + batch + 1
        due = self.save_freq != "epoch" and step - self._last_saved >= self.save_freq
        if due and batch + 1 < self.steps_per_epoch:  # the epoch end saves after validation
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        self._save((epoch + 1) * self.steps_per_epoch)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    def _save(self, step: int) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self.checkpoints()[:1]
        weights = f"step-{step:012d}.weights.h5"
        tmp = os.path.join(self.backup_dir, f".tmp-{os.getpid()}-{weights}")
        self.model.save_weights(tmp, overwrite=True)
        _replace_durably(tmp, os.path.join(self.backup_dir, weights))
        record = {
            "step": step,
            "epoch": step // self.steps_per_epoch,
            "batch": step % self.steps_per_epoch,
            "weights": weights,
            "seeds": [np.asarray(v).tolist() for v in _seed_states(self.model)],
        }
        state = {**record, "steps_per_epoch": self.steps_per_epoch, "previous": previous[0] if previous else None}
        if state["previous"]:
            state["previous"].pop("previous", None)
            state["previous"].pop("steps_per_epoch", None)
        tmp = os.path.join(self.backup_dir, f".tmp-{os.getpid()}-{self.STATE}")
        with open(tmp, "w") as f:
            json.dump(state, f)
        _replace_durably(tmp, self._state_path)
        keep = {weights, *(r["weights"] for r in previous)}
        for old in glob.glob(os.path.join(self.backup_dir, "step-*.weights.h5")):
            if os.path.basename(old) not in keep:
                os.remove(old)
        self._last_saved = step


def _agreed_step(strategy, step: int) -> int:
    """The smallest of every worker's ``step`` (a collective: all workers call it)."""
    replicas = strategy.num_replicas_in_sync

    @tf.function
    def gather():
        def own():
            context = tf.distribute.get_replica_context()
            own_row = tf.equal(tf.range(replicas), context.replica_id_in_sync_group)
            return tf.where(own_row, tf.constant(step, tf.float64), tf.constant(0, tf.float64))

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(own), axis=None)

    return int(np.min(gather().numpy()))


def _seed_states(model) -> list:
    r"""The state variables of the model's ``keras.random.SeedGenerator``\ s, in order
    (``save_weights`` leaves them out)."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def _replace_durably(tmp: str, path: str) -> None:
    """Flush ``tmp`` to disk, rename it to ``path`` (atomic on POSIX), flush the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def evaluate(
    model, x: np.ndarray | tuple, num_samples: int = 1000, batch_size: int = 100, seed: int = 0, verbose: int = 0
) -> dict[str, float]:
    """Test-set ELBO and importance-sampled NLL (nats), bits/dim, and timing; ``x`` is
    an array of examples, or ``(examples, labels)`` for a conditional model (then the
    NLL is of p(x|y)).

    Example:
        >>> import numpy as np
        >>> model = build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2)
        >>> sorted(evaluate(model, np.zeros((4, 28, 28, 1)), num_samples=5))
        ['bits_per_dim', 'elbo', 'examples', 'nll', 'num_samples', 'seconds']
    """
    start = time.perf_counter()
    x, y = _labelled(model, x, "x")
    data = (x,) if y is None else (x, y)
    elbo, log_px = model.importance_estimates(*data, num_samples, batch_size=batch_size, seed=seed, verbose=verbose)
    nll = -float(np.mean(log_px))
    return {
        "elbo": float(np.mean(elbo)),
        "nll": nll,
        "bits_per_dim": nll / (math.prod(model.data_shape) * math.log(2)),
        "num_samples": int(num_samples),
        "examples": len(x),
        "seconds": time.perf_counter() - start,
    }


def save_model(model, path: str) -> str:
    """Save ``model`` to a ``.keras`` file atomically: write a temp file in the same
    folder, flush it to disk, then rename, so a crash never leaves a half-written file
    at ``path`` (the previous file stays until the new one is complete).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
        >>> save_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2), path) == path
        True
    """
    if not path.endswith(".keras"):
        raise ValueError(f"model files must end in .keras, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=folder, prefix=".tmp-")
    os.close(fd)
    try:
        model.save(tmp)
        _replace_durably(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
