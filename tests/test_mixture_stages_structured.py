"""Behaviour tests of three Fashion-MNIST models, each against its paper's baseline on
the same data, budget and seeds:

- GMVAE (Dilokthanakul et al. 2017): unsupervised clustering accuracy (Hungarian
  matching) above k-means on the raw pixels;
- two-stage VAE (Dai and Wipf 2019): generating through the second stage gives a
  lower Frechet distance to real images (shipped classifier's features) than the
  first stage's N(0, I) prior;
- structured residuals (Dorta et al. 2018): a lower held-out bits/dim on dequantized
  images than the diagonal Gaussian likelihood with the same networks.
"""

from __future__ import annotations

import numpy as np
import pytest

import vaezoo
from vaezoo import metrics


def _trained(name: str, x: np.ndarray, epochs: int, learning_rate: float = 1e-3, batch_size: int = 64, **config):
    """Registry model ``name`` with ``config``, initialised and trained from seed 0."""
    from vaezoo._tf import keras
    from vaezoo.training import compile_model

    keras.utils.set_random_seed(0)
    model = compile_model(vaezoo.create_model(name, seed=0, **config), learning_rate, steps_per_execution=8)
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


@pytest.fixture(scope="module")
def fashion():
    from vaezoo import datasets

    return datasets.load("fashion_mnist", limit=2048, download=False)


def test_gmvae_clusters_better_than_kmeans_on_pixels(fashion):
    x, y = fashion.train.x, fashion.train.y
    kmeans = metrics.clustering_accuracy(y, metrics.kmeans(x.reshape(len(x), -1), 10, seed=0))
    model = _trained("gmvae", x, epochs=20, learning_rate=3e-3)  # the registered configuration
    clusters = model.predict_cluster(x)
    gmvae = metrics.clustering_accuracy(y, clusters)
    print(f"clustering accuracy on {len(x)} Fashion-MNIST images: GMVAE {gmvae:.3f}, k-means on pixels {kmeans:.3f}")
    assert set(np.unique(clusters)) <= set(range(10))
    assert gmvae > kmeans


def test_two_stage_samples_are_closer_to_the_data_than_first_stage_prior_samples(fashion, tmp_path):
    from vaezoo.export.parts import model_parts

    from vaezoo._tf import keras
    from vaezoo.metrics.frechet import frechet_distance, load_feature_extractor

    x = fashion.train.x[:1024]
    # gamma starts at 0.1^2 rather than the paper's 1, so that 20 short epochs reach a small gamma.
    options = {"sigma": "shared", "sigma_init": 0.1}
    model = _trained("two_stage_vae", x, epochs=20, hidden_units=(256,), latent_dim=16, likelihood_options=options)
    model.fit_second_stage(x, epochs=50, batch_size=64, verbose=0)
    features = load_feature_extractor("fashion_mnist")
    real = features(fashion.test.x[:1024])
    first_stage = frechet_distance(real, features(model.sample(1024, seed=1, stage=1)))
    two_stage = frechet_distance(real, features(model.sample(1024, seed=1)))
    print(
        f"Frechet distance to 1024 test images: two-stage {two_stage:.3f}, first stage's N(0, I) prior {first_stage:.3f}"
    )
    assert two_stage < first_stage

    # The exported sampler: eps = (u, e) -> z = mu_z(u) + sqrt(gamma_z) e (second stage) -> image.
    u, e = np.random.default_rng(0).standard_normal((2, 4, 16)).astype(np.float32)
    second = model.second_stage.decoder_params(u)
    expected = model.likelihood.mean(model.decoder_params(second["loc"] + second["scale"] * e))
    eps = np.concatenate([u, e], axis=1)
    np.testing.assert_allclose(model_parts(model)["sampler"].reference({"eps": eps})["mean"], expected, atol=1e-6)

    # A saved model keeps both stages.
    model.save(str(tmp_path / "two_stage.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "two_stage.keras"), safe_mode=True)
    assert loaded.second_stage_fitted
    np.testing.assert_array_equal(loaded.sample(8, seed=2), model.sample(8, seed=2))
    np.testing.assert_array_equal(loaded.sample(8, seed=2, stage=1), model.sample(8, seed=2, stage=1))


def test_structured_residuals_give_better_held_out_bits_per_dim_than_a_diagonal_gaussian(fashion):
    x, test = fashion.train.x[:1024], fashion.test.x[:256]
    bits = {}
    for rank in (0, 8):
        model = _trained(
            "vae_structured", x, epochs=8, hidden_units=(256,), latent_dim=8, likelihood_options={"rank": rank}
        )
        log_py = model.log_likelihood(test, num_samples=10, seed=1)  # nats of the dequantized images
        bits[rank] = metrics.bits_per_dim(-float(np.mean(log_py)), model.data_shape) + np.log2(256)
    print(f"held-out bits/dim: low-rank (8) plus diagonal {bits[8]:.4f}, diagonal {bits[0]:.4f}")
    assert bits[8] < bits[0]
