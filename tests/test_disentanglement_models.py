"""Behaviour of the disentangling VAEs: each objective does what its paper says, in
numbers, on small real data (binarized MNIST and the dSprites-like shapes set).

The registry matrix (test_models.py) already trains, saves, reloads and checks every
registered model; this file only asserts what is special about these objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest

#: A small MLP, fast on two CPU cores; every comparison below uses one budget for both arms.
NET = {"network": "mlp", "hidden_units": (128,), "latent_dim": 6, "seed": 0}


def _new(cls, **kwargs):
    """``cls(**kwargs)`` with initial weights that do not depend on what ran before."""
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    return cls(**kwargs)


def _fit(model, x, epochs: int, learning_rate: float = 1e-3, batch_size: int = 64):
    from vaezoo._tf import keras

    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=True, steps_per_execution=4)
    return model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0).history


def _evaluate(model, x) -> dict[str, float]:
    return model.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)


def _aggregate_total_correlation(model, x, seed: int = 1) -> float:
    """TC of the aggregate posterior of ``x``: with the whole set as one batch
    (M = N), minibatch stratified sampling is the exact mixture density."""
    from vaezoo.losses import kl_decomposition

    q = model.encode(x)
    z = q.sample(seed=(seed, 0))
    terms = kl_decomposition(q, z, model.prior.distribution(), dataset_size=len(x), estimator="mss")
    return float(np.mean(terms["total_correlation"]))


def _cov_q_penalty(model, x) -> float:
    """sum_{i != j} C_ij^2 + sum_i (C_ii - 1)^2 for C = Cov_q(z) = E[Sigma] + Cov[mu] over ``x``."""
    q = model.encode(x)
    mu, var = q.mean().numpy().astype(np.float64), q.variance().numpy().astype(np.float64)
    cov = np.diag(var.mean(0)) + np.cov(mu, rowvar=False, bias=True)
    off = cov - np.diag(np.diag(cov))
    return float(np.sum(off**2) + np.sum((np.diag(cov) - 1.0) ** 2))


# ---------------------------------------------------------------------------- beta-VAE


@pytest.mark.slow
def test_larger_beta_gives_lower_kl(load_small):
    from vaezoo.models import BetaVAE

    data = load_small("binarized_mnist")
    kl = {}
    for beta in (1.0, 8.0):
        model = _new(BetaVAE, beta=beta, data_shape=(28, 28, 1), **NET)
        _fit(model, data.train.x, epochs=2)
        kl[beta] = _evaluate(model, data.valid.x)["kl"]
    print("held-out KL by beta:", kl)
    assert kl[8.0] < 0.5 * kl[1.0], kl


@pytest.mark.slow
def test_capacity_schedule_drives_kl_to_the_target(load_small):
    """KL follows C(t): two targets, two end points, and C(t) read from the optimizer's
    iteration count inside the XLA-compiled step."""
    from vaezoo.models import BetaVAECapacity

    data = load_small("binarized_mnist")
    steps = len(data.train.x) // 64  # per epoch; C reaches c_max after the first epoch
    final = {}
    for c_max in (3.0, 8.0):
        model = _new(BetaVAECapacity, gamma=100.0, c_max=c_max, capacity_steps=steps, data_shape=(28, 28, 1), **NET)
        history = _fit(model, data.train.x, epochs=3)
        t = np.arange(3 * steps).reshape(3, steps)  # the optimizer's iteration at each step of each epoch
        expected = c_max * np.minimum(t / steps, 1.0).mean(axis=1)
        np.testing.assert_allclose(history["capacity"], expected, rtol=1e-5)
        final[c_max] = _evaluate(model, data.valid.x)["kl"]
        gap = np.abs(np.array(history["kl"]) - np.array(history["capacity"]))
        print(f"c_max={c_max}: train KL {np.round(history['kl'], 2)}, C {np.round(history['capacity'], 2)}")
        assert gap[-1] < 0.6, gap
        assert 0.6 * c_max < final[c_max] < 1.2 * c_max, final
    print("held-out KL by c_max:", final)
    assert final[3.0] < final[8.0]


# ---------------------------------------------------------------------------- beta-TCVAE


def _gaussian_posterior(rng, m: int, d: int):
    from vaezoo._tf import tfd

    loc = rng.normal(size=(m, d)).astype(np.float32)
    loc[:, 1] += 0.9 * loc[:, 0]  # correlated dimensions: a non-zero total correlation
    scale = rng.uniform(0.2, 0.6, size=(m, d)).astype(np.float32)
    q = tfd.MultivariateNormalDiag(loc, scale)
    prior = tfd.MultivariateNormalDiag(np.zeros(d, np.float32), np.ones(d, np.float32))
    return loc.astype(np.float64), scale.astype(np.float64), q, prior


def _exact_log_densities(z, loc, scale):
    """float64 log q(z_i) and sum_j log q(z_ij) of the mixture (1/N) sum_n N(loc_n, scale_n^2)."""
    from scipy.special import logsumexp

    pairs = -0.5 * (((z[:, None, :] - loc[None]) / scale[None]) ** 2 + math.log(2 * math.pi)) - np.log(scale[None])
    n = len(loc)
    log_qz = logsumexp(pairs.sum(-1), axis=1) - math.log(n)
    log_prod = (logsumexp(pairs, axis=1) - math.log(n)).sum(-1)
    return log_qz, log_prod


def test_stratified_sampling_is_exact_on_the_whole_data_set_and_weighted_sampling_is_offset():
    from vaezoo.losses import kl_decomposition

    rng = np.random.default_rng(0)
    n, d = 64, 3
    loc, scale, q, prior = _gaussian_posterior(rng, n, d)
    z = q.sample(seed=(3, 4)).numpy()
    log_qz, log_prod = _exact_log_densities(z.astype(np.float64), loc, scale)
    mss = kl_decomposition(q, z, prior, dataset_size=n, estimator="mss")
    np.testing.assert_allclose(mss["total_correlation"], log_qz - log_prod, atol=1e-3)
    assert float(np.mean(mss["total_correlation"])) > 0.1  # the correlated pair
    # Weighted sampling gives every pair 1/(NM): log q(z) is low by log M, so TC is high by (D - 1) log M.
    mws = kl_decomposition(q, z, prior, dataset_size=n, estimator="mws")
    offset = mws["total_correlation"] - mss["total_correlation"]
    np.testing.assert_allclose(offset, (d - 1) * math.log(n), atol=1e-3)


def test_stratified_weights_estimate_q_z_without_bias_on_minibatches():
    """For z_i ~ q(z|x_i) and batches of M < N drawn around example i, the weighted
    sum sum_j r_ij q(z_i|x_j) averages to the exact q(z_i)."""
    from vaezoo.losses import log_importance_weights

    rng = np.random.default_rng(1)
    n, m, d = 200, 16, 2
    loc, scale, _, _ = _gaussian_posterior(rng, n, d)
    z0 = loc[0] + 0.3 * scale[0]  # a sample of q(z | x_0)
    log_q = (-0.5 * (((z0 - loc) / scale) ** 2 + math.log(2 * math.pi)) - np.log(scale)).sum(-1)
    exact = np.exp(log_q).mean()
    weights = np.exp(log_importance_weights(m, n, "mss").numpy()[0].astype(np.float64))
    estimates = []
    for _ in range(20000):
        batch = np.concatenate([[0], 1 + rng.choice(n - 1, m - 1, replace=False)])
        estimates.append(np.sum(weights * np.exp(log_q[batch])))
    assert abs(np.mean(estimates) / exact - 1.0) < 0.02, (np.mean(estimates), exact)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)


@pytest.fixture(scope="module")
def tcvae_pair(load_small):
    """beta-TCVAE with beta = 1 (the ELBO, in expectation) and beta = 10, one budget."""
    from vaezoo.models import BetaTCVAE

    data = load_small("shapes")
    models = {}
    for beta in (1.0, 10.0):
        model = _new(BetaTCVAE, beta=beta, dataset_size=len(data.train.x), data_shape=(64, 64, 1), **NET)
        _fit(model, data.train.x, epochs=6, learning_rate=2e-3, batch_size=32)
        models[beta] = model
    return models, data


@pytest.mark.slow
def test_tc_penalty_lowers_total_correlation(tcvae_pair):
    models, data = tcvae_pair
    tc = {beta: _aggregate_total_correlation(model, data.test.x) for beta, model in models.items()}
    print("held-out aggregate-posterior TC by beta:", tc)
    assert tc[10.0] < 0.5 * tc[1.0], tc


@pytest.mark.slow
def test_mi_tc_and_dimension_wise_kl_add_up_to_the_kl(tcvae_pair):
    """MI + TC + DWKL telescopes to log q(z|x) - log p(z) at the same samples (exactly),
    whose batch mean is the analytic mean KL within Monte Carlo error."""
    models, data = tcvae_pair
    model = models[10.0]
    x = data.test.x
    q = model.encode(x)
    z = q.sample(seed=(5, 6))
    parts = model.decomposition(q, z)
    total = sum(np.asarray(t, np.float64) for t in parts.values())
    one_sample_kl = (q.log_prob(z) - model.prior.distribution().log_prob(z)).numpy()
    np.testing.assert_allclose(total, one_sample_kl, atol=1e-3)
    analytic = model.kl_divergence(q, z).numpy()
    standard_error = np.std(one_sample_kl - analytic) / math.sqrt(len(x))
    print(f"MI + TC + DWKL = {total.mean():.3f}, analytic KL = {analytic.mean():.3f}, s.e. {standard_error:.3f}")
    assert abs(total.mean() - analytic.mean()) < 4 * standard_error + 1e-3


def test_tcvae_warns_when_dataset_size_is_not_the_training_set_size():
    from vaezoo.models import BetaTCVAE

    model = BetaTCVAE(dataset_size=1000, hidden_units=(8,), latent_dim=2)
    model.compile(optimizer="adam")
    with pytest.warns(UserWarning, match="dataset_size=1000"):
        model.fit(np.zeros((32, 28, 28, 1), np.float32), epochs=1, batch_size=32, verbose=0)


# ---------------------------------------------------------------------------- FactorVAE


@pytest.mark.slow
def test_factor_vae_discriminator_beats_chance_and_gamma_lowers_tc(load_small):
    from vaezoo._tf import keras
    from vaezoo.models import FactorVAE

    data = load_small("binarized_mnist")
    tc, accuracy = {}, {}
    for gamma in (0.0, 100.0):
        model = _new(
            FactorVAE,
            gamma=gamma,
            discriminator_units=(256, 256),
            discriminator_optimizer=keras.optimizers.Adam(5e-3, beta_1=0.5, beta_2=0.9),
            data_shape=(28, 28, 1),
            **NET,
        )
        history = _fit(model, data.train.x, epochs=8, learning_rate=2e-3, batch_size=32)
        accuracy[gamma] = np.round(history["discriminator_accuracy"], 3)
        tc[gamma] = _aggregate_total_correlation(model, data.valid.x)
    print("discriminator accuracy by epoch:", accuracy, "held-out aggregate TC:", tc)
    assert max(accuracy[0.0]) > 0.6, accuracy  # chance is 0.5
    assert tc[100.0] < 0.7 * tc[0.0], tc


def _moved(before: list[np.ndarray], variables) -> bool:
    return any(not np.array_equal(a, np.array(v)) for a, v in zip(before, variables))


@pytest.mark.slow
def test_factor_vae_players_train_only_their_own_variables():
    """The VAE loss never moves the discriminator and the discriminator loss never
    moves the encoder or decoder: with one optimizer's learning rate at 0, only the
    other player's weights change."""
    from vaezoo._tf import keras
    from vaezoo.models import FactorVAE

    x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype(np.float32)
    for frozen in ("vae", "discriminator"):
        model = FactorVAE(
            gamma=10.0, discriminator_units=(16,), hidden_units=(16,), latent_dim=3,
            discriminator_optimizer=keras.optimizers.Adam(0.0 if frozen == "discriminator" else 1e-2),
        )
        model.compile(optimizer=keras.optimizers.Adam(0.0 if frozen == "vae" else 1e-2), jit_compile=True)
        discriminator_before = [np.array(v) for v in model.discriminator.weights]
        vae_before = [np.array(v) for v in model.optimizer_variables()]
        model.fit(x, epochs=1, batch_size=32, verbose=0)
        discriminator_moved = _moved(discriminator_before, model.discriminator.weights)
        vae_moved = _moved(vae_before, model.optimizer_variables())
        assert (discriminator_moved, vae_moved) == (frozen == "vae", frozen == "discriminator"), frozen


