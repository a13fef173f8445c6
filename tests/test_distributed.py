"""Training under tf.distribute: MirroredStrategy over two logical CPUs and
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1.

Each scenario runs in fresh Python processes (logical devices and collective ops must
be configured before TensorFlow starts); they report JSON that the tests check.

What "the same curve" means here. The distributed step must compute the gradient of
the global-batch mean loss, whatever the split over replicas; but replicas must not
reuse noise, so a stochastic model's mirrored run draws other noise than the
single-device run and the two curves agree only to Monte Carlo error. The exact
comparison therefore uses a deterministic configuration, a VAE whose z is the
posterior mean: there the mirrored curve equals the single-device curve up to float
rounding (the two runs sum the same numbers in another order). The stochastic models
are checked separately: replicas draw different noise, and the curves stay within a
few percent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from helpers import SMALL

import vaezoo

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

MIRRORED_SCRIPT = r"""
import json, sys
from vaezoo import distribute
distribute.split_cpu(2)
import numpy as np
import vaezoo
from vaezoo import training
from vaezoo._tf import keras, tf
from vaezoo.models import VAE
from vaezoo.models.base import NonFiniteError, trusted_dataset

SMALL = json.loads(sys.argv[2])
out = {}
strategy = distribute.make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
x = (np.random.default_rng(0).random((512, 28, 28, 1)) > 0.5).astype("float32")


class PosteriorMeanVAE(VAE):
    # z = the posterior mean: no noise, so two runs can agree to float rounding.
    def elbo_terms(self, x, training=False):
        q = self.encode(x, training)
        z = q.mean()
        p_x = self.likelihood.distribution(self.decoder_params(z, training))
        return {"reconstruction": -p_x.log_prob(x), "kl": self.kl_divergence(q, z), "z": z, "q": q}


def run(make, strategy, init=None, epochs=3):
    with distribute.strategy_scope(strategy):
        model = training.compile_model(make(), 1e-3, jit_compile=False)
    if init is not None:
        model.set_weights(init)
    start = [np.asarray(v) for v in model.weights]
    curve = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: curve.append(float(logs["loss"])))
    history = training.train(model, x, x[:128], epochs, 64, [record], 0, seed=0).history
    return model, start, curve, history


def compare(make):
    single, start, curve_1, history_1 = run(make, None)
    mirrored, _, curve_2, history_2 = run(make, strategy, init=start)
    c1, c2 = np.array(curve_1), np.array(curve_2)
    return {
        "replicas": mirrored.distribute_strategy.num_replicas_in_sync,
        "steps": len(c1),
        "curve_single": curve_1,
        "curve_mirrored": curve_2,
        "max_rel_curve_diff": float(np.max(np.abs(c1 - c2) / np.abs(c1))),
        "max_rel_val_diff": float(np.max(np.abs(np.subtract(history_1["val_loss"], history_2["val_loss"])) / np.abs(history_1["val_loss"]))),
        "max_abs_weight_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(single.trainable_weights, mirrored.trainable_weights)),
    }


out["deterministic"] = compare(lambda: PosteriorMeanVAE(hidden_units=(32,), latent_dim=4, seed=0))
out["stochastic"] = compare(lambda: vaezoo.create_model("vae", hidden_units=(32,), latent_dim=4, seed=0))

# Replicas draw different noise: the same input on both replicas, one sample each.
with strategy.scope():
    model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
same = tf.constant(x[:4])

@tf.function
def draw():
    return strategy.run(lambda: (model._next_seed(), model.encode(same).sample(seed=model._next_seed())))

(seeds, samples) = draw()
seeds = [np.asarray(s).tolist() for s in strategy.experimental_local_results(seeds)]
samples = [np.asarray(s) for s in strategy.experimental_local_results(samples)]
out["replica_seeds"] = seeds
out["replica_noise_differs"] = bool(not np.allclose(samples[0], samples[1]))

# A NaN in one replica's share of a batch stops every replica, before the update.
with strategy.scope():
    model = training.compile_model(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2), jit_compile=False)
snapshots = []
keep = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: snapshots.append([np.asarray(v) for v in model.trainable_weights]))
one_pixel = np.zeros((64, 28, 28, 1), bool)
one_pixel[40, 0, 0, 0] = True  # example 40 of 64: on the second replica
data = tf.data.Dataset.from_tensor_slices(x[:256]).batch(64).enumerate().map(
    lambda i, b: tf.where((i == 2) & one_pixel, np.nan, b)
)
try:
    model.fit(trusted_dataset(data), epochs=1, verbose=0, callbacks=[keep])
    out["nan"] = {"raised": False}
