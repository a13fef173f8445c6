"""The registry matrix: every registered model is trained, checked, saved and reloaded
by the same tests. A new model added to the registry is covered without new test code."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from helpers import (
    data_args,
    data_for,
    dataset_of,
    inputs,
    sample_kwargs,
    small_model,
    weights_of,
)

import vaezoo
from vaezoo.models import VAE

MODELS = vaezoo.list_models()


def _compile(model, jit=True):
    from vaezoo.training import compile_model

    return compile_model(model, 1e-3, jit_compile=jit, steps_per_execution=4)


@pytest.fixture(scope="module", params=MODELS)
def trained(request, load_small):
    """(name, model, history, data) for every registered model, trained for 3 epochs."""
    from vaezoo._tf import keras

    name = request.param
    data = data_for(load_small, name)
    keras.utils.set_random_seed(0)
    model = _compile(small_model(name, data.train.x.shape[1:]))
    history = model.fit(
        *inputs(model, data.train), validation_data=inputs(model, data.valid), epochs=3, batch_size=64, verbose=0
    ).history
    return name, model, history, data


def test_fit_trains_and_reports_every_term(trained):
    name, model, history, _ = trained
    for metric in model.metric_names:
        assert metric in history and f"val_{metric}" in history, (name, sorted(history))
        assert all(math.isfinite(v) for v in history[metric] + history[f"val_{metric}"])
    assert history["loss"][-1] < history["loss"][0], history["loss"]
    expected = -(np.array(history["reconstruction"]) + np.array(history["kl"]))
    np.testing.assert_allclose(history["elbo"], expected, rtol=1e-4, atol=1e-3)
    if type(model).objective is VAE.objective:  # the plain ELBO objective
        np.testing.assert_allclose(history["elbo"], -np.array(history["loss"]), rtol=1e-5)


def test_config_round_trip_is_identical(trained):
    _, model, _, _ = trained
    config = model.get_config()
    rebuilt = type(model).from_config(json.loads(json.dumps(config)))
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert rebuilt.count_params() == model.count_params()


def test_save_load_safe_mode_gives_identical_outputs(trained, tmp_path):
    from vaezoo._tf import keras

    _, model, _, data = trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    for a, b in zip(weights_of(model), weights_of(loaded)):
        np.testing.assert_array_equal(a, b)
    x = inputs(model, data.test, 16)
    np.testing.assert_array_equal(model.reconstruct(*x), loaded.reconstruct(*x))
    labels = sample_kwargs(model, 8)
    np.testing.assert_array_equal(model.sample(8, seed=3, **labels), loaded.sample(8, seed=3, **labels))


def test_elbo_is_below_the_importance_weighted_bound(trained):
    _, model, _, data = trained
    x = inputs(model, data.test, 128)
    elbo, log_px_1 = model.importance_estimates(*x, 1, seed=1)
    np.testing.assert_allclose(elbo, log_px_1, rtol=1e-5)
    means = {k: float(np.mean(model.log_likelihood(*x, num_samples=k, seed=1))) for k in (1, 10, 100)}
    if getattr(model, "deterministic_posterior", False):  # a point-mass q: every k-sample bound is the ELBO
        np.testing.assert_allclose(list(means.values()), float(np.mean(elbo)), rtol=1e-6)
        return
    assert means[1] < means[10] < means[100], means
    assert float(np.mean(model.elbo(*x, num_samples=20))) <= means[100]


def test_sample_and_reconstruct(trained):
    _, model, _, data = trained
    labels = sample_kwargs(model, 5)
    samples = model.sample(5, seed=1, **labels)
    recon = model.reconstruct(*inputs(model, data.test, 7))
    assert samples.shape == (5,) + model.data_shape and recon.shape == (7,) + model.data_shape
    assert np.isfinite(samples).all() and np.isfinite(recon).all()
    np.testing.assert_array_equal(model.sample(5, seed=1, **labels), samples)
    assert not np.array_equal(model.sample(5, seed=2, **labels), samples)
    drawn = model.sample(5, seed=1, mean=False, **labels)
    model.check_data(drawn)  # random draws lie in the likelihood's support


SEED_CASES = [(name, False) for name in MODELS] + [("vae", True), ("conv_vae", True)]


@pytest.mark.parametrize(("name", "jit"), SEED_CASES, ids=[f"{n}-{'xla' if j else 'graph'}" for n, j in SEED_CASES])
def test_same_seed_same_weights(name, jit, load_small):
    """Two runs from the same seed end with identical weights: every model as a compiled
    graph (2.5x cheaper to build than XLA; the trained fixture trains each under XLA),
    and two models under XLA."""
    from vaezoo._tf import keras

    data = data_for(load_small, name)
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        model = _compile(small_model(name, data.train.x.shape[1:], seed=7), jit=jit)
        model.fit(*inputs(model, data.train, 256), epochs=1, batch_size=64, verbose=0)
        runs.append(weights_of(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _bad_inputs(model, x):
    bad = {
        "shape": (x[:, :-1], ValueError, "shape"),
        "dtype": (np.full(x.shape, "a"), TypeError, "dtype"),
        "nan": (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), ValueError, "NaN"),
        "inf": (np.where(np.arange(x.size).reshape(x.shape) == 9, np.inf, x), ValueError, "non-finite"),
        "empty": (x[:0], ValueError, "empty"),
    }
    outside = {"Bernoulli": 0.5, "ContinuousBernoulli": 1.5, "Categorical": 0.3}.get(type(model.likelihood).__name__)
    if outside is not None:
        bad["support"] = (np.full(x.shape, outside, np.float32), ValueError, "outside the support")
    return bad


@pytest.mark.parametrize("name", MODELS)
def test_bad_input_is_refused_before_any_step(name, load_small):
    data = data_for(load_small, name)
    model = _compile(small_model(name, data.train.x.shape[1:]), jit=False)
    before = weights_of(model)
    for (x, error, words) in _bad_inputs(model, data.train.x[:32]).values():
        with pytest.raises(error, match=words):
            model.fit(*data_args(model, x, data.train.y), epochs=1, batch_size=16, verbose=0)
        with pytest.raises(error, match=words):
            model.evaluate(*data_args(model, x, data.train.y), verbose=0)
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_bad_tf_data_batches_are_refused(name, load_small):
    data = data_for(load_small, name)
    model = _compile(small_model(name, data.train.x.shape[1:]), jit=False)
    x = data.train.x[:32].copy()
    x[20, 0, 0, 0] = np.nan
    with pytest.raises(Exception, match="NaN"):
        model.fit(dataset_of(model, x, data.train.y).batch(16), epochs=1, verbose=0)
    wrong = dataset_of(model, x[:, :-1], data.train.y).batch(16)
    with pytest.raises(ValueError, match="shape"):
        model.fit(wrong, epochs=1, verbose=0)


@pytest.mark.subprocess
def test_saved_models_reload_in_a_fresh_process(tmp_path, load_small):
    """Every registered model, saved here, loads in a new interpreter with
    ``safe_mode=True`` and no ``custom_objects`` and gives identical outputs."""
    expected = {}
    for name in MODELS:
        data = data_for(load_small, name)
        model = small_model(name, data.train.x.shape[1:])
        model.save(str(tmp_path / f"{name}.keras"))
        args = inputs(model, data.test, 8)  # (x,) or (x, y)
        for suffix, array in zip("xy", args):
            np.save(tmp_path / f"{name}.{suffix}.npy", array)
        expected[name] = model.reconstruct(*args)
    script = (
        "import sys, numpy as np, keras, vaezoo.models\n"
        "d = sys.argv[1]\n"
        "for name in sys.argv[2:]:\n"
        "    m = keras.saving.load_model(f'{d}/{name}.keras', safe_mode=True)\n"
        "    args = [np.load(f'{d}/{name}.{s}.npy') for s in 'xy'[: 1 + getattr(m, 'conditional', False)]]\n"
        "    np.save(f'{d}/{name}.out.npy', m.reconstruct(*args))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), *MODELS], check=True, timeout=300)
    for name in MODELS:
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.out.npy"), expected[name])


def test_standard_callbacks(tmp_path, load_small):
    from vaezoo._tf import keras

    data = load_small("binarized_mnist")
    model = _compile(small_model("vae", data.train.x.shape[1:]))
    callbacks = [
        keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
    ]
    history = model.fit(
        data.train.x[:512], validation_data=(data.valid.x,), epochs=2, batch_size=64, callbacks=callbacks, verbose=0
    )
    assert len(history.epoch) == 2
    reloaded = vaezoo.load_model(str(tmp_path / "best.keras"))
    assert reloaded.count_params() == model.count_params()
    assert any((tmp_path / "tb").rglob("*.v2"))
    assert (tmp_path / "log.csv").read_text().startswith("epoch,")


def test_estimates_of_a_convolutional_decoder_stay_within_memory():
    """k = 100 samples of 100 shapes images through beta_vae's 64x64 conv decoder: the
    chunks count every decoder activation, so the process grows by well under 1.5 GB
    (it grew by about 11 GB when they counted the likelihood's parameters alone)."""
    code = (
        "import resource, numpy as np, vaezoo\n"
        "model = vaezoo.create_model('beta_vae')\n"
        "x = (np.random.default_rng(0).random((100, 64, 64, 1)) < 0.2).astype('float32')\n"
        "model.log_likelihood(x[:2], num_samples=2)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert np.isfinite(model.log_likelihood(x, num_samples=100)).all()\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    grown_mib = float(done.stdout.strip().splitlines()[-1])
    print(f"beta_vae, k=100, 100 images: resident memory grew by {grown_mib:.0f} MiB")
    assert grown_mib < 1536


def test_log_likelihood_is_stable_under_chunking(load_small, monkeypatch):
    """Chunking k samples to bound memory changes the noise, not the estimate."""
    from vaezoo.models import base

    data = load_small("binarized_mnist")
    model = small_model("vae", data.train.x.shape[1:])
    x = data.test.x[:64]
    whole = model.log_likelihood(x, num_samples=200)
    monkeypatch.setattr(base, "_ESTIMATE_BUDGET", 64 * 4 * 784 * 7)
    assert model._chunk_size(64) < 200
    chunked = model.log_likelihood(x, num_samples=200, batch_size=64)
    assert abs(float(np.mean(whole) - np.mean(chunked))) < 0.5