@pytest.mark.slow
def test_factor_vae_saves_both_optimizers(tmp_path):
    import vaezoo
    from vaezoo.models import FactorVAE

    x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype(np.float32)
    model = FactorVAE(gamma=5.0, discriminator_units=(16,), hidden_units=(16,), latent_dim=3)
    model.compile(optimizer="adam", jit_compile=True)
    model.fit(x, epochs=2, batch_size=32, verbose=0)
    model.save(str(tmp_path / "factor.keras"))
    loaded = vaezoo.load_model(str(tmp_path / "factor.keras"))
    assert int(loaded.discriminator_optimizer.iterations) == int(model.discriminator_optimizer.iterations) == 4
    assert int(loaded.optimizer.iterations) == 4
    pairs = ((model.optimizer, loaded.optimizer), (model.discriminator_optimizer, loaded.discriminator_optimizer))
    for ours, theirs in pairs:
        assert len(ours.variables) == len(theirs.variables)
        for a, b in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_array_equal(model.discriminator(np.ones((2, 3))), loaded.discriminator(np.ones((2, 3))))
    loaded.fit(x, epochs=1, batch_size=32, verbose=0)  # training resumes after a reload
    assert int(loaded.discriminator_optimizer.iterations) == 6


# ---------------------------------------------------------------------------- DIP-VAE


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dip_vae_i", "dip_vae_ii"])
def test_dip_vae_brings_its_covariance_closer_to_identity(name, load_small):
    from vaezoo.models import DIPVAEI, DIPVAEII, VAE

    data = load_small("binarized_mnist")
    dip = {
        "dip_vae_i": (DIPVAEI, {"lambda_od": 10.0, "lambda_d": 100.0}),
        "dip_vae_ii": (DIPVAEII, {"lambda_od": 10.0, "lambda_d": 10.0}),
    }[name]
    penalties = {}
    for label, (cls, weights) in (("vae", (VAE, {})), (name, dip)):
        model = _new(cls, data_shape=(28, 28, 1), **weights, **NET)
        _fit(model, data.train.x, epochs=3)
        q = model.encode(data.valid.x)
        mu = q.mean().numpy().astype(np.float64)
        cov_mu = np.cov(mu, rowvar=False, bias=True)
        penalties[label] = {
            "cov_mu": float(np.sum((cov_mu - np.eye(len(cov_mu))) ** 2)),
            "cov_q": _cov_q_penalty(model, data.valid.x),
        }
    print(name, "held-out sum of squared deviations from I:", penalties)
    measured = "cov_mu" if name == "dip_vae_i" else "cov_q"
    assert penalties[name][measured] < 0.3 * penalties["vae"][measured], penalties


