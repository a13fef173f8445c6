"""Behaviour of the flow posteriors (IAF, planar) and the discrete-latent VAEs (VQ-VAE,
Gumbel-softmax): each test checks the paper's specific mechanism with a number and
prints it (run pytest with -s to see them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import small_model

FLOW_MODELS = {
    "vae_iaf": {"num_flows": 2, "flow_units": (64, 64), "context_units": 16},
    "vae_planar": {"num_flows": 4},
}


def _compile(model, learning_rate=1e-3):
    from vaezoo.training import compile_model

    return compile_model(model, learning_rate, jit_compile=False, steps_per_execution=4)


def _numerical_jacobian(f, z: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central differences of ``f`` (batch, D) -> (batch, D) at ``z``: (batch, D, D)."""
    columns = []
    for j in range(z.shape[1]):
        dz = np.zeros_like(z)
        dz[:, j] = step
        columns.append((f(z + dz) - f(z - dz)) / (2 * step))
    return np.stack(columns, axis=-1)


def _log_normal(z, loc, scale):
    return np.sum(-0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi), axis=-1)


# --------------------------------------------------------------------------- flows


@pytest.mark.parametrize("flow", ["iaf", "planar"])
def test_flow_log_q_is_the_change_of_variables_of_a_numerical_jacobian(flow):
    """log q(z_T|x) from the flow's single forward pass equals log N(z_0; mu, sigma) -
    log|det dz_T/dz_0| with the Jacobian of the whole flow taken by central differences
    (float64, latent_dim 3)."""
    from vaezoo._tf import tf
    from vaezoo.distributions.flows import FLOWS

    options = {"hidden_units": (16, 16), "context_units": 2} if flow == "iaf" else {}
    head = FLOWS[flow](3, num_flows=3, dtype="float64", **options)
    head.build(None)
    rng = np.random.default_rng(0)
    if flow == "iaf":  # away from the near-identity initialisation: a clearly nonlinear flow
        for made in head.mades:
            for kernel in made.kernels:
                kernel.assign(rng.normal(0, 0.8, kernel.shape))
    h = rng.normal(size=(5, head.num_params))
    params = head.params(h)
    q = head.distribution(params)
    seed = tf.constant([3, 4])
    z_t, log_q = (np.asarray(t) for t in q.experimental_sample_and_log_prob(seed=seed))
    z_0 = np.asarray(q.distribution.sample(seed=seed))
    forward = head.bijector(params).forward
    np.testing.assert_allclose(np.asarray(forward(z_0)), z_t, rtol=1e-12)
    jacobian = _numerical_jacobian(lambda z: np.asarray(forward(z)), z_0)
    sign, log_det = np.linalg.slogdet(jacobian)
    expected = _log_normal(z_0, np.asarray(params["base_loc"]), np.asarray(params["base_scale"])) - log_det
    print(f"{flow}: log|det J| numerical {np.round(log_det, 5)}, log q {np.round(log_q, 5)} vs {np.round(expected, 5)}")
    assert np.all(sign > 0) and np.ptp(log_det) > 0.05  # orientation kept; a non-trivial, varying Jacobian
    np.testing.assert_allclose(log_q, expected, atol=1e-7)


@pytest.fixture(scope="module")
def flow_runs(load_small):
    """Each flow VAE before and after 3 epochs on 1024 binarized-MNIST digits: the
    100-sample importance-weighted bound on 128 test digits, and the trained model."""
    from vaezoo._tf import keras

    data = load_small("binarized_mnist")
    x_test = data.test.x[:128]
    runs = {}
    for name, options in FLOW_MODELS.items():
        keras.utils.set_random_seed(0)
        model = _compile(small_model(name, data.train.x.shape[1:], latent_dim=8, hidden_units=(128,), **options))
        before = float(np.mean(model.log_likelihood(x_test, num_samples=100, seed=1)))
        model.fit(data.train.x, epochs=3, batch_size=64, verbose=0)
        after = float(np.mean(model.log_likelihood(x_test, num_samples=100, seed=1)))
        runs[name] = (model, before, after, x_test)
    return runs


