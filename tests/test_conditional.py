"""Conditional VAE (Sohn et al. 2015), VAE/GAN (Larsen et al. 2016) and CVAE-GAN (Bao et
al. 2017) on real Fashion-MNIST: class-conditional samples are recognised as their class
by a classifier trained on real images, each VAE/GAN player updates only its own
variables, and bad labels are refused before any training step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import data_args, weights_of

import vaezoo

NUM_CLASSES = 10


@pytest.fixture(scope="module")
def fashion():
    from vaezoo import datasets

    return datasets.load("fashion_mnist", limit=6000, download=False)


@pytest.fixture(scope="module")
def classifier(fashion):
    """A small MLP trained on real images; its test accuracy bounds what samples can score."""
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
         keras.layers.Dense(NUM_CLASSES)]
    )
    net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(fashion.train.x, fashion.train.y, epochs=4, batch_size=128, verbose=0)
    accuracy = float(np.mean(np.argmax(net.predict(fashion.test.x, verbose=0), -1) == fashion.test.y))
    print(f"classifier accuracy on real Fashion-MNIST test images: {accuracy:.3f}")
    assert accuracy > 0.75
    return net


def _train(name: str, fashion, epochs: int, **overrides):
    from vaezoo._tf import keras
    from vaezoo.training import build_for_data, compile_model, train

    keras.utils.set_random_seed(0)
    model = compile_model(build_for_data(name, (28, 28, 1), **overrides), 1e-3, steps_per_execution=8)
    result = train(model, data_args(model, fashion.train.x, fashion.train.y), epochs=epochs, batch_size=128, verbose=0)
    return model, result.history


def _class_share(model, classifier, per_class: int = 100) -> tuple[float, list[float]]:
    """The share of samples drawn for class c that the classifier assigns to c (overall, per class)."""
    shares = []
    for c in range(NUM_CLASSES):
        samples = np.clip(model.sample(per_class, seed=c, labels=c), 0.0, 1.0)
        shares.append(float(np.mean(np.argmax(classifier.predict(samples, verbose=0), -1) == c)))
    return float(np.mean(shares)), shares


@pytest.fixture(scope="module")
def cvae(fashion):
    return _train("cvae", fashion, epochs=8, hidden_units=(256,), latent_dim=8)


@pytest.fixture(scope="module")
def cvae_gan(fashion):
    return _train("cvae_gan", fashion, epochs=8, hidden_units=(256,), latent_dim=8)


def test_cvae_samples_are_recognised_as_their_class(cvae, classifier):
    model, history = cvae
    share, per_class = _class_share(model, classifier)
    print(f"CVAE: {share:.3f} of class-conditional samples classified as their class (chance 0.1); "
          f"per class {[round(s, 2) for s in per_class]}; final elbo {history['elbo'][-1]:.1f}")
    assert share > 0.6
    assert history["elbo"][-1] > history["elbo"][0]


def test_cvae_likelihood_is_higher_under_the_true_label(cvae, fashion):
    """log p(x|y) of test images is higher under their own label than under another class's."""
    model, _ = cvae
    x, y = fashion.test.x[:200], fashion.test.y[:200]
    true = model.log_likelihood(x, y, num_samples=20)
    wrong = model.log_likelihood(x, (y + 1) % NUM_CLASSES, num_samples=20)
    print(f"CVAE: mean log p(x|y) {true.mean():.1f} with the true label, {wrong.mean():.1f} with the next class; "
          f"true label higher for {np.mean(true > wrong):.3f} of the images")
    assert np.mean(true > wrong) > 0.8


def test_cvae_gan_samples_are_recognised_as_their_class(cvae_gan, classifier):
    model, history = cvae_gan
    share, per_class = _class_share(model, classifier)
    print(f"CVAE-GAN: {share:.3f} of class-conditional samples classified as their class (chance 0.1); "
          f"per class {[round(s, 2) for s in per_class]}; its own classifier's accuracy on real images "
          f"{history['classifier_accuracy'][-1]:.3f}")
    assert share > 0.5
    assert history["classifier_accuracy"][-1] > 0.6  # C learned the classes that L_GC matches


# --------------------------------------------------------------------------- VAE/GAN players


def _optimizer(name: str, kind: str) -> dict:
    """The config of Adam (learning rate 1e-3) or of SGD with learning rate 0 (an update that changes nothing)."""
    return {"class_name": kind, "config": {"learning_rate": 1e-3 if kind == "Adam" else 0.0, "name": name}}


@pytest.mark.parametrize("name", ["vae_gan", "cvae_gan"])
def test_each_optimizer_updates_only_its_own_variables(name, fashion):
    """One step with every optimizer but one frozen changes exactly that player's variables."""
    from vaezoo._tf import keras
    from vaezoo.training import build_for_data

    small = {"hidden_units": (16,), "latent_dim": 2, "conv_filters": (4, 8)}
    optimizers = build_for_data(name, (28, 28, 1), **small).optimizer_names
    for player in range(1 + len(optimizers)):  # 0: the encoder, with the compiled optimizer
        given = {o: _optimizer(o, "Adam" if i == player else "SGD") for i, o in enumerate(optimizers, 1)}
        model = build_for_data(name, (28, 28, 1), **small, **given)
        model.compile(optimizer=keras.optimizers.Adam(1e-3) if player == 0 else keras.optimizers.SGD(0.0))
        groups = [{id(v) for v in variables} for _, _, variables in model.players()]
        assert sum(map(len, groups)) == len({id(v) for v in model.trainable_variables}) == len(set().union(*groups))
        before = [np.array(v) for v in model.trainable_variables]
        model.fit(*data_args(model, fashion.train.x[:32], fashion.train.y), epochs=1, batch_size=32, verbose=0)
        changed = {id(v) for v, b in zip(model.trainable_variables, before) if not np.array_equal(np.array(v), b)}
        term = model.players()[player][0]
        print(f"{name}: {term} changed {len(changed)} of its {len(groups[player])} variables and no others")
        assert changed and changed <= groups[player], term


