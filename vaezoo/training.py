"""Training and evaluation recipes shared by the CLI, the quickstart and the benchmarks."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from typing import Any

import numpy as np


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


def compile_model(model, learning_rate: float = 1e-3, jit_compile: bool = True, steps_per_execution: int = 1):
    """Compile with Adam; XLA (``jit_compile``) is on by default."""
    from vaezoo._tf import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def train(
    model,
    x_train: np.ndarray,
    x_valid: np.ndarray | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    callbacks: list | None = None,
    verbose: int | str = "auto",
    seed: int = 0,
) -> TrainResult:
    """Fit ``model`` (already compiled) and time it.

    Example:
        >>> import numpy as np
        >>> model = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2))
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> train(model, x, epochs=1, batch_size=32, verbose=0).history["loss"][0] > 0
        True
    """
    from vaezoo._tf import keras

    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    keras.utils.set_random_seed(seed)
    epoch_seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - epoch_seconds.pop()),
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        validation_data=None if x_valid is None else (x_valid,),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[*(callbacks or []), timer],
        verbose=verbose,
        shuffle=True,
    )
    seconds = time.perf_counter() - start
    steady = float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds))
    history_dict = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return TrainResult(model, history_dict, seconds, epoch_seconds, len(x_train) / steady)


def evaluate(model, x: np.ndarray, num_samples: int = 1000, batch_size: int = 100, seed: int = 0, verbose: int = 0) -> dict[str, float]:
    """Test-set ELBO and importance-sampled NLL (nats), bits/dim, and timing.

    Example:
        >>> import numpy as np
        >>> model = build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2)
        >>> sorted(evaluate(model, np.zeros((4, 28, 28, 1)), num_samples=5))
        ['bits_per_dim', 'elbo', 'examples', 'nll', 'num_samples', 'seconds']
    """
    start = time.perf_counter()
    elbo, log_px = model.importance_estimates(x, num_samples, batch_size=batch_size, seed=seed, verbose=verbose)
    nll = -float(np.mean(log_px))
    return {
        "elbo": float(np.mean(elbo)),
        "nll": nll,
        "bits_per_dim": nll / (math.prod(model.data_shape) * math.log(2)),
        "num_samples": int(num_samples),
        "examples": int(len(x)),
        "seconds": time.perf_counter() - start,
    }


def save_model(model, path: str) -> str:
    """Save ``model`` to a ``.keras`` file atomically: write a temp file in the same
    folder, then rename, so a crash never leaves a half-written file at ``path``.

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
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