# ---------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        ("BetaVAE", {"beta": -1.0}, "beta must be a finite number >= 0"),
        ("BetaVAE", {"beta": float("nan")}, "beta must be"),
        ("BetaVAECapacity", {"gamma": -0.1}, "gamma must be"),
        ("BetaVAECapacity", {"c_max": -5.0}, "c_max must be"),
        ("BetaVAECapacity", {"capacity_steps": 0}, "capacity_steps must be an integer >= 1"),
        ("BetaTCVAE", {"alpha": -1.0}, "alpha must be"),
        ("BetaTCVAE", {"beta": -1.0}, "beta must be"),
        ("BetaTCVAE", {"gamma": -1.0}, "gamma must be"),
        ("BetaTCVAE", {"dataset_size": 0}, "dataset_size must be an integer >= 1"),
        ("BetaTCVAE", {"estimator": "iwae"}, "unknown estimator 'iwae'"),
        ("FactorVAE", {"gamma": -1.0}, "gamma must be"),
        ("FactorVAE", {"discriminator_units": ()}, "discriminator_units"),
        ("DIPVAEI", {"lambda_od": -1.0}, "lambda_od must be"),
        ("DIPVAEII", {"lambda_d": -1.0}, "lambda_d must be"),
    ],
)
def test_bad_config_is_a_clear_error(cls, kwargs, match):
    from vaezoo import models

    with pytest.raises(ValueError, match=match):
        getattr(models, cls)(hidden_units=(8,), latent_dim=2, **kwargs)