@pytest.mark.parametrize("name", list(FLOW_MODELS))
def test_training_a_flow_vae_improves_the_k_sample_bound(flow_runs, name):
    model, before, after, x = flow_runs[name]
    elbo = float(np.mean(model.elbo(x, num_samples=10)))
    print(f"{name}: log p(x) >= {before:.1f} (k=100) at init, {after:.1f} after 3 epochs; ELBO {elbo:.1f}")
    assert after > before + 100
    assert elbo < after


def test_planar_flow_keeps_its_invertibility_constraint_after_training(flow_runs):
    model, _, _, x = flow_runs["vae_planar"]
    params = model.posterior.params(model.encoder(x))
    wu = np.sum(np.asarray(params["w"]) * np.asarray(params["u_hat"]), axis=-1)  # (examples, flows)
    print(f"planar: min over {wu.size} (example, step) pairs of w^T u_hat = {wu.min():.4f} (constraint: >= -1)")
    np.testing.assert_array_less(-1.0, wu)


def test_flow_export_has_a_posterior_sampler_with_parity(flow_runs, tmp_path):
    from vaezoo.export import export, runtime

    model, _, _, x = flow_runs["vae_iaf"]
    export(model, tmp_path, formats=("onnx",), parts=("encoder", "posterior_sampler"), check_data=x[:16])
    edge = runtime.load(tmp_path, backend="onnx")
    eps = np.random.default_rng(0).standard_normal((4, model.latent_dim)).astype(np.float32)
    got = edge.run("posterior_sampler", x=x[:4], eps=eps)["z"]
    params = model.posterior.params(model.encoder(x[:4]))
    expected = model.posterior.bijector(params).forward(params["base_loc"] + params["base_scale"] * eps)
    print(f"IAF posterior sampler: max |onnx - keras| = {np.abs(got - expected).max():.2e}")
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(edge.encode(x[:4])["loc"], model.encode(x[:4]).mean(), atol=1e-5)


# --------------------------------------------------------------------------- VQ-VAE


@pytest.fixture(scope="module")
def vq_run(load_small):
    """A small VQ-VAE before and after 3 epochs on 1024 Fashion-MNIST images."""
    from vaezoo._tf import keras

    data = load_small("fashion_mnist")
    keras.utils.set_random_seed(0)
    model = _compile(small_model("vq_vae", data.train.x.shape[1:], latent_dim=8, num_embeddings=64, embedding_dim=8))
    x = data.test.x[:256]
    initial = float(model.perplexity(model.posterior.nearest(model.encoder(x))[2]))
    history = model.fit(data.train.x, epochs=3, batch_size=64, verbose=0).history
    trained = float(model.perplexity(model.posterior.nearest(model.encoder(x))[2]))
    return model, history, initial, trained, x


def test_vq_vae_codebook_usage_grows(vq_run):
    model, history, initial, trained, _ = vq_run
    print(f"VQ-VAE codebook perplexity on 256 test images: {initial:.2f} at init, {trained:.2f} after training "
          f"(of {model.num_embeddings}); per epoch: {np.round(history['perplexity'], 2).tolist()}")
    assert trained > 1.0 and trained > initial


def test_vq_vae_reports_codebook_and_commitment_losses(vq_run):
    model, history, _, _, _ = vq_run
    codebook, commitment = np.array(history["codebook_loss"]), np.array(history["commitment_loss"])
    print(f"VQ-VAE codebook loss {np.round(codebook, 3).tolist()}, commitment loss {np.round(commitment, 3).tolist()}, "
          f"kl {history['kl'][0]:.3f} = 8 log 64 = {8 * math.log(64):.3f}")
    assert np.all(codebook > 0) and np.all(commitment > 0)
    # ||sg[z_e] - e||^2 and ||z_e - sg[e]||^2 have the same value (they differ in their gradients)
    np.testing.assert_allclose(codebook, commitment, rtol=1e-5)
    expected = np.array(history["reconstruction"]) + codebook + model.beta * commitment
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-4)
    np.testing.assert_allclose(history["kl"], 8 * math.log(64), rtol=1e-6)