def test_vae_gan_reports_a_discriminator_that_learns(fashion):
    model, history = _train("vae_gan", fashion, epochs=3, hidden_units=(32,), latent_dim=4, conv_filters=(8, 16))
    accuracy, loss = history["discriminator_accuracy"], history["discriminator_loss"]
    print(f"VAE/GAN: discriminator accuracy per epoch {np.round(accuracy, 3).tolist()}, "
          f"L_GAN {np.round(loss, 3).tolist()}, L_llike {np.round(history['llike'], 1).tolist()}")
    assert len(set(accuracy)) == len(accuracy) and len(set(loss)) == len(loss)  # they move
    assert loss[-1] < loss[0] < 3 * np.log(2) + 0.5 and accuracy[-1] > 0.7
    assert all(o.iterations.numpy() == model.optimizer.iterations.numpy() for _, o, _ in model.players())


# --------------------------------------------------------------------------- labels


def test_bad_labels_are_refused_before_any_step(fashion):
    from vaezoo._tf import tf
    from vaezoo.training import build_for_data, compile_model

    model = compile_model(build_for_data("cvae", (28, 28, 1), hidden_units=(16,), latent_dim=2), jit_compile=False)
    x, y = fashion.train.x[:32], fashion.train.y[:32]
    before = weights_of(model)
    nan = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    nan[3, 2] = np.nan
    cases = {
        "missing": (None, "needs labels, but y is None"),
        "count": (y[:31], "31 labels but x has 32 examples"),
        "out of range": (np.where(np.arange(32) == 7, 10, y), "1 class id\\(s\\) outside \\[0, 10\\).*y\\[7\\] = 10"),
        "negative": (np.where(np.arange(32) == 0, -1, y), "y\\[0\\] = -1"),
        "label dim": (np.ones((32, 3), np.float32), "label vectors of size 3; the model's label_dim is 10"),
        "float ids": (y.astype(np.float32), "class ids must be integers"),
        "shape": (np.ones((32, 10, 1), np.float32), "shape"),
        "nan": (nan, "1 non-finite value"),
        "dtype": (y.astype(str), "dtype"),
    }
    for case, (labels, words) in cases.items():
        error = TypeError if case == "dtype" else ValueError
        with pytest.raises(error, match=words):
            model.fit(x, labels, epochs=1, batch_size=16, verbose=0)
        with pytest.raises(error, match=words):
            model.evaluate(x, labels, verbose=0)
    with pytest.raises(ValueError, match="validation_data has no labels"):
        model.fit(x, y, validation_data=(x,), verbose=0)
    with pytest.raises(ValueError, match="yields images without labels"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), verbose=0)
    with pytest.raises(ValueError, match="yields labels of shape"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, np.ones((32, 3), np.float32))).batch(16), verbose=0)
    with pytest.raises(Exception, match="outside \\[0, 10\\)"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y + 10)).batch(16), verbose=0)
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="needs labels, but labels is None"):
        model.sample(4)
    with pytest.raises(ValueError, match="outside \\[0, 10\\)"):
        model.sample(4, labels=10)
    with pytest.raises(ValueError, match="3 labels but x has 4"):
        model.sample(4, labels=[1, 2, 3])
    with pytest.raises(ValueError, match="label_dim must be an integer >= 1, got 0"):
        vaezoo.create_model("cvae", label_dim=0)


def test_label_vectors_and_class_ids_agree(fashion):
    model = vaezoo.create_model("cvae", hidden_units=(16,), latent_dim=2)
    x, y = fashion.test.x[:8], fashion.test.y[:8]
    vectors = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    np.testing.assert_array_equal(model.reconstruct(x, y), model.reconstruct(x, vectors))
    np.testing.assert_array_equal(model.reconstruct(x, y), model.reconstruct(x, y[:, None]))
    np.testing.assert_array_equal(model.sample(8, labels=y), model.sample(8, labels=vectors))
    assert not np.array_equal(model.sample(8, labels=0), model.sample(8, labels=1))


# --------------------------------------------------------------------------- command line


def test_cli_trains_evaluates_and_samples_a_conditional_model(tmp_path, monkeypatch):
    from vaezoo import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--model", "cvae", "--data", "fashion_mnist", "--limit", "256", "--epochs", "1",
                     "--batch-size", "64", "--config", "hidden_units=[16]", "latent_dim=2", "--out", "cvae.keras",
                     "--json", "train.json", "--verbose", "0"]) == 0
    assert np.isfinite(json.loads((tmp_path / "train.json").read_text())["final"]["loss"])
    model = vaezoo.load_model(str(tmp_path / "cvae.keras"))
    assert model.conditional and model.label_dim == NUM_CLASSES
    evaluate = ["evaluate", "cvae.keras", "--limit", "64", "--k", "5", "--json", "eval.json", "--verbose", "0"]
    assert cli.main(evaluate) == 0
    assert np.isfinite(json.loads((tmp_path / "eval.json").read_text())["nll"])
    assert cli.main(["sample", "cvae.keras", "--n", "8", "--label", "3", "--out", "three.png"]) == 0
    assert cli.main(["sample", "cvae.keras", "--n", "8", "--out", "all.png"]) == 0
    assert (tmp_path / "three.png").exists() and (tmp_path / "all.png").exists()
    assert cli.main(["sample", "cvae.keras", "--label", "12", "--out", "bad.png"]) == 2
    assert cli.main(["train", "--model", "cvae", "--data", "shapes", "--limit", "64", "--out", "x.keras"]) == 2