def test_tcvae_refuses_a_prior_that_does_not_factorise():
    from vaezoo._tf import tf, tfd
    from vaezoo.distributions import StandardNormalPrior
    from vaezoo.models import BetaTCVAE

    class FullCovariancePrior(StandardNormalPrior):
        def distribution(self):
            return tfd.MultivariateNormalTriL(tf.zeros([self.latent_dim]), tf.eye(self.latent_dim))

    with pytest.raises(TypeError, match="factorises"):
        BetaTCVAE(hidden_units=(8,), latent_dim=2, prior=FullCovariancePrior(2))


def test_factor_vae_refuses_a_discriminator_optimizer_that_is_not_one():
    from vaezoo.models import FactorVAE

    with pytest.raises(TypeError, match="discriminator_optimizer"):
        FactorVAE(hidden_units=(8,), latent_dim=2, discriminator_optimizer="adam")


@pytest.mark.parametrize(
    "name, keys",
    [
        ("beta_vae", {"beta": 4.0}),
        ("beta_vae_capacity", {"gamma": 1000.0, "c_max": 25.0, "capacity_steps": 100_000}),
        ("beta_tcvae", {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "dataset_size": 20_000, "estimator": "mss"}),
        ("factor_vae", {"gamma": 10.0, "discriminator_units": [1000] * 6}),
        ("dip_vae_i", {"lambda_od": 10.0, "lambda_d": 100.0}),
        ("dip_vae_ii", {"lambda_od": 10.0, "lambda_d": 10.0}),
    ],
)
def test_registry_configs_carry_the_papers_hyper_parameters(name, keys):
    import vaezoo

    model = vaezoo.create_model(name, latent_dim=2, hidden_units=(8,), conv_filters=(4,))
    config = model.get_config()
    assert {k: config[k] for k in keys} == keys
    assert model.data_shape == (64, 64, 1) and model.likelihood_name == "bernoulli"
    assert type(model).from_config(config).get_config() == config
