"""NaN/Inf detection in BaseVAE's training step: a non-finite term or gradient stops
training with a report (``on_nan="stop"``) or skips the step (``"skip"``); either way
the bad step's update is never applied. Also: every registered model trains at a
high learning rate without producing a non-finite value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import SMALL, data_for, inputs, small_model, weights_of

import vaezoo


def _compile(model, lr=1e-3, jit=True, steps_per_execution=1, on_nan="stop"):
    from vaezoo.training import compile_model

    return compile_model(model, lr, jit_compile=jit, steps_per_execution=steps_per_execution, on_nan=on_nan)


def _snapshots(model, into: list):
    from vaezoo._tf import keras

    return keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: into.append(weights_of(model)))


def _poisoned(x, batch_size: int, bad_batches: set[int]):
    """Batches of ``x`` with one NaN pixel (example 5) in each of ``bad_batches``, added
    after the input check, as data corrupted inside a pipeline would be."""
    from vaezoo._tf import tf
    from vaezoo.models.base import trusted_dataset

    pixel = np.zeros((batch_size,) + x.shape[1:], bool)
    pixel[(5,) + (0,) * (x.ndim - 1)] = True
    bad = tf.constant(sorted(bad_batches), tf.int64)
    data = tf.data.Dataset.from_tensor_slices(x).batch(batch_size, drop_remainder=True).enumerate()
    return trusted_dataset(data.map(lambda i, b: tf.where(tf.reduce_any(tf.equal(i, bad)) & pixel, np.nan, b)))


@pytest.fixture(scope="module")
def binary(load_small):
    return load_small("binarized_mnist").train.x[:256]


@pytest.mark.parametrize("jit", [True, False], ids=["xla", "no-xla"])
def test_nan_batch_stops_naming_step_terms_and_batch_statistics(binary, jit):
    from vaezoo.models.base import NonFiniteError

    model = _compile(small_model("vae", binary.shape[1:]), jit=jit)
    snapshots: list = []
    with pytest.raises(NonFiniteError) as info:
        model.fit(_poisoned(binary, 32, {2}), epochs=1, verbose=0, callbacks=[_snapshots(model, snapshots)])
    message = str(info.value)
    print(message)
    assert "training step 3 " in message
    # (KL may stay finite: without XLA, relu(NaN) is 0 in the encoder)
    for term in ("loss = nan", "reconstruction = nan", "elbo = nan", "grad(loss) = nan"):
        assert term in message
    assert "32 examples, min 0, max 1," in message and "1 non-finite values" in message
    assert len(snapshots) == 2  # steps 1 and 2 ran; step 3 raised
    for now, before in zip(weights_of(model), snapshots[-1]):
        np.testing.assert_array_equal(now, before)
    assert int(model.optimizer.iterations) == 2


def test_steps_after_the_bad_one_in_the_same_execution_are_not_applied(binary):
    """XLA, 4 steps per execution, NaN in step 3: the model ends as after step 2."""
    from vaezoo.models.base import NonFiniteError

    start = small_model("vae", binary.shape[1:])
    initial = start.get_weights()
    reference = _compile(small_model("vae", binary.shape[1:]), steps_per_execution=1)
    reference.set_weights(initial)
    reference.fit(_poisoned(binary[:64], 32, set()), epochs=1, verbose=0)
    model = _compile(small_model("vae", binary.shape[1:]), steps_per_execution=4)
    model.set_weights(initial)
    with pytest.raises(NonFiniteError, match="training step 3 "):
        model.fit(_poisoned(binary[:256], 32, {2}), epochs=1, verbose=0)
    for now, expected in zip(weights_of(model), weights_of(reference)):
        np.testing.assert_array_equal(now, expected)


def test_a_term_going_infinite_is_named(binary):
    from vaezoo._tf import tf
    from vaezoo.models import VAE
    from vaezoo.models.base import NonFiniteError

    class InfiniteKL(VAE):
        """KL = +inf at the third update (its gradient stays finite)."""

        def objective(self, x, training=False):
            terms = super().objective(x, training)
            kl = tf.where(tf.equal(self.optimizer.iterations, 2), np.inf, terms["kl"])
            return {**terms, "kl": kl, "loss": terms["reconstruction"] + kl, "elbo": -(terms["reconstruction"] + kl)}

    model = _compile(InfiniteKL(data_shape=binary.shape[1:], **SMALL))
    with pytest.raises(NonFiniteError) as info:
        model.fit(binary, epochs=1, batch_size=32, verbose=0)
    message = str(info.value)
    bad, finite = message.split("(finite: ")
    assert "kl = inf" in bad and "loss = inf" in bad and "elbo = -inf" in bad
    assert "reconstruction = " in finite and "grad(loss) = " in finite and "reconstruction" not in bad


def test_a_finite_gradient_whose_square_overflows_is_not_applied(binary):
    """A gradient of 1e20 is finite, but its square overflows Adam's second moment (NaN
    one step later): the step is refused, and the report gives the gradient norm."""
    from vaezoo._tf import tf
    from vaezoo.models import VAE
    from vaezoo.models.base import NonFiniteError

    class SteepLoss(VAE):
        """loss + 1e20 * (sum of the first weight matrix), from the third update on."""

        def objective(self, x, training=False):
            terms = super().objective(x, training)
            steep = tf.where(self.optimizer.iterations >= 2, 1e20, 0.0) * tf.reduce_sum(self.trainable_variables[0])
            return {**terms, "loss": terms["loss"] + steep}

    model = _compile(SteepLoss(data_shape=binary.shape[1:], **SMALL), jit=True)
    snapshots: list = []
    with pytest.raises(NonFiniteError) as info:
        model.fit(binary, epochs=1, batch_size=32, verbose=0, callbacks=[_snapshots(model, snapshots)])
    bad, finite = str(info.value).split("(finite: ")
    assert "training step 3 " in bad and "grad(loss) = inf" in bad and "loss = " in finite
    assert len(snapshots) == 2
    for now, before in zip(weights_of(model), snapshots[-1]):
        np.testing.assert_array_equal(now, before)


def test_exploding_learning_rate_stops_with_the_last_finite_weights(binary):
    from vaezoo.models.base import NonFiniteError

    model = _compile(small_model("vae", binary.shape[1:]), lr=1e6)
    snapshots: list = []
    with pytest.raises(NonFiniteError) as info:
        model.fit(np.concatenate([binary] * 4), epochs=1, batch_size=32, verbose=0, callbacks=[_snapshots(model, snapshots)])
    print(f"lr=1e6: stopped after {len(snapshots)} good steps: {info.value}")
    assert f"training step {len(snapshots) + 1} " in str(info.value)
    for now, before in zip(weights_of(model), snapshots[-1]):
        np.testing.assert_array_equal(now, before)
        assert np.isfinite(now).all()


def test_skip_mode_skips_bad_steps_and_training_ends_finite(binary):
    model = _compile(small_model("vae", binary.shape[1:]), on_nan="skip")
    snapshots: list = []
    with pytest.warns(RuntimeWarning, match="skipped a step: non-finite value at training step 3 ") as warned:
        history = model.fit(
            _poisoned(binary, 32, {2, 5}), epochs=2, verbose=0, callbacks=[_snapshots(model, snapshots)]
        ).history
    assert len([w for w in warned if "skipped a step" in str(w.message)]) == 4  # 2 per epoch
    assert model.nonfinite_steps == 4
    assert all(math.isfinite(v) for values in history.values() for v in values), history
    for unchanged, before in zip(snapshots[2], snapshots[1]):
        np.testing.assert_array_equal(unchanged, before)
    assert all(np.isfinite(w).all() for w in weights_of(model))
    assert int(model.optimizer.iterations) == 2 * 8 - 4


def test_skip_mode_survives_an_exploding_learning_rate(binary):
    model = _compile(small_model("vae", binary.shape[1:]), lr=1e6, on_nan="skip")
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        model.fit(np.concatenate([binary] * 4), epochs=1, batch_size=32, verbose=0)
    assert model.nonfinite_steps > 0
    assert all(np.isfinite(w).all() for w in weights_of(model))


def test_on_nan_is_validated_and_saved_with_the_model(tmp_path):
    model = small_model("vae", (28, 28, 1))
    with pytest.raises(ValueError, match="on_nan"):
        model.compile(optimizer="adam", on_nan="ignore")
    model.compile(optimizer="adam", on_nan="skip")
    model.save(str(tmp_path / "m.keras"))
    assert vaezoo.load_model(str(tmp_path / "m.keras")).on_nan == "skip"


def test_cli_on_nan(tmp_path, monkeypatch):
    from vaezoo import cli

    monkeypatch.chdir(tmp_path)
    base = ["train", "--model", "vae", "--data", "binarized_mnist", "--limit", "256", "--epochs", "1",
            "--batch-size", "32", "--lr", "1e6", "--config", "hidden_units=[32]", "latent_dim=4", "--verbose", "0"]
    with pytest.raises(SystemExit, match="vaezoo train: error: .*non-finite value at training step"):
        cli.main([*base, "--out", "stop.keras"])
    assert not (tmp_path / "stop.keras").exists()
    with pytest.warns(RuntimeWarning):
        assert cli.main([*base, "--on-nan", "skip", "--out", "skip.keras", "--json", "s.json"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["nonfinite_steps"] > 0


@pytest.mark.parametrize("name", vaezoo.list_models())
def test_every_model_trains_50_steps_at_lr_1e_2_without_non_finite_values(name, load_small):
    """Numerically safe heads: Adam at 1e-2 (10x the default) for 50 steps; on_nan="stop"
    would raise at the first NaN or Inf in any term or gradient."""
    from vaezoo.training import train

    data = data_for(load_small, name)
    model = _compile(small_model(name, data.train.x.shape[1:]), lr=1e-2, steps_per_execution=5)
    train_data, valid_data = inputs(model, data.train, 800), inputs(model, data.valid, 64)
    result = train(model, train_data, valid_data, epochs=2, batch_size=32, verbose=0)
    assert int(model.optimizer.iterations) == 50 and model.nonfinite_steps == 0
    assert all(math.isfinite(v) for values in result.history.values() for v in values), result.history
    assert all(np.isfinite(w).all() for w in weights_of(model))
