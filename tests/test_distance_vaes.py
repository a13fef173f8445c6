"""The statistical-distance autoencoders (SWAE, Radon-Sobolev, InfoVAE, WAE-MMD, WAE-GAN,
kernelized VAE) and their distances.

The distances of ``vaezoo.losses.distances`` are checked against direct numpy formulas;
each registered variant's distance is the same number eager and under XLA; and each
variant, trained briefly on real data from an autoencoder whose codes ignore the prior,
pulls the codes of held-out test images towards the prior. The registry matrix
(test_models.py, test_export.py, test_nan.py) covers training, saving and export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

VARIANTS = ("swae", "energy_vae", "info_vae", "info_vae_imq", "wae_mmd", "wae_gan", "kernelized_vae")
LATENT = 8
#: A small MLP with the registry's latent size (the kernels' scale C = 2d depends on it).
SMALL = {"hidden_units": (128,), "latent_dim": LATENT}


def _samples(seed: int, n: int = 40, m: int = 40, d: int = 3, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), (rng.normal(size=(m, d)) + shift).astype(np.float32)


def _np_kernel(a, b, kernel, scale):
    squared = ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-squared / scale) if kernel == "rbf" else scale / (scale + squared)


def _np_mmd(x, y, kernel, scales, unbiased):
    """MMD^2 by explicit double loops over the pairs (float64)."""

    def k(a, b):
        return sum(_np_kernel(a[None], b[None], kernel, c)[0, 0] for c in scales)

    n, m = len(x), len(y)
    if unbiased:
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    else:
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n)) / n**2
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m)) / m**2
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


# ---------------------------------------------------------------------------- distances


@pytest.mark.parametrize(
    "kernel, scales, unbiased", list(itertools.product(["rbf", "imq"], [(6.0,), (0.6, 6.0, 60.0)], [True, False]))
)
def test_mmd_matches_the_double_sum(kernel, scales, unbiased):
    from vaezoo.losses import mmd

    x, y = _samples(0, n=30, m=20, shift=0.5)
    got = float(mmd(x, y, kernel, scales if len(scales) > 1 else scales[0], unbiased))
    np.testing.assert_allclose(got, _np_mmd(x, y, kernel, scales, unbiased), rtol=1e-5, atol=1e-6)


def test_biased_mmd_of_identical_samples_is_zero_and_grows_with_a_shift():
    from vaezoo.losses import mmd

    x, _ = _samples(1)
    values = {}
    for kernel in ("rbf", "imq"):
        assert abs(float(mmd(x, x, kernel, 6.0, unbiased=False))) < 1e-6
        values[kernel] = [float(mmd(x, x + s, kernel, 6.0, unbiased=False)) for s in (0.5, 1.0, 2.0)]
    print("biased MMD at shifts 0.5, 1, 2:", values)
    assert all(a < b < c for a, b, c in values.values()), values


def test_unbiased_mmd_is_centred_for_two_samples_of_one_law():
    """The U-statistic has mean 0 when both samples come from one law (the biased one does not)."""
    from vaezoo.losses import mmd

    draws = [_samples(seed, n=16, m=16) for seed in range(200)]
    unbiased = np.mean([float(mmd(x, y, "imq", 6.0)) for x, y in draws])
    biased = np.mean([float(mmd(x, y, "imq", 6.0, unbiased=False)) for x, y in draws])
    spread = np.std([float(mmd(x, y, "imq", 6.0)) for x, y in draws]) / np.sqrt(len(draws))
    print(f"mean over 200 pairs: unbiased {unbiased:.2e} (+- {spread:.1e}), biased {biased:.2e}")
    assert abs(unbiased) < 4 * spread < biased


def test_energy_distance_matches_the_direct_formula():
    from vaezoo.losses import energy_distance

    x, y = _samples(2, n=25, m=35, shift=0.7)

    def norm(a, b):
        return np.linalg.norm(a[:, None, :].astype(np.float64) - b[None, :, :], axis=-1).mean()

    expected = 2 * norm(x, y) - norm(x, x) - norm(y, y)
    np.testing.assert_allclose(float(energy_distance(x, y)), expected, rtol=1e-5)
    assert abs(float(energy_distance(x, x))) < 1e-6


def test_energy_distance_gradient_is_finite_at_coincident_points():
    from vaezoo._tf import tf
    from vaezoo.losses import energy_distance

    x = tf.Variable(np.zeros((4, 2), np.float32))
    with tf.GradientTape() as tape:
        value = energy_distance(x, tf.ones((4, 2)))
    grad = tape.gradient(value, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0, grad


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_sliced_wasserstein_in_one_dimension_is_the_sorted_sample_formula(p):
    from vaezoo.losses import sliced_wasserstein

    x, y = _samples(3, n=50, m=50, d=1, shift=1.5)
    expected = np.mean(np.abs(np.sort(x[:, 0]).astype(np.float64) - np.sort(y[:, 0])) ** p)
    np.testing.assert_allclose(float(sliced_wasserstein(x, y, [4, 5], num_projections=7, p=p)), expected, rtol=1e-5)


def test_sliced_wasserstein_averages_the_sorted_formula_over_unit_directions():
    from vaezoo._tf import tf
    from vaezoo.losses import sliced_wasserstein
    from vaezoo.losses.distances import random_normal

    x, y = _samples(4, n=30, m=30, d=5, shift=0.5)
    seed = tf.constant([7, 8])
    directions = random_normal([5, 11], seed).numpy().astype(np.float64)
    directions /= np.linalg.norm(directions, axis=0)
    per_direction = [np.mean((np.sort(x @ directions[:, l]) - np.sort(y @ directions[:, l])) ** 2) for l in range(11)]
    got = float(sliced_wasserstein(x, y, seed, num_projections=11))
    np.testing.assert_allclose(got, np.mean(per_direction), rtol=1e-5)
    assert float(sliced_wasserstein(x, x, seed)) == 0.0


def test_random_feature_mmd_approaches_the_rbf_mmd():
    from vaezoo.losses import mmd, random_feature_mmd

    x, y = _samples(5, n=64, m=64, shift=0.8)
    exact = float(mmd(x, y, "rbf", 6.0, unbiased=False))
    errors = {
        d: np.mean([abs(float(random_feature_mmd(x, y, [s, 0], d, 6.0)) - exact) for s in range(5)])
        for d in (100, 10_000)
    }
    print(f"rbf MMD {exact:.4f}; mean |random-feature estimate - MMD| by features: {errors}")
    assert errors[10_000] < 0.1 * exact and errors[10_000] < errors[100]


def test_distance_arguments_are_checked():
    from vaezoo.losses import kernel_matrix, mmd, sliced_wasserstein

    x, y = _samples(6, n=4, m=5)
    with pytest.raises(ValueError, match="kernel must be one of 'rbf', 'imq', got 'laplace'"):
        mmd(x, y, "laplace")
    with pytest.raises(ValueError, match="scale must be one or more numbers > 0"):
        kernel_matrix(x, y, "rbf", 0.0)
    with pytest.raises(ValueError, match="p must be >= 1, got 0.5"):
        sliced_wasserstein(x, x, [0, 0], p=0.5)
    with pytest.raises(ValueError, match="samples of one size, got 4 and 5"):
        sliced_wasserstein(x, y, [0, 0])


# ---------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    "name, overrides, words",
    [
        ("info_vae", {"kernel": "laplace"}, "kernel must be one of 'rbf', 'imq', got 'laplace'"),
        ("wae_mmd", {"kernel": "gaussian"}, "kernel must be one of"),
        ("swae", {"lambda_": -1.0}, "lambda_ must be a finite number >= 0, got -1.0"),
        ("energy_vae", {"lambda_": float("nan")}, "lambda_ must be a finite number >= 0"),
        ("swae", {"num_projections": 0}, "num_projections must be an integer >= 1, got 0"),
        ("swae", {"p": 0.5}, "p must be a finite number >= 1, got 0.5"),
        ("info_vae", {"alpha": 1.5}, "alpha must be a finite number <= 1"),
        ("info_vae", {"alpha": -1.0, "lambda_": 1.5}, r"alpha \+ lambda_ - 1, the weight of the MMD, must be >= 0"),
        ("info_vae", {"kernel_bandwidth": 0.0}, "kernel_bandwidth must be > 0, got 0.0"),
        ("wae_mmd", {"kernel_scales": ()}, "kernel_scales must be one or more numbers > 0"),
        ("wae_mmd", {"kernel_scales": (1.0, -2.0)}, "kernel_scales must be a finite number >= 0, got -2.0"),
        ("kernelized_vae", {"num_features": 0}, "num_features must be an integer >= 1, got 0"),
        ("wae_gan", {"discriminator_units": ()}, "discriminator_units must be one or more positive widths"),
        ("wae_gan", {"discriminator_units": (8, 0)}, "discriminator_units must be an integer >= 1, got 0"),
        ("wae_gan", {"discriminator_optimizer": "adam"}, "discriminator_optimizer must be a keras optimizer"),
    ],
)
def test_bad_configuration_is_refused_at_construction(name, overrides, words):
    import vaezoo

    with pytest.raises((ValueError, TypeError), match=words):
        vaezoo.create_model(name, **SMALL, **overrides)


@pytest.mark.parametrize("name", VARIANTS)
def test_loss_is_reconstruction_plus_weighted_kl_and_distance(name):
    import vaezoo

    model = vaezoo.create_model(name, **SMALL)
    x = (np.random.default_rng(0).random((32, 28, 28, 1)) > 0.5).astype(np.float32)
    terms = {k: float(v) for k, v in model.objective(x).items()}
    distance = terms[model.distance_name]
    expected = terms["reconstruction"] + model.kl_weight * terms["kl"] + model.distance_weight * distance
    np.testing.assert_allclose(terms["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], -(terms["reconstruction"] + terms["kl"]), rtol=1e-6)
    assert np.isfinite(distance)


@pytest.mark.parametrize("name", VARIANTS)
def test_distance_is_identical_eager_and_under_xla(name):
    import vaezoo
    from vaezoo._tf import tf

    model = vaezoo.create_model(name, **SMALL)
    z, prior_z = _samples(7, n=64, m=64, d=LATENT, shift=0.3)
    seed = tf.constant([11, 12])
    eager = float(model.latent_distance(tf.constant(z), tf.constant(prior_z), seed))
    compiled = tf.function(model.latent_distance, jit_compile=True)
    xla = float(compiled(tf.constant(z), tf.constant(prior_z), seed))
    print(f"{name}: {model.distance_name} eager {eager:.8g}, XLA {xla:.8g}")
    # XLA reorders float32 sums. A kernel distance is a small difference of means of
    # terms of size about 1 per kernel scale, so the tolerance is a few float32 roundings
    # of those terms (WAE-MMD sums 7 scales), not of the difference.
    terms = len(getattr(model, "kernel_scales", (1.0,)))
    np.testing.assert_allclose(xla, eager, rtol=2e-6, atol=4e-6 * terms)
    assert eager != 0.0


# ---------------------------------------------------------------------------- behaviour


def _new(name: str, **overrides):
    """Registry model ``name``, small, with initial weights independent of earlier tests."""
    import vaezoo
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    return vaezoo.create_model(name, **SMALL, **overrides)


def _fit(model, x, epochs: int):
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    return model.fit(x, epochs=epochs, batch_size=64, verbose=0).history


@pytest.fixture(scope="module")
def autoencoders(load_small):
    """Per data set: an autoencoder with no pull towards the prior (lambda = 0, no KL),
    trained for 2 epochs, whose codes spread far from N(0, I)."""
    cache = {}

    def get(data_name: str):
        if data_name not in cache:
            base = {"binarized_mnist": "swae", "fashion_mnist": "energy_vae"}[data_name]
            model = _new(base, lambda_=0.0)
            _fit(model, load_small(data_name).train.x, epochs=2)
            cache[data_name] = model
        return cache[data_name]

    return get


def _distances(model, x) -> tuple[float, float]:
    """(the model's own distance, MMD with one IMQ kernel C = 2d) between the codes of
    ``x`` and as many prior draws, with fixed noise and projections."""
    from vaezoo._tf import tf
    from vaezoo.losses import default_scale, mmd

    z = model.encode(x).sample(seed=tf.constant([1, 2]))
    prior_z = model.prior_sample(len(x), tf.constant([3, 4]))
    own = float(model.latent_distance(z, prior_z, tf.constant([5, 6])))
    return own, float(mmd(z, prior_z, "imq", default_scale(model.latent_dim)))


@pytest.mark.parametrize("name", VARIANTS)
def test_training_pulls_the_codes_of_test_data_towards_the_prior(name, load_small, autoencoders):
    """From the autoencoder's weights, 2 epochs with the variant's registered objective
    must at least halve its distance between held-out codes and the prior. WAE-GAN's
    own term measures its discriminator, which trains too, so its distance is the MMD."""
    import vaezoo

    data_name = vaezoo.get_spec(name).data
    data = load_small(data_name)
    start = autoencoders(data_name)
    model = _new(name)
    model.encoder.set_weights(start.encoder.get_weights())
    model.decoder.set_weights(start.decoder.get_weights())
    x_test = data.test.x[:256]
    before = _distances(model, x_test)
    history = _fit(model, data.train.x, epochs=2)
    after = _distances(model, x_test)
    measured = 1 if name == "wae_gan" else 0
    print(
        f"{name} on {data_name} test codes: {model.distance_name} {before[0]:.4g} -> {after[0]:.4g}, "
        f"IMQ MMD {before[1]:.4g} -> {after[1]:.4g}; train reconstruction {np.round(history['reconstruction'], 1)}"
    )
    assert after[measured] < 0.5 * before[measured], (before, after)
    assert all(np.isfinite(v).all() for v in history.values())