except NonFiniteError as err:
    after = [np.asarray(v) for v in model.trainable_weights]
    out["nan"] = {
        "raised": True,
        "message": str(err),
        "steps_done": len(snapshots),
        "weights_equal_before_bad_step": all(np.array_equal(a, b) for a, b in zip(after, snapshots[-1])),
    }

# Every registered model trains under MirroredStrategy with model.fit.
out["models"] = {}
for name in vaezoo.list_models():
    shape = (64, 64, 1) if vaezoo.get_spec(name).data == "shapes" else (28, 28, 1)
    data = (np.random.default_rng(1).random((128,) + shape) > 0.5).astype("float32")
    labels = np.random.default_rng(2).integers(0, 10, len(data))
    with strategy.scope():
        model = training.compile_model(training.build_for_data(name, shape, **SMALL), jit_compile=False)
        inputs = (data, labels) if getattr(model, "conditional", False) else (data,)
        history = model.fit(*inputs, epochs=1, batch_size=64, verbose=0).history
    out["models"][name] = {k: v[-1] for k, v in history.items()}
json.dump(out, open(sys.argv[1], "w"))
"""

WORKER_SCRIPT = r"""
import json, sys
from vaezoo import distribute
strategy = distribute.make_strategy("multiworker")
import numpy as np
import vaezoo
from vaezoo import training
from vaezoo._tf import keras

SMALL = json.loads(sys.argv[2])
out = {"replicas": strategy.num_replicas_in_sync, "multi_worker": distribute.is_multi_worker(strategy), "models": {}}
weights = {}
for name in json.loads(sys.argv[3]):
    shape = (64, 64, 1) if vaezoo.get_spec(name).data == "shapes" else (28, 28, 1)
    x = (np.random.default_rng(1).random((192,) + shape) > 0.5).astype("float32")
    with strategy.scope():
        model = training.compile_model(training.build_for_data(name, shape, **SMALL))
    shapes = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: shapes.append(np.shape(logs["loss"])))
    labels = np.random.default_rng(2).integers(0, 10, len(x))
    inputs = (x, labels) if getattr(model, "conditional", False) else x
    history = training.train(model, inputs, epochs=1, batch_size=64, callbacks=[record], verbose=2, seed=0).history
    out["models"][name] = {k: v for k, v in history.items()}
    out["batch_log_shapes"] = sorted({str(s) for s in shapes})
    for i, v in enumerate(model.weights):
        weights[f"{name}/{i}"] = np.asarray(v)
np.savez(sys.argv[1] + ".npz", **weights)
json.dump(out, open(sys.argv[1] + ".json", "w"))
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(argv_for, tmp_path, timeout: float) -> list[str]:
    """Start one process per worker with its TF_CONFIG on loopback ports; wait for all
    (bounded), kill any still running; return each worker's output."""
    from vaezoo.distribute import tf_config

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs, logs = [], []
    try:
        for index in range(len(workers)):
            log = open(tmp_path / f"worker{index}.log", "w")  # noqa: SIM115 (closed in the finally below)
            logs.append(log)
            env = {**os.environ, "TF_CONFIG": tf_config(workers, index), "TF_CPP_MIN_LOG_LEVEL": "2"}
            procs.append(subprocess.Popen(argv_for(index), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path))
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for log in logs:
            log.close()
    outputs = [(tmp_path / f"worker{i}.log").read_text() for i in range(len(workers))]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    return outputs


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    path = tmp_path_factory.mktemp("mirrored") / "out.json"
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(path), json.dumps(SMALL)],
        check=False, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(path.read_text())


def test_mirrored_curve_equals_single_device_curve(mirrored):
    """Deterministic VAE, global batch 64: one device vs. 2 replicas x 32, same start."""
    result = mirrored["deterministic"]
    print("deterministic:", {k: v for k, v in result.items() if not k.startswith("curve")})
    assert result["replicas"] == 2 and result["steps"] == 24
    assert result["max_rel_curve_diff"] < 1e-5, result
    assert result["max_rel_val_diff"] < 1e-5, result
    assert result["max_abs_weight_diff"] < 1e-4, result


def test_mirrored_stochastic_curve_agrees_to_monte_carlo_error(mirrored):
    result = mirrored["stochastic"]
    print("stochastic:", {k: v for k, v in result.items() if not k.startswith("curve")})
    assert result["curve_single"] != result["curve_mirrored"]  # the replicas drew their own noise
    assert result["max_rel_curve_diff"] < 0.02, result


