"""Behaviour tests of the semi-supervised M2 and M1+M2 (Kingma, Rezende, Mohamed and
Welling 2014) and of the binary-latent VAE trained by direct evolutionary optimization
(Drefs, Guiraud, Panagiotou and Luecke 2023), on real data (Fashion-MNIST and binarized
MNIST from ``$VAEZOO_DATA``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

LABELS_PER_CLASS = 100
UNLABELLED = 10_000
BATCH, LABELLED_PER_BATCH = 100, 50


@pytest.fixture(scope="module")
def fashion():
    from vaezoo import datasets

    return datasets.load("fashion_mnist", download=False)


@pytest.fixture(scope="module")
def semi_supervised(fashion):
    """100 labelled examples per class and 10,000 unlabelled ones (label -1), all from
    the training split, and a function that makes the stream of batches of 50 labelled +
    50 unlabelled (every stream it makes yields the same batches)."""
    from vaezoo.models.semi_supervised import semi_supervised_batches

    x, y = fashion.train.x, fashion.train.y
    rng = np.random.default_rng(0)
    labelled = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:LABELS_PER_CLASS] for c in range(10)])
    unlabelled = rng.permutation(np.setdiff1d(np.arange(len(x)), labelled))[:UNLABELLED]
    xs = np.concatenate([x[labelled], x[unlabelled]])
    ys = np.concatenate([y[labelled], np.full(len(unlabelled), -1)])
    return xs, ys, lambda: semi_supervised_batches(xs, ys, BATCH, LABELLED_PER_BATCH, seed=0)


def _accuracy(predicted, labels) -> float:
    return float(np.mean(np.asarray(predicted) == labels))


def _accuracy_curve(predict, labels, every: int):
    """A Keras callback that appends the test accuracy of ``predict()`` every ``every`` steps, and the list."""
    from vaezoo._tf import keras

    curve: list[float] = []

    def record(batch, logs):
        if (batch + 1) % every == 0:
            curve.append(_accuracy(predict(), labels))

    return curve, keras.callbacks.LambdaCallback(on_train_batch_end=record)


def test_m2_classifier_beats_the_same_network_trained_on_the_labels_alone(semi_supervised, fashion):
    """Same classifier network, same labelled batches, same number of steps: M2 adds the
    unlabelled bound -U(x). Compared on the mean test accuracy of the last three of six
    checkpoints (steps 400-600): with 1,000 labels both classifiers swing by about a
    point from one checkpoint to the next, in step, because they see the same batches.

    The margin is small at this budget (measured 0.3 points here; 0.2 points over three
    seeds in a GPU sweep of the same model at 600 steps). alpha is 30 per example, not
    the paper's 0.1 (alpha = 0.1 N): on Fashion-MNIST pixels the paper's weight leaves
    q(y|x) driven by -U and far below the baseline at this budget (0.55-0.65 vs 0.80)."""
    from vaezoo._tf import keras
    from vaezoo.models import M2
    from vaezoo.nets import build_encoder

    _, _, stream = semi_supervised
    steps, every = 600, 100
    keras.utils.set_random_seed(0)
    model = M2(num_classes=10, hidden_units=(256,), latent_dim=4, likelihood="continuous_bernoulli", alpha=30.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    m2, callback = _accuracy_curve(lambda: model.predict_labels(fashion.test.x, 1000), fashion.test.y, every)
    history = model.fit(stream(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[callback]).history

    keras.utils.set_random_seed(0)
    alone = build_encoder("mlp", model.data_shape, 10, hidden_units=model.classifier_units, name="classifier")
    alone.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    baseline, callback = _accuracy_curve(
        lambda: np.argmax(alone.predict(fashion.test.x, batch_size=1000, verbose=0), -1), fashion.test.y, every
    )
    labelled_only = stream().map(lambda x, y: (x[:LABELLED_PER_BATCH], y[:LABELLED_PER_BATCH]))
    alone.fit(labelled_only, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[callback])
    late_m2, late_baseline = float(np.mean(m2[3:])), float(np.mean(baseline[3:]))
    print(
        f"Fashion-MNIST test accuracy every {every} steps, {LABELS_PER_CLASS} labels/class: M2 q(y|x) "
        f"{[round(a, 4) for a in m2]}, classifier on the labels alone {[round(a, 4) for a in baseline]}; "
        f"steps 400-600: M2 {late_m2:.4f} vs {late_baseline:.4f}. M2 labelled_bound "
        f"{history['labelled_bound'][0]:.1f}, unlabelled_bound {history['unlabelled_bound'][0]:.1f}, "
        f"classification {history['classification'][0]:.3f}"
    )
    assert len(m2) == len(baseline) == steps // every
    assert late_m2 > late_baseline


def test_m1_m2_classifies_the_latent_code_of_a_frozen_vae(semi_supervised, fashion):
    from vaezoo._tf import keras
    from vaezoo.models import M1M2, VAE

    xs, _, stream = semi_supervised
    keras.utils.set_random_seed(0)
    m1 = VAE(hidden_units=(256,), latent_dim=16, likelihood="continuous_bernoulli")
    m1.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    m1.fit(xs, epochs=2, batch_size=128, verbose=0)
    m1_weights = [np.array(w) for w in m1.weights]
    model = M1M2(m1=m1, num_classes=10, hidden_units=(128,), latent_dim=4, alpha=30.0)  # as for M2 above
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    history = model.fit(stream(), steps_per_epoch=300, epochs=1, verbose=0).history
    accuracy = _accuracy(model.predict_labels(fashion.test.x), fashion.test.y)
    print(f"M1+M2 test accuracy {accuracy:.4f} (chance 0.1); M2 bound on z1 {history['elbo'][0]:.2f} nats")
    assert accuracy > 0.6
    for kept, trained in zip(m1_weights, model.m1.weights):  # M1 stays frozen
        np.testing.assert_array_equal(kept, np.array(trained))
    assert model.sample(3).shape == (3, 28, 28, 1) and model.reconstruct(fashion.test.x[:3]).shape == (3, 28, 28, 1)


@pytest.fixture(scope="module")
def deo():
    """A DEO binary-latent VAE trained for 4 epochs on 1,500 binarized MNIST digits."""
    from vaezoo import datasets
    from vaezoo._tf import keras
    from vaezoo.models import DEOBinaryVAE

    data = datasets.load("binarized_mnist", limit=1500, download=False)
    keras.utils.set_random_seed(0)
    model = DEOBinaryVAE(latent_dim=32, hidden_units=(128,), num_states=16, parents=4, children=4, state_slots=8192)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=4)
    history = model.fit(data.train.x, epochs=4, batch_size=100, verbose=0).history
    return model, data, history


def test_deo_truncated_free_energy_improves_over_epochs(deo):
    _, _, history = deo
    curve = [round(v, 2) for v in history["elbo"]]
    print(f"truncated free energy F/N per epoch (nats): {curve}; new states per example: "
          f"{[round(v, 2) for v in history['new_states']]}")
    assert all(later > earlier for earlier, later in itertools.pairwise(curve)), curve
    assert curve[-1] - curve[0] > 50.0, curve
    np.testing.assert_allclose(history["elbo"], -(np.array(history["reconstruction"]) + history["kl"]), rtol=1e-4)


def test_deo_evolutionary_step_never_lowers_the_best_log_joint(deo):
    from vaezoo._tf import tf

    model, data, _ = deo
    x = tf.constant(data.test.x[:64])
    states, log_joints, valid = model.e_step(x, generations=1, seed=0)
    improved = 0
    for step in range(5):
        new_states, new_log_joints, new_valid = (np.asarray(t) for t in model.evolve(x, states, log_joints, valid, [step, 1]))
        best_before, best_after = np.max(log_joints, 1), np.max(new_log_joints, 1)
        assert (best_after >= best_before).all(), (best_before - best_after).max()
        improved += int((best_after > best_before).sum())
        recomputed = np.asarray(model.log_joint(x, new_states))
        np.testing.assert_allclose(new_log_joints[new_valid], recomputed[new_valid], rtol=1e-5)
        for row, keep in zip(new_states, new_valid):  # the S kept states are distinct
            assert len({tuple(s) for s in row[keep]}) == int(keep.sum())
        states, log_joints, valid = new_states, new_log_joints, new_valid
    print(f"elitist E-steps: best log-joint raised {improved} times over 5 steps x 64 examples, never lowered")
    assert improved > 0


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_deo_decoder_and_sampler_export_with_parity(deo, tmp_path, backend):
    from vaezoo.export import export, runtime

    model, data, _ = deo
    manifest = export(model, tmp_path, formats=(backend,), parts=("decoder", "sampler"), check_data=data.test.x[:64])
    worst = max(r["max_abs_diff"] for r in manifest.data["parity"]["results"])
    print(f"DEO export {backend}: parity ok {manifest.data['parity']['ok']}, worst fp32 difference {worst:.2e}")
    assert manifest.data["parity"]["ok"] and worst <= 1e-5
    edge = runtime.load(tmp_path, backend=backend)
    eps = np.random.default_rng(0).standard_normal((5, model.latent_dim)).astype(np.float32)
    states = np.asarray(model.prior.from_noise(eps))
    sample = edge.sample(eps)
    np.testing.assert_array_equal(sample["z"], states)  # Bernoulli prior states by thresholding the noise
    expected = np.asarray(model.likelihood.mean(model.decoder_params(states)))
    np.testing.assert_allclose(sample["mean"], expected, atol=1e-5)
    np.testing.assert_allclose(edge.decode(states)["mean"], expected, atol=1e-5)