def test_vq_vae_straight_through_gradient_reaches_the_encoder(vq_run):
    """The reconstruction's gradient reaches the encoder through z_e + sg[z_q - z_e] and
    not the codebook; the codebook loss moves only the codebook, the commitment loss
    only the encoder."""
    from vaezoo._tf import tf

    model, _, _, _, x = vq_run
    encoder, codebook = model.encoder.trainable_variables, model.posterior.codebook
    with tf.GradientTape(persistent=True) as tape:
        terms = model.elbo_terms(tf.constant(x[:64]), training=True)
        losses = {k: tf.reduce_mean(terms[k]) for k in ("reconstruction", "codebook_loss", "commitment_loss")}
    norms = {}
    for name, loss in losses.items():
        grads = tape.gradient(loss, encoder + [codebook])  # None: not connected
        present = [g for g in grads[:-1] if g is not None]
        norms[name] = (
            float(tf.linalg.global_norm(present)) if present else 0.0,
            0.0 if grads[-1] is None else float(tf.norm(grads[-1])),
        )
    print("VQ-VAE gradient norms (encoder, codebook): " + ", ".join(f"{k} {v[0]:.3g}, {v[1]:.3g}" for k, v in norms.items()))
    assert norms["reconstruction"][0] > 1e-3 and norms["reconstruction"][1] == 0.0
    assert norms["codebook_loss"][0] == 0.0 and norms["codebook_loss"][1] > 0.0
    assert norms["commitment_loss"][0] > 0.0 and norms["commitment_loss"][1] == 0.0


# --------------------------------------------------------------------------- Gumbel-softmax


def test_gumbel_softmax_samples_approach_one_hot_as_the_temperature_falls():
    from vaezoo.distributions import GumbelSoftmaxPosterior

    head = GumbelSoftmaxPosterior(latent_dim=10 * 10, num_classes=10)
    logits = np.random.default_rng(0).normal(size=(500, 100)).astype(np.float32)
    params = head.params(logits)
    largest = {}
    for tau in (5.0, 1.0, 0.5, 0.1, 0.01):
        y = np.asarray(head.relaxed_sample(params, tau, seed=(1, 2))).reshape(500, 10, 10)
        assert np.allclose(y.sum(-1), 1.0, atol=1e-5)
        largest[tau] = float(y.max(-1).mean())
    hard = np.asarray(head.relaxed_sample(params, 1.0, seed=(1, 2), hard=True)).reshape(500, 10, 10)
    print(f"Gumbel-softmax: mean largest component by temperature {largest}")
    assert largest[5.0] < largest[1.0] < largest[0.5] < largest[0.1] < largest[0.01] and largest[0.01] > 0.99
    assert set(np.unique(hard)) == {0.0, 1.0} and np.all(hard.sum(-1) == 1.0)


def test_gumbel_kl_matches_the_categorical_formula():
    from vaezoo.distributions import GumbelSoftmaxPosterior

    head = GumbelSoftmaxPosterior(latent_dim=5 * 4, num_classes=4)
    h = np.random.default_rng(3).normal(0, 3, size=(6, 20)).astype(np.float64)
    p = np.exp(h.reshape(6, 5, 4))
    p /= p.sum(-1, keepdims=True)
    expected = np.sum(p * np.log(p * 4), axis=(1, 2))
    got = np.asarray(head.kl_to_uniform(head.params(h.astype(np.float32))))
    print(f"Gumbel KL to uniform: {np.round(got, 4)} vs numpy {np.round(expected, 4)}")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gumbel_temperature_follows_the_annealing_schedule(load_small):
    data = load_small("binarized_mnist")
    rate, interval, steps = 0.05, 3, 16
    model = _compile(small_model("gumbel_vae", data.train.x.shape[1:], anneal_rate=rate, anneal_interval=interval))
    history = model.fit(data.train.x[: 64 * steps // 2], epochs=2, batch_size=64, verbose=0).history
    t = np.arange(steps)
    schedule = np.maximum(0.5, np.exp(-rate * (t // interval) * interval))
    print(f"Gumbel temperature per epoch {np.round(history['temperature'], 4).tolist()}, "
          f"schedule means {np.round([schedule[:8].mean(), schedule[8:].mean()], 4).tolist()}, now {float(model.temperature()):.4f}")
    np.testing.assert_allclose(history["temperature"], [schedule[:8].mean(), schedule[8:].mean()], rtol=1e-5)
    assert schedule[-1] == 0.5 and float(model.temperature()) == 0.5  # the floor: exp(-0.05 * 15) < 0.5
