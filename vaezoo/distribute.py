"""Training on several devices or machines with ``tf.distribute``: pick a strategy,
build and compile the model inside its scope, then ``fit`` as usual.

Example:
    >>> import numpy as np
    >>> from vaezoo import distribute, training
    >>> strategy = distribute.make_strategy("mirrored")  # every local GPU, else the CPU
    >>> with distribute.strategy_scope(strategy):
    ...     model = training.build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2)
    ...     model = training.compile_model(model)
    >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
    >>> len(model.fit(x, epochs=1, batch_size=32, verbose=0).history["loss"])
    1

``batch_size`` is the global batch: each of the N replicas gets 1/N of it, losses and
metrics are means over the global batch, and gradients are summed over replicas.
See ``docs/scaling.md`` for multi-GPU boxes, clusters (``TF_CONFIG``), Kubernetes and
TPU VMs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from typing import Any

from vaezoo._tf import tf

#: The names ``make_strategy`` (and ``vaezoo train --strategy``) accept.
STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name: str = "none", devices: Sequence[str] | None = None) -> tf.distribute.Strategy | None:
    """A ``tf.distribute`` strategy by name, or None for plain single-device training.

    Args:
        name: ``"none"``; ``"mirrored"`` (``MirroredStrategy``: synchronous data
            parallelism over the GPUs of one machine, or its CPU when it has none);
            ``"multiworker"`` (``MultiWorkerMirroredStrategy``: the same over the
            machines that the ``TF_CONFIG`` environment variable lists; without it,
            one worker).
        devices: for ``"mirrored"`` only, the devices to use (default: all GPUs).

    Example:
        >>> make_strategy("none") is None
        True
        >>> make_strategy("mirrored", ["/cpu:0"]).num_replicas_in_sync
        1
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices apply to the mirrored strategy only, not {name!r}")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(None if devices is None else list(devices))
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


def strategy_scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager:
    """``strategy.scope()``, or a no-op context for ``None``: build and compile in it.

    Example:
        >>> with strategy_scope(None):
        ...     pass
    """
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def split_cpu(count: int) -> list[str]:
    """Split the CPU into ``count`` logical devices, e.g. to try ``MirroredStrategy``
    on a laptop. Must run before TensorFlow starts its runtime (before any op or
    device query); returns the device names.

    Example:
        >>> import subprocess, sys
        >>> code = "from vaezoo import distribute; print(distribute.split_cpu(2))"
        >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
        ...                timeout=120).stdout.split()[-1]
        "'/device:CPU:1']"
    """
    if int(count) < 1:
        raise ValueError(f"count must be >= 1, got {count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(count))
    except RuntimeError as err:
        raise RuntimeError(
            "split_cpu must run before TensorFlow initialises its runtime (call it first, "
            f"in a fresh process): {err}"
        ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def tf_config(workers: Sequence[str], index: int, task_type: str = "worker") -> str:
    """The ``TF_CONFIG`` JSON of task ``index`` in a cluster of ``workers`` (host:port).

    Example:
        >>> tf_config(["10.0.0.1:2222", "10.0.0.2:2222"], 1)
        '{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}'
    """
    if not 0 <= int(index) < len(workers):
        raise ValueError(f"index must be in [0, {len(workers)}), got {index!r}")
    return json.dumps({"cluster": {task_type: list(workers)}, "task": {"type": task_type, "index": int(index)}})


def task() -> tuple[str, int]:
    """(task type, index) of this process from ``TF_CONFIG``; ``("worker", 0)`` without it.

    Example:
        >>> import os
        >>> "TF_CONFIG" in os.environ or task() == ("worker", 0)
        True
    """
    config: dict[str, Any] = json.loads(os.environ.get("TF_CONFIG") or "{}")
    spec = config.get("task") or {}
    return str(spec.get("type", "worker")), int(spec.get("index", 0))


def is_chief() -> bool:
    """Whether this process writes the results: the ``chief`` task, or worker 0 of a
    cluster without one, or any process without ``TF_CONFIG``.

    Example:
        >>> "TF_CONFIG" in os.environ or is_chief()
        True
    """
    config: dict[str, Any] = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task_type, index = task()
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in config.get("cluster", {})


def replicas_in_sync() -> int:
    """Number of replicas of the current strategy (1 outside any strategy).

    Example:
        >>> replicas_in_sync()
        1
    """
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def fold_replica_id(seed: tf.Tensor) -> tf.Tensor:
    """A stateless seed pair made distinct per replica: ``seed`` folded with the
    replica id when more than one replica trains, else ``seed`` unchanged.

    Example:
        >>> import tensorflow as tf
        >>> fold_replica_id(tf.constant([3, 4])).numpy().tolist()
        [3, 4]
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(context.replica_id_in_sync_group, tf.int32))


def is_multi_worker(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether ``strategy`` (default: the current one) spans several worker processes.

    Keras reduces the logs of such a strategy with ``strategy.reduce(MEAN, axis=0)``,
    which needs each log to have a batch axis (tensorflow/tensorflow#72388); vaezoo
    models then return shape-[1] logs, which that reduction turns back into scalars.

    Example:
        >>> is_multi_worker()
        False
    """
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )
