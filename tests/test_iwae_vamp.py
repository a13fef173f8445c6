"""Behaviour of the importance-weighted objectives (IWAE, MIWAE), the mixture priors
(VampPrior, mixture of Gaussians), the two-layer HVAE and ``benchmarks/nll.py``, each
checked on real binarized MNIST with the number printed (run with ``-s``)."""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
from statistics import NormalDist

import numpy as np
import pytest

NLL_SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "nll.py"


@pytest.fixture(scope="module")
def mnist():
    from vaezoo import datasets

    return datasets.load("binarized_mnist", limit=2048, download=False)


def _seeded(model_class, **kwargs):
    """``model_class(**kwargs)`` with initial weights that depend on ``kwargs["seed"]`` only."""
    from vaezoo._tf import keras

    keras.utils.set_random_seed(kwargs["seed"])
    return model_class(**kwargs)


def _fit(model, x, epochs: int, batch_size: int = 64):
    from vaezoo._tf import keras
    from vaezoo.training import compile_model

    keras.utils.set_random_seed(model.seed)
    compile_model(model, 1e-3, steps_per_execution=8).fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def _mean_estimates(model, x, k: int) -> tuple[float, float]:
    elbo, log_px = model.importance_estimates(x, k, seed=1)
    return float(np.mean(elbo)), float(np.mean(log_px))


def _mixture_log_prob(z, means, scales, weights) -> np.ndarray:
    """log sum_k w_k N(z; mu_k, diag(s_k^2)) in float64."""
    z, means, scales = (np.asarray(a, np.float64) for a in (z, means, scales))
    log_normal = -0.5 * (((z[:, None, :] - means) / scales) ** 2 + np.log(2 * np.pi)) - np.log(scales)
    joint = np.log(np.asarray(weights, np.float64)) + log_normal.sum(-1)
    top = joint.max(-1, keepdims=True)
    return (top + np.log(np.exp(joint - top).sum(-1, keepdims=True)))[:, 0]


def test_iwae_training_raises_the_k_sample_bound_over_elbo_training(mnist):
    """Burda et al. (2016): training on L_k gives a higher L_k (a better log p(x) estimate
    with the same k) than training on the ELBO: same network, initial weights, data,
    batches and steps (2048 examples, 5 epochs), L_5 on 500 held-out examples."""
    from vaezoo.models import IWAE, VAE

    k, net = 5, {"hidden_units": (64,), "latent_dim": 8, "seed": 0}
    x, held_out = mnist.train.x, mnist.valid.x[:500]
    vae = _fit(_seeded(VAE, **net), x, epochs=5)
    iwae = _fit(_seeded(IWAE, num_samples=k, **net), x, epochs=5)
    vae_elbo, vae_bound = _mean_estimates(vae, held_out, k)
    iwae_elbo, iwae_bound = _mean_estimates(iwae, held_out, k)
    print(f"held-out L_{k}: ELBO-trained VAE {vae_bound:.2f}, IWAE-{k} {iwae_bound:.2f} "
          f"(+{iwae_bound - vae_bound:.2f} nats); ELBO: VAE {vae_elbo:.2f}, IWAE {iwae_elbo:.2f}")
    assert iwae_bound > vae_bound + 0.5


def test_miwae_with_one_group_is_iwae_on_the_same_noise(mnist):
    """MIWAE(M=1, K=k) is IWAE-k term for term on the same noise; MIWAE(M=2, K=k/2) on
    the same samples is the numpy mean of two log-mean-exps, between the ELBO and L_k."""
    from vaezoo._tf import tf
    from vaezoo.models import IWAE, MIWAE

    x = tf.constant(mnist.train.x[:32])
    net = {"hidden_units": (16,), "latent_dim": 3, "seed": 5}

    def twin(cls, **kwargs):
        model = cls(**kwargs, **net)
        model.set_weights(reference.get_weights())
        return model

    reference = IWAE(num_samples=6, **net)
    terms = reference.log_weight_terms(x, reference._next_seed(), 6)  # the noise every twin's objective draws
    log_w = np.asarray(terms["log_px"] + terms["log_pz"] - terms["log_qz"], np.float64)

    def log_mean_exp(a):
        top = a.max(0)
        return top + np.log(np.mean(np.exp(a - top), 0))

    expected = {
        "iwae": log_mean_exp(log_w).mean(),
        "miwae_2x3": np.mean([log_mean_exp(log_w[:3]), log_mean_exp(log_w[3:])], 0).mean(),
        "elbo": log_w.mean(),
    }
    iwae = {k: float(v) for k, v in twin(IWAE, num_samples=6).objective(x).items()}
    miwae_1x6 = {k: float(v) for k, v in twin(MIWAE, M=1, K=6).objective(x).items()}
    miwae_2x3 = {k: float(v) for k, v in twin(MIWAE, M=2, K=3).objective(x).items()}
    print(f"ELBO {expected['elbo']:.4f} <= MIWAE(2, 3) {miwae_2x3['iwae_bound']:.4f} "
          f"<= IWAE-6 = MIWAE(1, 6) {iwae['iwae_bound']:.4f} = {miwae_1x6['iwae_bound']:.4f}")
    assert miwae_1x6 == pytest.approx(iwae, abs=1e-6)
    assert iwae["iwae_bound"] == pytest.approx(expected["iwae"], abs=1e-3)
    assert miwae_2x3["iwae_bound"] == pytest.approx(expected["miwae_2x3"], abs=1e-3)
    assert miwae_2x3["elbo"] == pytest.approx(expected["elbo"], abs=1e-3) == iwae["elbo"]
    assert expected["elbo"] + 0.01 < expected["miwae_2x3"] < expected["iwae"] - 0.01


@pytest.mark.parametrize("model_class, prior_weights", [("VampPriorVAE", 1), ("MoGPriorVAE", 3)])
def test_mixture_prior_parameters_get_gradients_and_change_during_fit(model_class, prior_weights, mnist):
    from vaezoo import models
    from vaezoo._tf import tf

    model = _seeded(getattr(models, model_class), num_components=10, hidden_units=(32,), latent_dim=4, seed=0)
    variables = model.prior.trainable_variables
    assert len(variables) == prior_weights
    with tf.GradientTape() as tape:
        loss = model.objective(tf.constant(mnist.train.x[:64]), training=True)["loss"]
    norms = {v.name: float(tf.norm(g)) for v, g in zip(variables, tape.gradient(loss, variables))}
    before = [np.array(v) for v in variables]
    _fit(model, mnist.train.x[:256], epochs=1)
    change = {v.name: float(np.abs(np.array(v) - b).max()) for v, b in zip(variables, before)}
    print(f"{model_class}: prior gradient norms {norms}, largest change after 4 Adam steps {change}")
    assert all(n > 0 for n in norms.values()), norms
    assert all(c > 1e-4 for c in change.values()), change


def test_hvae_trains_and_its_k_sample_bound_exceeds_its_elbo(mnist):
    """The two-layer HVAE with a VampPrior on z2 learns (held-out ELBO up by > 150 nats
    from the initial weights), and importance sampling over both latent layers tightens
    its bound: L_100 > ELBO + 1 nat on held-out data."""
    from vaezoo.models import HVAE

    model = _seeded(HVAE, num_components=50, hidden_units=(64,), latent_dim=8, seed=0)
    held_out = mnist.valid.x[:500]
    initial_elbo, _ = _mean_estimates(model, held_out, 1)
    _fit(model, mnist.train.x, epochs=4)
    elbo, bound = _mean_estimates(model, held_out, 100)
    print(f"HVAE held-out ELBO {initial_elbo:.2f} -> {elbo:.2f}; L_100 {bound:.2f} (+{bound - elbo:.2f} nats)")
    assert elbo > initial_elbo + 150
    assert bound > elbo + 1.0
    samples = model.sample(16, seed=0)
    assert samples.shape == (16, 28, 28, 1) and np.isfinite(samples).all()


def test_mixture_of_gaussians_log_prob_matches_numpy():
    from vaezoo.distributions import MixtureOfGaussiansPrior

    rng = np.random.default_rng(0)
    prior = MixtureOfGaussiansPrior(latent_dim=3, num_components=5, scale_floor=1e-3)
    means, log_scales, logits = rng.normal(size=(5, 3)), rng.normal(scale=0.7, size=(5, 3)), rng.normal(size=5)
    for variable, value in zip((prior.means, prior.log_scales, prior.logits), (means, log_scales, logits)):
        variable.assign(value.astype(np.float32))
    z = (3 * rng.normal(size=(20, 3))).astype(np.float32)
    weights = np.exp(logits) / np.exp(logits).sum()
    expected = _mixture_log_prob(z, means, 1e-3 + np.exp(log_scales), weights)
    got = np.asarray(prior.distribution().log_prob(z))
    print(f"MoG log p(z): max |vaezoo - numpy| = {np.abs(got - expected).max():.2e} (values {expected.min():.1f} .. {expected.max():.1f})")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_vamp_prior_log_prob_matches_numpy_on_clipped_pseudo_inputs():
    """p(z) = (1/K) sum_k q(z | clip(u_k, 0, 1)), the encoder's posteriors at the pseudo-inputs."""
    from vaezoo.models import VampPriorVAE

    rng = np.random.default_rng(1)
    model = VampPriorVAE(num_components=6, hidden_units=(16,), latent_dim=3, seed=0)
    u = rng.normal(0.5, 0.8, size=(6, 28, 28, 1)).astype(np.float32)  # partly outside [0, 1]
    model.prior.pseudo_inputs.assign(u)
    q = model.encode(np.clip(u, 0.0, 1.0))
    z = rng.normal(size=(12, 3)).astype(np.float32)
    expected = _mixture_log_prob(z, q.mean(), q.stddev(), np.full(6, 1 / 6))
    got = np.asarray(model.prior.distribution().log_prob(z))
    print(f"VampPrior log p(z): max |vaezoo - numpy| = {np.abs(got - expected).max():.2e}")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_from_noise_maps_the_selector_to_the_right_component():
    """The last noise coordinate picks component k where Phi(eps) falls in the k-th slice
    of the cumulative weights; the rest moves z within that component."""
    from vaezoo.distributions import MixtureOfGaussiansPrior
    from vaezoo.models import VampPriorVAE

    weights = np.array([0.1, 0.2, 0.3, 0.4])
    prior = MixtureOfGaussiansPrior(latent_dim=2, num_components=4)
    means = np.array([[-30.0, 1.0], [-10.0, 2.0], [10.0, 3.0], [30.0, 4.0]], np.float32)
    prior.means.assign(means)
    prior.log_scales.assign(np.full((4, 2), np.log(0.5), np.float32))
    prior.logits.assign(np.log(weights).astype(np.float32))
    inside = [0.05, 0.15, 0.45, 0.75]  # Phi(selector), one in each slice of cumsum(weights) = .1 .3 .6 1
    eps = np.array([[0.3, -0.2, NormalDist().inv_cdf(p)] for p in inside], np.float32)
    z = np.asarray(prior.from_noise(eps))
    np.testing.assert_allclose(z, means + (1e-3 + 0.5) * eps[:, :2], rtol=1e-6)

    selectors = np.random.default_rng(0).standard_normal((20000, 3)).astype(np.float32)
    picked = np.argmin(np.abs(np.asarray(prior.from_noise(selectors))[:, :1] - means[:, 0]), axis=1)
    frequencies = np.bincount(picked, minlength=4) / len(picked)
    print(f"MoG from_noise: component frequencies {frequencies.round(4).tolist()} for weights {weights.tolist()}")
    np.testing.assert_allclose(frequencies, weights, atol=0.015)

    model = VampPriorVAE(num_components=5, hidden_units=(8,), latent_dim=2, seed=0)
    q = model.encode(model.prior.pseudo_input_values())
    eps = np.array([[0.7, -1.1, NormalDist().inv_cdf((k + 0.5) / 5)] for k in range(5)], np.float32)
    expected = np.asarray(q.mean()) + np.asarray(q.stddev()) * eps[:, :2]
    np.testing.assert_allclose(np.asarray(model.prior.from_noise(eps)), expected, rtol=1e-5, atol=1e-6)


def _nll_script():
    spec = importlib.util.spec_from_file_location("nll_benchmark", NLL_SCRIPT)
    nll = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nll)
    return nll


def test_nll_benchmark_smoke_and_resume(tmp_path):
    """``benchmarks/nll.py --smoke`` trains, reports JSON and the table with the published
    anchors; run again, it loads the trained model instead of training it."""
    nll = _nll_script()
    argv = ["hvae_vamp", "--smoke", "--out-dir", str(tmp_path / "runs"), "--backup-dir", str(tmp_path / "backup"),
            "--json", str(tmp_path / "nll.json")]
    first = nll.main(argv)
    (result,) = first["results"]
    print(f"smoke: {result['model']} test NLL {result['test_nll']:.2f} (k={result['k']}), {result['epochs']} epoch(s)")
    assert json.loads((tmp_path / "nll.json").read_text()) == first
    assert result["source"] == "registry" and result["epochs"] == 1 and result["k"] == 10
    assert math.isfinite(result["test_nll"]) and result["test_nll"] > 0
    assert {a["nll"] for a in result["anchors"]} == {83.19, 86.21}
    assert "83.19 (Tomczak & Welling 2018, HVAE + VampPrior)" in nll.table(first["results"])
    again = nll.main(argv)["results"][0]
    assert again["lr_search"][0]["loaded"] and again["test_nll"] == result["test_nll"]


def test_nll_benchmark_time_budget_stops_at_the_first_epoch_end(tmp_path):
    """``--time-budget`` ends a 3-epoch training after its first epoch and says so."""
    argv = ["vae", "--limit", "128", "--epochs", "3", "--patience", "0", "--k", "3", "--valid-k", "3",
            "--batch-size", "64", "--config", "hidden_units=[8]", "latent_dim=2", "--verbose", "0"]
    (result,) = _nll_script().main([*argv, "--time-budget", "0.001", "--out-dir", str(tmp_path / "runs")])["results"]
    assert result["epochs"] == 1 and result["stopped_by_time_budget"] is True
    (unbounded,) = _nll_script().main([*argv, "--out-dir", str(tmp_path / "more")])["results"]
    assert unbounded["epochs"] == 3 and unbounded["stopped_by_time_budget"] is False
