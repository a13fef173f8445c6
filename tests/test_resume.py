"""Crash safety: a training run killed with SIGKILL mid-epoch and restarted with the
same command ends with the weights of an uninterrupted run; a crash during a save
leaves the previous model file or checkpoint intact."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import weights_of

import vaezoo

pytestmark = pytest.mark.subprocess

STEPS_PER_EPOCH = 16  # 512 examples / batch 32


def _train_command(tmp_path, run: str) -> list[str]:
    return [
        sys.executable, "-m", "vaezoo.cli", "train", "--model", "vae", "--data", "binarized_mnist",
        "--limit", "512", "--epochs", "3", "--batch-size", "32", "--steps-per-execution", "1",
        "--config", "hidden_units=[256,128]", "latent_dim=8", "--seed", "3",
        "--backup-dir", str(tmp_path / f"{run}-backup"), "--backup-every", "3",
        "--out", str(tmp_path / f"{run}.keras"), "--json", str(tmp_path / f"{run}.json"), "--verbose", "0",
    ]


def _state(backup_dir) -> dict | None:
    try:
        return json.loads((backup_dir / "training_state.json").read_text())
    except (OSError, ValueError):
        return None


def _kill_mid_epoch(command, backup_dir, log_path, deadline_s: float = 600) -> dict:
    """Start ``command``; SIGKILL it as soon as a checkpoint inside the second epoch
    exists; return the checkpoint that survived the kill."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            end = time.monotonic() + deadline_s
            while time.monotonic() < end and proc.poll() is None:
                state = _state(backup_dir)
                if state and state["step"] > STEPS_PER_EPOCH and state["batch"] != 0:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()  # SIGKILL as well: a no-op after the kill above
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, pathlib.Path(log_path).read_text()[-3000:])
    return _state(backup_dir)


def test_sigkill_mid_epoch_then_rerun_equals_an_uninterrupted_run(tmp_path):
    reference = subprocess.run(_train_command(tmp_path, "reference"), check=False, capture_output=True, text=True, timeout=900)
    assert reference.returncode == 0, reference.stderr[-3000:]

    command = _train_command(tmp_path, "resumed")
    survived = _kill_mid_epoch(command, tmp_path / "resumed-backup", tmp_path / "killed.log")
    assert survived["batch"] != 0, survived  # the restart begins inside an epoch
    assert not (tmp_path / "resumed.keras").exists()
    restarted = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert not (tmp_path / "resumed-backup").exists()  # deleted after a complete run

    a = vaezoo.load_model(str(tmp_path / "reference.keras"))
    b = vaezoo.load_model(str(tmp_path / "resumed.keras"))
    pairs = list(zip(weights_of(a) + [np.asarray(v) for v in a.optimizer.variables],
                     weights_of(b) + [np.asarray(v) for v in b.optimizer.variables]))
    max_diff = max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in pairs)
    print(f"killed after checkpoint step {survived['step']} (epoch {survived['epoch']}, batch {survived['batch']}); "
          f"max |w_resumed - w_uninterrupted| = {max_diff}")
    assert int(b.optimizer.iterations) == 3 * STEPS_PER_EPOCH
    for x, y in pairs:
        np.testing.assert_array_equal(x, y)
    summaries = [json.loads((tmp_path / f"{run}.json").read_text()) for run in ("reference", "resumed")]
    assert summaries[0]["final"]["val_loss"] == summaries[1]["final"]["val_loss"]


SAVE_CRASH_SCRIPT = r"""
import os, signal, sys, zipfile
import numpy as np
from vaezoo import training

path = sys.argv[1]
model = training.build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2)
training.save_model(model, path)
np.save(path + ".before.npy", np.concatenate([np.ravel(v) for v in model.get_weights()]))
model.set_weights([w + 1.0 for w in model.get_weights()])
where = sys.argv[2]
if where == "mid-write":
    real = zipfile.ZipFile.writestr
    def writestr(self, name, data, *args, **kwargs):
        if str(getattr(name, "filename", name)).endswith(".h5"):
            real(self, name, data[: len(data) // 2], *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, name, data, *args, **kwargs)
    zipfile.ZipFile.writestr = writestr
else:
    def replace(src, dst):
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
training.save_model(model, path)
"""


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_crash_during_save_model_leaves_the_previous_file(tmp_path, where):
    path = tmp_path / "model.keras"
    proc = subprocess.run([sys.executable, "-c", SAVE_CRASH_SCRIPT, str(path), where], check=False, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    before = np.load(str(path) + ".before.npy")
    loaded = vaezoo.load_model(str(path))
    np.testing.assert_array_equal(np.concatenate([np.ravel(v) for v in loaded.get_weights()]), before)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    print(f"crash {where}: previous file intact; temp files left behind: {leftovers}")


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from vaezoo._tf import keras
    from vaezoo.training import ResumableBackup, build_for_data, compile_model

    x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
    model = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2), jit_compile=False)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    backup = ResumableBackup(str(tmp_path / "b"), steps_per_epoch=2, save_freq=1)
    backup.set_model(model)
    backup._save(3)
    saved = weights_of(model)

    def torn_write(self, filepath, overwrite=True, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", torn_write)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    with pytest.raises(OSError, match="disk full"):
        backup._save(4)
    monkeypatch.undo()
    assert backup.resume_step() == 3
    fresh = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2), jit_compile=False)
    fresh.optimizer.build(fresh.trainable_variables)
    restore = ResumableBackup(str(tmp_path / "b"), steps_per_epoch=2, save_freq=1)
    restore.set_model(fresh)
    assert restore.resume_step() == 3
    restore.on_train_begin()
    for a, b in zip(weights_of(fresh), saved):
        np.testing.assert_array_equal(a, b)
    assert fresh._initial_epoch == 1 and fresh._executions_to_skip == 1


def test_a_checkpoint_from_another_configuration_is_refused(tmp_path):
    from vaezoo.training import ResumableBackup, build_for_data, compile_model

    model = compile_model(build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    backup = ResumableBackup(str(tmp_path / "b"), steps_per_epoch=2)
    backup.set_model(model)
    backup._save(2)
    with pytest.raises(ValueError, match="steps per epoch"):
        ResumableBackup(str(tmp_path / "b"), steps_per_epoch=5).resume_step()


def test_workers_resume_from_their_newest_common_checkpoint(tmp_path, monkeypatch):
    """A worker killed after its own save but before the others' is one checkpoint
    ahead: all resume from the step they all have (its previous checkpoint)."""
    from vaezoo import distribute, training

    model = training.compile_model(training.build_for_data("vae", (28, 28, 1), hidden_units=(8,), latent_dim=2), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    backup = training.ResumableBackup(str(tmp_path / "worker-0"), steps_per_epoch=4, save_freq=1)
    backup.set_model(model)
    backup._save(1)
    at_step_2 = weights_of(model)
    backup._save(2)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    backup._save(3)  # the other worker died before its step-3 save
    assert [r["step"] for r in backup.checkpoints()] == [3, 2]
    assert sorted(p.name for p in (tmp_path / "worker-0").glob("step-*")) == [
        "step-000000000002.weights.h5", "step-000000000003.weights.h5"]
    monkeypatch.setattr(distribute, "is_multi_worker", lambda strategy=None: True)
    monkeypatch.setattr(training, "_agreed_step", lambda strategy, step: 2)
    assert backup.resume_step() == 2
    backup.on_train_begin()
    for a, b in zip(weights_of(model), at_step_2):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(training, "_agreed_step", lambda strategy, step: 1)
    with pytest.raises(ValueError, match="newest common checkpoint is step 1"):
        backup.resume_step()
