"""Metrics checked where the answer is known: synthetic codes of synthetic factors,
Gaussians with a closed-form Frechet distance, permuted labels, a decoder that ignores
some latent dimensions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vaezoo.metrics import clustering, frechet, likelihood
from vaezoo.metrics import disentanglement as dis

SIZES = (3, 6, 10, 8, 8)
TRUTH = dis.identity_ground_truth(SIZES)


def perfect(x):
    """Each factor in its own dimension, rescaled and shifted (the metrics must not care)."""
    return np.asarray(x) * np.array([1.0, 2.0, 0.5, 3.0, 1.5]) - 1.0


def random_code(seed=0, dims=8):
    rng = np.random.default_rng(seed)
    return lambda x: rng.normal(size=(len(x), dims))


@pytest.fixture(scope="module")
def scores():
    kwargs = {"seed": 0, "num_train": 2000, "num_eval": 1000, "batch_size": 16}
    return {
        "perfect": dis.disentanglement_scores(perfect, TRUTH, **kwargs),
        "random": dis.disentanglement_scores(random_code(), TRUTH, **kwargs),
    }


def test_perfect_code_scores_one_on_every_metric(scores):
    s = scores["perfect"]
    assert s["beta_vae"] >= 0.99 and s["factor_vae"] >= 0.99, s
    assert s["mig"] >= 0.95, s
    assert s["dci_disentanglement"] >= 0.98 and s["dci_completeness"] >= 0.98 and s["dci_informativeness"] >= 0.98, s
    # SAP with discrete factors is a gap in accuracy: at best 1 - chance of the runner-up.
    assert s["sap"] >= np.mean([1 - 1 / k for k in SIZES]) - 0.05, s


def test_random_code_scores_zero_or_chance(scores):
    s = scores["random"]
    chance = 1 / len(SIZES)
    assert s["beta_vae"] <= chance + 0.1 and s["factor_vae"] <= chance + 0.1, s
    assert s["mig"] <= 0.03 and s["sap"] <= 0.03, s
    assert s["dci_disentanglement"] <= 0.1 and s["dci_completeness"] <= 0.1, s
    assert s["dci_informativeness"] <= 0.3, s


def test_continuous_sap_is_one_for_a_perfect_code_and_zero_for_noise():
    rng = np.random.default_rng(0)
    factors = TRUTH.sample_factors(3000, rng)
    assert dis.sap_from_codes(perfect(factors), factors, continuous_factors=True)["sap"] > 0.99
    assert dis.sap_from_codes(rng.normal(size=(3000, 6)), factors, continuous_factors=True)["sap"] < 0.01


def test_mig_drops_when_two_dimensions_share_a_factor():
    rng = np.random.default_rng(1)
    factors = TRUTH.sample_factors(5000, rng)
    codes = perfect(factors)
    duplicated = np.concatenate([codes, codes[:, :1]], 1)  # factor 0 in two dimensions: no gap for it
    mig_perfect = dis.mig_from_codes(codes, factors)["mig"]
    mig_dup = dis.mig_from_codes(duplicated, factors)["mig"]
    assert mig_perfect > 0.95 and mig_dup == pytest.approx(mig_perfect * 4 / 5, abs=0.02)


def test_mutual_information_of_independent_and_identical_variables():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 4, 20000), rng.integers(0, 4, 20000)
    assert dis.mutual_information(a, b) < 0.002
    assert dis.mutual_information(a, a) == pytest.approx(np.log(4), abs=0.01)


def test_dci_of_known_importance_matrices():
    one_code_for_all = np.array([[1.0, 1.0], [0.0, 0.0]])
    scores = dis.dci_from_importance(one_code_for_all)
    assert scores["disentanglement"] == pytest.approx(0.0, abs=1e-6)  # the code explains both factors
    assert scores["completeness"] == pytest.approx(1.0, abs=1e-6)  # each factor is in one code
    with pytest.raises(ValueError, match="two codes"):
        dis.dci_from_importance(np.ones((1, 3)))


def test_factor_vae_prunes_collapsed_dimensions():
    groups = np.zeros((4, 8, 3))
    result = dis.factor_vae_score_from_codes(groups, np.zeros(4, int), groups, np.zeros(4, int), np.full(3, 1e-4), 2)
    assert result == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_representation_errors_name_the_shape():
    with pytest.raises(ValueError, match="num_codes"):
        dis.mig(lambda x: np.zeros(len(x)), TRUTH, num_train=10)


# --------------------------------------------------------------------------- Frechet


def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 5))
    assert abs(frechet.frechet_distance(x, x)) < 1e-8


def test_frechet_distance_matches_the_gaussian_closed_form():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mean_a, mean_b = rng.normal(size=4), rng.normal(size=4)
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(sqrtm(cov_a @ cov_b)))
    assert frechet.frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: sum of squared mean and std differences.
    diagonal = frechet.frechet_distance_from_moments(np.zeros(2), np.diag([1.0, 4.0]), np.ones(2), np.diag([9.0, 1.0]))
    assert diagonal == pytest.approx(2 + (1 - 3) ** 2 + (2 - 1) ** 2)
    # From samples, the estimate converges to the closed form.
    xa = rng.multivariate_normal(mean_a, cov_a, 100000)
    xb = rng.multivariate_normal(mean_b, cov_b, 100000)
    assert frechet.frechet_distance(xa, xb) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("name", sorted(frechet.TASKS))
def test_shipped_feature_classifiers_are_small_verified_and_accurate(name):
    record = json.loads((frechet.CLASSIFIER_DIR / f"{name}.json").read_text())
    weights = frechet.CLASSIFIER_DIR / record["weights"]
    assert weights.stat().st_size < 1_000_000
    floor = {"fashion_mnist": 0.85, "binarized_mnist": 0.9, "shapes": 0.9}[name]
    first_head = frechet.TASKS[name].heads[0][0]
    assert record["test_accuracy"][first_head] >= floor, record
    features = frechet.load_feature_extractor(name)(np.zeros((2,) + frechet.TASKS[name].image_shape, np.float32))
    assert features.shape == (2, frechet.FEATURE_UNITS) and np.isfinite(features).all()


def test_frechet_score_separates_data_from_noise(load_small):
    data = load_small("fashion_mnist")
    features = frechet.load_feature_extractor("fashion_mnist")
    real_a, real_b = features(data.test.x[:128]), features(data.test.x[128:256])
    noise = features(np.random.default_rng(0).random((128, 28, 28, 1)).astype("float32"))
    assert frechet.frechet_distance(real_a, real_b) * 5 < frechet.frechet_distance(real_a, noise)


def test_a_tampered_classifier_is_refused(tmp_path):
    for suffix in (".json", ".weights.h5"):
        (tmp_path / f"shapes{suffix}").write_bytes((frechet.CLASSIFIER_DIR / f"shapes{suffix}").read_bytes())
    with open(tmp_path / "shapes.weights.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="sha256"):
        frechet.load_feature_extractor("shapes", tmp_path)


# --------------------------------------------------------------------------- clustering


def test_hungarian_accuracy_of_permuted_labels_is_one():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 7, 500)
    permutation = rng.permutation(7)
    assert clustering.clustering_accuracy(labels, permutation[labels]) == 1.0
    assert clustering.classification_accuracy(labels, permutation[labels]) < 1.0
    # Two classes merged into one cluster: one of them is all wrong.
    merged = np.where(labels == 6, 5, labels)
    assert clustering.clustering_accuracy(labels, merged) == pytest.approx(1 - min(np.mean(labels == 5), np.mean(labels == 6)))
    # More clusters than classes: class 0 split in two, the smaller part counts as errors.
    split = np.where((labels == 0) & (np.arange(500) % 3 == 0), 99, labels)
    assert clustering.clustering_accuracy(labels, split) == pytest.approx(1 - min(np.mean(split == 99), np.mean(split == 0)))


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 400)
    codes = np.eye(4)[labels] * 10 + rng.normal(size=(400, 4))
    assert clustering.latent_clustering_accuracy(codes, labels) == 1.0
    assert clustering.linear_probe_accuracy(codes[:200], labels[:200], codes[200:], labels[200:]) == 1.0


# --------------------------------------------------------------------------- likelihood


def test_bits_per_dim_and_active_units_from_arrays():
    assert likelihood.bits_per_dim(2 * 784 * np.log(2), (28, 28, 1)) == pytest.approx(2.0)
    means = np.stack([np.linspace(-1, 1, 100), np.full(100, 5.0), 0.05 * np.linspace(-1, 1, 100)], 1)
    count, variances = likelihood.active_units_from_means(means)
    assert count == 1 and variances[1] == 0 and variances[2] < 0.01


def test_kl_per_dim_sums_to_the_models_kl():
    import vaezoo
    from vaezoo._tf import tfd

    model = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=5)
    x = (np.random.default_rng(0).random((32, 28, 28, 1)) > 0.5).astype("float32")
    expected = np.mean(tfd.kl_divergence(model.encode(x), model.prior.distribution()))
    assert likelihood.kl_per_dim(model, x).sum() == pytest.approx(expected, rel=1e-4)
    result = likelihood.likelihood_metrics(model, x[:8], num_samples=20)
    assert result["nll"] <= -result["elbo"] + 1e-4
    assert result["bits_per_dim"] == pytest.approx(likelihood.bits_per_dim(result["nll"], (28, 28, 1)))


def test_active_units_of_a_decoder_that_ignores_half_the_latents(load_small):
    import vaezoo
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    x = load_small("binarized_mnist").train.x[:256]
    # tanh keeps the hidden units bounded, so Adam's step noise leaves the unused means far below 0.01.
    model = vaezoo.create_model("vae", hidden_units=(32,), latent_dim=4, activation="tanh")
    kernel = model.decoder.layers[0].kernel
    mask = np.ones(kernel.shape, np.float32)
    mask[2:] = 0.0  # the decoder cannot see z2 and z3
    kernel.assign(kernel * mask)
    kernel.constraint = lambda w: w * mask
    model.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=8)
    model.fit(x, epochs=40, batch_size=32, verbose=0)
    count, variances = likelihood.active_units(model, x)
    kl = likelihood.kl_per_dim(model, x)
    assert np.all(variances[2:] < 0.01) and np.all(kl[2:] < 0.05), (variances, kl)
    assert 1 <= count <= 2 and variances[:2].max() > 0.1, variances


# --------------------------------------------------------------------------- the evaluate hook


def test_evaluate_metrics_on_shapes_and_its_errors(load_small):
    import vaezoo
    from vaezoo.metrics import evaluate_metrics, parse_metric_names

    data = load_small("shapes")
    model = vaezoo.create_model("vae", data_shape=(64, 64, 1), hidden_units=(16,), latent_dim=4)
    names = parse_metric_names("nll,active_units,kl_per_dim,mig,sap,dci,beta_vae,factor_vae,frechet")
    result = evaluate_metrics(model, data, names, num_samples=4, num_points=100)
    expected = {"elbo", "nll", "bits_per_dim", "active_units", "latent_dim", "kl_per_dim", "mig", "sap", "beta_vae",
                "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness", "frechet"}
    assert set(result) == expected
    json.dumps(result)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric_names("nll,fid")
    with pytest.raises(ValueError, match="class labels"):
        evaluate_metrics(model, data, ["clustering"])
    with pytest.raises(ValueError, match="ground-truth factors"):
        evaluate_metrics(model, load_small("fashion_mnist"), ["mig"])