def test_replicas_draw_different_noise(mirrored):
    first, second = mirrored["replica_seeds"]
    assert first != second
    assert mirrored["replica_noise_differs"]


def test_mirrored_nan_in_one_replica_stops_all_before_the_update(mirrored):
    nan = mirrored["nan"]
    assert nan["raised"], nan
    assert "training step 3 " in nan["message"] and "reconstruction = nan" in nan["message"], nan["message"]
    assert "1 non-finite values" in nan["message"] and "64 examples" in nan["message"], nan["message"]
    assert nan["steps_done"] == 2 and nan["weights_equal_before_bad_step"], nan


def test_every_registered_model_trains_under_mirrored_strategy(mirrored):
    assert sorted(mirrored["models"]) == vaezoo.list_models()
    for name, final in mirrored["models"].items():
        assert all(np.isfinite(v) for v in final.values()), (name, final)


# Every registered model (labelled ones train on (examples, labels)), in groups small
# enough for one worker pair within the timeout.
WORKER_GROUPS = [vaezoo.list_models()[i::4] for i in range(4)]


@pytest.mark.parametrize("group", range(len(WORKER_GROUPS)))
def test_two_workers_train_every_model_to_identical_weights(group, tmp_path):
    names = WORKER_GROUPS[group]
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    argv = lambda i: [sys.executable, str(script), f"w{i}", json.dumps(SMALL), json.dumps(names)]
    outputs = _run_workers(argv, tmp_path, timeout=800)
    results = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2)]
    weights = [np.load(tmp_path / f"w{i}.npz") for i in range(2)]
    assert all(r["replicas"] == 2 and r["multi_worker"] for r in results)
    assert sorted(results[0]["models"]) == sorted(names)
    assert sorted(name for group in WORKER_GROUPS for name in group) == vaezoo.list_models()
    diffs = {}
    for key in weights[0].files:
        diffs[key.split("/")[0]] = max(diffs.get(key.split("/")[0], 0.0), float(np.max(np.abs(weights[0][key] - weights[1][key]))))
    print("max |w_worker0 - w_worker1| per model:", diffs)
    assert max(diffs.values()) == 0.0, diffs
    for name, history in results[0]["models"].items():
        assert all(np.isfinite(v) for values in history.values() for v in values), (name, history)
        assert history == results[1]["models"][name]  # the same logs on both workers
    # The steps return shape-[1] logs (tensorflow/tensorflow#72388); Keras's reduction
    # makes them scalars again, so callbacks and the progress bar see plain numbers.
    assert results[0]["batch_log_shapes"] == ["()"], results[0]["batch_log_shapes"]
    assert "- loss: " in outputs[0] and "loss: [" not in outputs[0], outputs[0][-2000:]


def test_cli_multiworker_trains_and_the_chief_saves(tmp_path):
    out = tmp_path / "model.keras"

    def argv(index):
        return [
            sys.executable, "-m", "vaezoo.cli", "train", "--model", "vae", "--data", "binarized_mnist", "--limit", "256",
            "--epochs", "1", "--batch-size", "64", "--config", "hidden_units=[16]", "latent_dim=2",
            "--strategy", "multiworker", "--backup-dir", str(tmp_path / "backup"), "--backup-every", "2",
            "--out", str(out), "--json", str(tmp_path / f"summary{index}.json"),
            "--verbose", "0",
        ]

    _run_workers(argv, tmp_path, timeout=400)
    summaries = [json.loads((tmp_path / f"summary{i}.json").read_text()) for i in range(2)]
    assert [s["replicas"] for s in summaries] == [2, 2]
    assert summaries[0]["out"] == str(out) and summaries[1]["out"] is None
    assert summaries[0]["final"] == summaries[1]["final"]
    assert vaezoo.load_model(str(out)).latent_dim == 2
    assert not any((tmp_path / "backup").iterdir())  # each worker's checkpoints, deleted at the end


def test_cli_mirrored_on_this_machine(tmp_path):
    """`vaezoo train --strategy mirrored` in its own process, as a user runs it (the TF
    runtime of this pytest process has run the tests above)."""
    argv = [
        sys.executable, "-m", "vaezoo.cli", "train", "--model", "vae", "--data", "binarized_mnist", "--limit", "128",
        "--epochs", "1", "--batch-size", "64", "--config", "hidden_units=[8]", "latent_dim=2", "--strategy", "mirrored",
        "--out", "m.keras", "--json", "s.json", "--verbose", "0",
    ]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["strategy"] == "mirrored" and summary["replicas"] >= 1
    assert (tmp_path / "m.keras").exists()
