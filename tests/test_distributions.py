"""Numerical tests for ``vaezoo.distributions``: posterior/likelihood heads and priors.

Every log-density is checked against an independent scipy/numpy (float64) reference on
random parameters; KL divergences against Monte Carlo estimates; sampling against the
covariance it claims; plus gradients (also at extreme raw inputs), XLA compilation,
config round trips, support checks and argument validation.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import special, stats

from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions import (
    LIKELIHOODS,
    POSTERIORS,
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    DiagonalNormal,
    FullCovarianceNormal,
    Gaussian,
    LikelihoodHead,
    PosteriorHead,
    StandardNormalPrior,
    likelihood_head,
    posterior_head,
)

LATENT_DIM = 4
DATA_SHAPE = (2, 3)
BATCH = 5
SIGMA_INIT = 0.7
RTOL = 1e-4
ATOL = 1e-5

# Every head configuration under test; the factories return fresh, unbuilt layers.
HEADS = {
    "diag": lambda: DiagonalNormal(LATENT_DIM),
    "tril": lambda: FullCovarianceNormal(LATENT_DIM),
    "bernoulli": lambda: Bernoulli(DATA_SHAPE),
    "continuous_bernoulli": lambda: ContinuousBernoulli(DATA_SHAPE),
    "gaussian_fixed": lambda: Gaussian(DATA_SHAPE, sigma="fixed", sigma_init=SIGMA_INIT),
    "gaussian_shared": lambda: Gaussian(DATA_SHAPE, sigma="shared", sigma_init=SIGMA_INIT),
    "gaussian_per_output": lambda: Gaussian(DATA_SHAPE, sigma="per_output", sigma_init=SIGMA_INIT),
    "gaussian_predicted": lambda: Gaussian(DATA_SHAPE, sigma="predicted"),
    "categorical": lambda: Categorical(DATA_SHAPE, num_categories=4),
    # Image-shaped data: exercises the reshape of multi-parameter outputs over 3 axes.
    "gaussian_predicted_image": lambda: Gaussian((3, 3, 2), sigma="predicted", scale_floor=1e-2),
    "categorical_image": lambda: Categorical((3, 3, 2), num_categories=5),
}
HEAD_NAMES = list(HEADS)
POSTERIOR_NAMES = [n for n in HEAD_NAMES if n in ("diag", "tril")]
LIKELIHOOD_NAMES = [n for n in HEAD_NAMES if n not in POSTERIOR_NAMES]


def seed():
    return tf.constant([1, 2])


# --------------------------------------------------------------------------- helpers


def softplus(x):
    return np.logaddexp(0.0, x)


def network_input(head, rng, batch=BATCH, scale=1.0):
    """A random decoder/encoder output of the shape the head consumes (float32)."""
    if isinstance(head, PosteriorHead):
        shape = (head.num_params,)
    else:
        shape = head.network_output_shape
    return (scale * rng.standard_normal((batch, *shape))).astype("float32")


def raw_data(head, rng, batch=BATCH):
    """Data in the head's support, as fed to the model (before ``prepare_targets``)."""
    if isinstance(head, PosteriorHead):
        return rng.standard_normal((batch, head.latent_dim)).astype("float32")
    shape = (batch, *head.data_shape)
    if isinstance(head, Bernoulli):
        return rng.integers(0, 2, shape).astype("float32")
    if isinstance(head, ContinuousBernoulli):
        x = rng.uniform(0.0, 1.0, shape)
        x.flat[0], x.flat[1] = 0.0, 1.0  # the closed endpoints are in the support
        return x.astype("float32")
    if isinstance(head, Categorical):
        k = rng.integers(0, head.num_categories, shape)
        return (k / (head.num_categories - 1)).astype("float32")
    return (2.0 * rng.standard_normal(shape)).astype("float32")


def built_head(name, rng=None, randomize_weights=True):
    """A fresh head, built by one call; learned Gaussian scales optionally randomised."""
    head = HEADS[name]()
    rng = rng or np.random.default_rng(0)
    head(network_input(head, np.random.default_rng(123), batch=1))
    if randomize_weights and isinstance(head, Gaussian) and head.raw_scale is not None:
        head.raw_scale.assign(rng.normal(size=head.raw_scale.shape).astype("float32"))
    return head


def targets(head, x):
    x = tf.constant(x)
    return x if isinstance(head, PosteriorHead) else head.prepare_targets(x)


def event_axes(head):
    return tuple(range(1, 1 + len(head.data_shape)))


def split_np(head, h):
    """Numpy version of the documented layout: data_shape + (params_per_output,)."""
    return h.reshape((h.shape[0], *head.data_shape, head.params_per_output)).astype("float64")


def cb_log_normalizer(lam):
    """log C(lambda), C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda), C(0.5) = 2."""
    y = 1.0 - 2.0 * lam
    near = np.abs(y) < 1e-6
    y_safe = np.where(near, 0.5, y)
    c = np.where(near, 2.0 * (1.0 + y**2 / 3.0), 2.0 * np.arctanh(y_safe) / y_safe)
    return np.log(c)


def cb_mean(lam):
    y = 1.0 - 2.0 * lam
    near = np.abs(y) < 1e-6
    lam_safe = np.where(near, 0.25, lam)
    mean = lam_safe / (2.0 * lam_safe - 1.0) + 1.0 / (2.0 * np.arctanh(1.0 - 2.0 * lam_safe))
    return np.where(near, 0.5, mean)


def gaussian_scale_np(head, split):
    if head.sigma == "fixed":
        return np.full(split.shape[:-1], head.sigma_init)
    if head.sigma == "predicted":
        return softplus(split[..., 1]) + head.scale_floor
    raw = head.raw_scale.numpy().astype("float64")
    return np.broadcast_to(softplus(raw) + head.scale_floor, split.shape[:-1])


def reference_log_prob(head, h, x):
    """log p(x) in float64 from scipy/numpy, given network output h and raw data x."""
    x = np.asarray(x, "float64")
    if isinstance(head, DiagonalNormal):
        d = head.latent_dim
        loc, scale = h[:, :d], softplus(h[:, d:].astype("float64")) + head.scale_floor
        return stats.norm.logpdf(x, loc, scale).sum(-1)
    if isinstance(head, FullCovarianceNormal):
        # L comes from the head (its structure is tested separately); the density of
        # N(loc, L L^T) comes from scipy.
        tril = head.params(tf.constant(h))["scale_tril"].numpy().astype("float64")
        loc = h[:, : head.latent_dim].astype("float64")
        return np.array(
            [stats.multivariate_normal(loc[i], tril[i] @ tril[i].T).logpdf(x[i]) for i in range(len(x))]
        )
    split = split_np(head, h)
    axes = event_axes(head)
    if isinstance(head, Bernoulli):
        return stats.bernoulli.logpmf(x, special.expit(split[..., 0])).sum(axes)
    if isinstance(head, ContinuousBernoulli):
        lam = special.expit(split[..., 0])
        dens = cb_log_normalizer(lam) + x * np.log(lam) + (1.0 - x) * np.log1p(-lam)
        return dens.sum(axes)
    if isinstance(head, Gaussian):
        return stats.norm.logpdf(x, split[..., 0], gaussian_scale_np(head, split)).sum(axes)
    if isinstance(head, Categorical):
        k = np.round(x * (head.num_categories - 1)).astype(int)
        logp = special.log_softmax(split, axis=-1)
        return np.take_along_axis(logp, k[..., None], -1)[..., 0].sum(axes)
    raise AssertionError(f"no reference for {head!r}")


def reference_mean(head, h):
    split = split_np(head, h)
    if isinstance(head, Bernoulli):
        return special.expit(split[..., 0])
    if isinstance(head, ContinuousBernoulli):
        return cb_mean(special.expit(split[..., 0]))
    if isinstance(head, Gaussian):
        return split[..., 0]
    if isinstance(head, Categorical):
        levels = np.linspace(0.0, 1.0, head.num_categories)
        return (special.softmax(split, axis=-1) * levels).sum(-1)
    raise AssertionError(f"no reference mean for {head!r}")


def expected_event_shape(head):
    return [head.latent_dim] if isinstance(head, PosteriorHead) else list(head.data_shape)


# --------------------------------------------------------------------------- log_prob


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_log_prob_matches_scipy(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    head = built_head(name, rng)
    h = network_input(head, rng, scale=1.5)
    x = raw_data(head, rng)

    dist = head(tf.constant(h))
    assert dist.batch_shape.as_list() == [BATCH]
    assert dist.event_shape.as_list() == expected_event_shape(head)
    actual = dist.log_prob(targets(head, x)).numpy()
    np.testing.assert_allclose(actual, reference_log_prob(head, h, x), rtol=RTOL, atol=ATOL)

    # call(h) is exactly distribution(params(h)).
    params = head.params(tf.constant(h))
    assert set(params) == set(head.param_names)
    via_params = head.distribution(params).log_prob(targets(head, x)).numpy()
    np.testing.assert_array_equal(actual, via_params)


@pytest.mark.parametrize("logit", [0.0, 1e-5, -1e-3, 0.02, -0.4, 3.0, -9.0])
def test_continuous_bernoulli_normalizer_near_half(logit):
    """Including lambda = 0.5 exactly (C = 2, density 1) and its Taylor neighbourhood."""
    head = ContinuousBernoulli((5,))
    h = np.full((1, 5), logit, "float32")
    x = np.array([[0.0, 0.1, 0.5, 0.77, 1.0]], "float32")
    actual = head(h).log_prob(x).numpy()
    np.testing.assert_allclose(actual, reference_log_prob(head, h, x), rtol=RTOL, atol=1e-4)
    if logit == 0.0:
        np.testing.assert_allclose(actual, [0.0], atol=1e-6)


def test_categorical_log_prob_uniform_logits():
    head = Categorical((2,), num_categories=4)
    dist = head(np.zeros((1, 8), "float32"))
    x = head.prepare_targets(tf.constant([[0.0, 1.0]]))
    np.testing.assert_allclose(dist.log_prob(x).numpy(), [2 * math.log(0.25)], rtol=1e-6)


# --------------------------------------------------------------------------- means, targets, shapes


@pytest.mark.parametrize("name", LIKELIHOOD_NAMES)
def test_mean_matches_reference(name):
    rng = np.random.default_rng(7)
    head = built_head(name, rng)
    h = network_input(head, rng, scale=2.0)
    params = head.params(tf.constant(h))
    mean = head.mean(params).numpy()
    assert mean.shape == (BATCH, *head.data_shape)
    np.testing.assert_allclose(mean, reference_mean(head, h), rtol=RTOL, atol=1e-4)
    if not isinstance(head, Categorical):  # the Categorical distribution's mean is an index
        np.testing.assert_allclose(head.distribution(params).mean().numpy(), mean, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_categories", [2, 4, 256])
def test_categorical_prepare_targets_maps_levels_to_indices(num_categories):
    head = Categorical((num_categories,), num_categories=num_categories)
    levels = (np.arange(num_categories) / (num_categories - 1)).astype("float32")[None]
    head.check_support(levels)  # float32-rounded levels are accepted
    idx = head.prepare_targets(tf.constant(levels))
    assert idx.dtype == tf.int32
    np.testing.assert_array_equal(idx.numpy(), np.arange(num_categories)[None])


@pytest.mark.parametrize("name", [n for n in LIKELIHOOD_NAMES if "categorical" not in n])
def test_prepare_targets_is_identity_for_real_valued_heads(name):
    head = HEADS[name]()
    x = raw_data(head, np.random.default_rng(0))
    np.testing.assert_array_equal(np.asarray(head.prepare_targets(x)), x)


@pytest.mark.parametrize(
    "head, shape",
    [
        (Bernoulli((28, 28, 1)), (28, 28, 1)),
        (ContinuousBernoulli((5,)), (5,)),
        (Gaussian((28, 28, 1), sigma="fixed"), (28, 28, 1)),
        (Gaussian((28, 28, 1), sigma="shared"), (28, 28, 1)),
        (Gaussian((28, 28, 3), sigma="per_output"), (28, 28, 3)),
        (Gaussian((28, 28, 3), sigma="predicted"), (28, 28, 6)),
        (Categorical((8, 8, 3), num_categories=256), (8, 8, 768)),
        (Categorical((7,), num_categories=3), (21,)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, LikelihoodHead) else None,
)
def test_network_output_shape(head, shape):
    assert head.network_output_shape == shape


def test_gaussian_predicted_layout_interleaves_loc_and_scale():
    """The last network axis is read as (value, parameter) pairs: loc = h[..., 0::2]."""
    head = Gaussian((3,), sigma="predicted", scale_floor=1e-3)
    h = np.array([[0.1, -2.0, 0.2, 0.0, 0.3, 4.0]], "float32")
    params = head.params(h)
    np.testing.assert_allclose(params["loc"].numpy(), [[0.1, 0.2, 0.3]], rtol=1e-6)
    np.testing.assert_allclose(params["scale"].numpy(), [softplus(np.array([-2.0, 0.0, 4.0])) + 1e-3], rtol=1e-6)


@pytest.mark.parametrize("d, expected", [(1, 2), (2, 5), (3, 9), (4, 14), (10, 65)])
def test_num_params(d, expected):
    assert FullCovarianceNormal(d).num_params == expected == d + d * (d + 1) // 2
    assert DiagonalNormal(d).num_params == 2 * d


# --------------------------------------------------------------------------- KL


@pytest.mark.parametrize("name", POSTERIOR_NAMES)
def test_kl_to_standard_normal_analytic_and_monte_carlo(name):
    rng = np.random.default_rng(11)
    head = built_head(name, rng)
    h = network_input(head, rng, batch=3, scale=0.7)
    q = head(tf.constant(h))
    p = StandardNormalPrior(LATENT_DIM).distribution()
    kl = tfd.kl_divergence(q, p).numpy().astype("float64")
    assert kl.shape == (3,) and np.all(kl > 0)

    # Closed form: 0.5 (tr S + |mu|^2 - d - log det S).
    mu = q.mean().numpy().astype("float64")
    cov = q.covariance().numpy().astype("float64")
    closed = 0.5 * (
        np.trace(cov, axis1=-2, axis2=-1) + (mu**2).sum(-1) - LATENT_DIM - np.linalg.slogdet(cov)[1]
    )
    np.testing.assert_allclose(kl, closed, rtol=RTOL, atol=ATOL)

    n = 200_000
    z = q.sample(n, seed=seed())
    log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy().astype("float64")
    mc = log_ratio.mean(0)
    se = log_ratio.std(0, ddof=1) / math.sqrt(n)
    tol = np.maximum(3.0 * se, 0.02 * np.abs(kl))
    assert np.all(np.abs(mc - kl) <= tol), (mc, kl, se)


# --------------------------------------------------------------------------- gradients


def raw_input(head, regime, rng):
    h = network_input(head, rng)
    if regime == "random":
        return h
    if regime == "mixed":
        return (50.0 * np.sign(h)).astype("float32")
    return np.full_like(h, float(regime))


GRAD_CASES = [(name, regime) for name in HEAD_NAMES for regime in ("random", "50", "-50", "mixed")]


@pytest.mark.parametrize("name, regime", GRAD_CASES)
def test_gradients_are_finite(name, regime):
    rng = np.random.default_rng(3)
    head = built_head(name, rng)
    h = tf.constant(raw_input(head, regime, rng))
    x = targets(head, raw_data(head, rng))
    with tf.GradientTape() as tape:
        tape.watch(h)
        log_prob = head(h).log_prob(x)
        loss = -tf.reduce_mean(log_prob)
    sources = [h, *head.trainable_weights]
    grads = tape.gradient(loss, sources)
    assert np.all(np.isfinite(log_prob.numpy())), log_prob.numpy()
    for source, grad in zip(sources, grads):
        assert grad is not None, source.name if hasattr(source, "name") else "h"
        assert np.all(np.isfinite(grad.numpy())), grad.numpy()
    if regime == "random":
        assert np.any(grads[0].numpy() != 0)
        for grad in grads[1:]:  # learned Gaussian scales get a signal too
            assert np.any(grad.numpy() != 0)


@pytest.mark.parametrize(
    "name, key", [("diag", "scale"), ("gaussian_predicted", "scale"), ("gaussian_predicted_image", "scale")]
)
def test_scale_floor_bounds_scales(name, key):
    head = built_head(name)
    h = np.full((2, *network_input(head, np.random.default_rng(0)).shape[1:]), -50.0, "float32")
    scale = head.params(h)[key].numpy()
    np.testing.assert_allclose(scale, head.scale_floor, rtol=1e-5)
    assert np.all(scale >= head.scale_floor * (1 - 1e-6))


# --------------------------------------------------------------------------- XLA


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_xla_matches_eager(name):
    rng = np.random.default_rng(5)
    head = built_head(name, rng)
    h = tf.constant(network_input(head, rng))
    x = targets(head, raw_data(head, rng))

    def fn(h, x):
        params = head.params(h)
        dist = head.distribution(params)
        sample = dist.sample(seed=seed())
        return params, dist.log_prob(x), sample, dist.log_prob(sample)

    eager = fn(h, x)
    xla_fn = tf.function(fn, jit_compile=True)
    xla = xla_fn(h, x)
    again = xla_fn(h, x)

    for key in eager[0]:
        np.testing.assert_allclose(xla[0][key].numpy(), eager[0][key].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xla[1].numpy(), eager[1].numpy(), rtol=1e-5, atol=1e-5)

    # Stateless samples: same shape/dtype as eager, reproducible, and their log_prob
    # agrees with the eager density. (XLA on CPU may use a different counter-based RNG
    # than the eager kernels, so the draws themselves are not compared bitwise.)
    xla_sample, eager_sample = xla[2].numpy(), eager[2].numpy()
    assert xla_sample.shape == eager_sample.shape == (BATCH, *expected_event_shape(head))
    assert xla[2].dtype == eager[2].dtype
    np.testing.assert_array_equal(xla_sample, again[2].numpy())
    eager_lp_of_xla_sample = head(h).log_prob(xla[2]).numpy()
    np.testing.assert_allclose(xla[3].numpy(), eager_lp_of_xla_sample, rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(xla[3].numpy()))
    # Eager sampling with a stateless seed is reproducible (and equals graph mode).
    np.testing.assert_array_equal(eager_sample, fn(h, x)[2].numpy())
    np.testing.assert_array_equal(eager_sample, tf.function(fn)(h, x)[2].numpy())
    if isinstance(head, LikelihoodHead):
        if isinstance(head, Categorical):
            assert np.all((xla_sample >= 0) & (xla_sample < head.num_categories))
        else:
            head.check_support(xla_sample)


def test_prior_in_xla_matches_eager():
    prior = StandardNormalPrior(3)
    z = tf.constant(np.random.default_rng(0).normal(size=(4, 3)).astype("float32"))

    def fn(z):
        return prior.distribution().log_prob(prior(z)), prior.distribution().sample(2, seed=seed())

    eager, xla = fn(z), tf.function(fn, jit_compile=True)(z)
    np.testing.assert_allclose(xla[0].numpy(), eager[0].numpy(), rtol=1e-6)
    assert xla[1].shape == eager[1].shape == (2, 3)


# --------------------------------------------------------------------------- config


def config_cases():
    cases = [pytest.param(HEADS[name], id=name) for name in HEAD_NAMES]
    cases.append(pytest.param(lambda: StandardNormalPrior(5), id="prior"))
    cases.append(pytest.param(lambda: DiagonalNormal(3, scale_floor=1e-2, name="enc_q"), id="diag_custom"))
    return cases


@pytest.mark.parametrize("factory", config_cases())
def test_config_round_trip(factory):
    layer = factory()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # Through Keras serialization too (the classes are registered under "vaezoo").
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config
    # The clone computes the same thing.
    if isinstance(layer, StandardNormalPrior):
        z = np.ones((2, 5), "float32")
        np.testing.assert_array_equal(
            clone.distribution().log_prob(z).numpy(), layer.distribution().log_prob(z).numpy()
        )
        return
    rng = np.random.default_rng(0)
    h = network_input(layer, rng)
    x = targets(layer, raw_data(layer, rng))
    np.testing.assert_array_equal(clone(h).log_prob(x).numpy(), layer(h).log_prob(x).numpy())


@pytest.mark.parametrize("sigma", ["shared", "per_output"])
@pytest.mark.parametrize("sigma_init", [0.01, SIGMA_INIT, 3.0])
def test_gaussian_learned_scale_weights(sigma, sigma_init):
    head = Gaussian(DATA_SHAPE, sigma=sigma, sigma_init=sigma_init)
    head.build((None, *head.network_output_shape))
    assert len(head.trainable_weights) == 1
    expected_shape = () if sigma == "shared" else DATA_SHAPE
    assert tuple(head.trainable_weights[0].shape) == expected_shape
    scale = head.params(np.zeros((2, *DATA_SHAPE), "float32"))["scale"].numpy()
    assert scale.shape == (2, *DATA_SHAPE)
    np.testing.assert_allclose(scale, sigma_init, rtol=1e-5)


@pytest.mark.parametrize("sigma", ["fixed", "predicted"])
def test_gaussian_fixed_and_predicted_have_no_weights(sigma):
    head = Gaussian(DATA_SHAPE, sigma=sigma, sigma_init=SIGMA_INIT)
    head(network_input(head, np.random.default_rng(0)))
    assert head.weights == []
    if sigma == "fixed":
        h = network_input(head, np.random.default_rng(1), scale=50.0)
        np.testing.assert_array_equal(head.params(h)["scale"].numpy(), np.full((BATCH, *DATA_SHAPE), np.float32(SIGMA_INIT)))


# --------------------------------------------------------------------------- full covariance


@pytest.mark.parametrize("regime", ["random", "50", "-50", "mixed"])
def test_full_covariance_scale_tril_structure(regime):
    rng = np.random.default_rng(2)
    head = FullCovarianceNormal(LATENT_DIM)
    h = raw_input(head, regime, rng) if regime != "random" else network_input(head, rng, scale=3.0)
    params = head.params(tf.constant(h))
    tril = params["scale_tril"].numpy()
    assert tril.shape == (BATCH, LATENT_DIM, LATENT_DIM)
    np.testing.assert_array_equal(np.triu(tril, 1), 0.0)
    diag = np.diagonal(tril, axis1=-2, axis2=-1)
    assert np.all(diag > 0)
    assert np.all(diag >= head.scale_floor * (1 - 1e-6))
    if regime == "-50":
        np.testing.assert_allclose(diag, head.scale_floor, rtol=1e-5)
    np.testing.assert_array_equal(params["loc"].numpy(), h[:, :LATENT_DIM])
    np.testing.assert_allclose(
        head.distribution(params).covariance().numpy(), tril @ np.swapaxes(tril, -1, -2), rtol=1e-5, atol=1e-6
    )


def test_full_covariance_uses_every_raw_parameter():
    """The map raw -> L is locally injective: all d(d+1)/2 raw values matter."""
    head = FullCovarianceNormal(LATENT_DIM)
    h = tf.constant(network_input(head, np.random.default_rng(4), batch=1))
    with tf.GradientTape() as tape:
        tape.watch(h)
        tril = head.params(h)["scale_tril"]
    jac = tape.jacobian(tril, h).numpy().reshape(LATENT_DIM * LATENT_DIM, -1)
    n_tril = LATENT_DIM * (LATENT_DIM + 1) // 2
    assert np.all(jac[:, :LATENT_DIM] == 0)  # loc does not feed L
    assert np.linalg.matrix_rank(jac[:, LATENT_DIM:]) == n_tril


def test_full_covariance_samples_match_covariance():
    n = 100_000
    head = FullCovarianceNormal(LATENT_DIM)
    h = network_input(head, np.random.default_rng(8), batch=2)
    params = head.params(tf.constant(h))
    loc = params["loc"].numpy().astype("float64")
    tril = params["scale_tril"].numpy().astype("float64")
    cov = tril @ np.swapaxes(tril, -1, -2)
    z = head.distribution(params).sample(n, seed=seed()).numpy().astype("float64")
    assert z.shape == (n, 2, LATENT_DIM)
    for b in range(2):
        sample_mean = z[:, b].mean(0)
        sample_cov = np.cov(z[:, b], rowvar=False)
        var = np.diag(cov[b])
        assert np.all(np.abs(sample_mean - loc[b]) <= 5 * np.sqrt(var / n))
        se = np.sqrt((np.outer(var, var) + cov[b] ** 2) / n)
        assert np.all(np.abs(sample_cov - cov[b]) <= 5 * se), (sample_cov, cov[b])
        # z = mu + L eps  <=>  eps = L^-1 (z - mu) is standard normal.
        eps = np.linalg.solve(tril[b], (z[:, b] - loc[b]).T).T
        np.testing.assert_allclose(np.cov(eps, rowvar=False), np.eye(LATENT_DIM), atol=0.025)
        np.testing.assert_allclose(eps.mean(0), 0.0, atol=0.02)


def test_diagonal_normal_covariance_is_diag_of_scale_squared():
    head = DiagonalNormal(LATENT_DIM)
    h = network_input(head, np.random.default_rng(9))
    params = head.params(tf.constant(h))
    scale = params["scale"].numpy()
    np.testing.assert_allclose(
        head.distribution(params).covariance().numpy(),
        np.einsum("bi,ij->bij", scale**2, np.eye(LATENT_DIM)),
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_array_equal(params["loc"].numpy(), h[:, :LATENT_DIM])


# --------------------------------------------------------------------------- support checks


BAD_VALUES = [
    ("bernoulli", 0.5),
    ("continuous_bernoulli", 1.5),
    ("continuous_bernoulli", -0.1),
    ("categorical", 0.3),
    ("categorical", 1.2),
    ("gaussian_fixed", float("nan")),
    ("gaussian_predicted", float("inf")),
]


@pytest.mark.parametrize("name, bad", BAD_VALUES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_support_rejects_and_names_value(name, bad, dtype):
    head = HEADS[name]()
    x = raw_data(head, np.random.default_rng(0), batch=2).astype(dtype)
    x[1, 0, 2] = bad
    with pytest.raises(ValueError) as info:
        head.check_support(x)
    message = str(info.value)
    assert "x[1, 0, 2]" in message
    assert str(bad) in message
    assert type(head).__name__ in message
    assert "1 value(s)" in message
    with pytest.raises(ValueError, match=re.escape("batch[1, 0, 2]")):
        head.check_support(x, name="batch")


@pytest.mark.parametrize("name", LIKELIHOOD_NAMES)
def test_check_support_accepts_valid_data(name):
    head = HEADS[name]()
    for dtype in ("float32", "float64"):
        head.check_support(raw_data(head, np.random.default_rng(1)).astype(dtype))


def test_check_support_counts_and_reports_first_bad_value():
    head = ContinuousBernoulli((3,))
    with pytest.raises(ValueError, match=r"2 value\(s\).*x\[0, 1\] = .*1\.5"):
        head.check_support(np.array([[0.0, 1.5, -0.1]], "float32"))
    head.check_support(np.array([[0.0, 0.5, 1.0]], "float32"))


def test_bernoulli_support_hint_mentions_binarize():
    with pytest.raises(ValueError, match="binarize"):
        Bernoulli((2,)).check_support(np.array([[0.0, 0.5]]))


# --------------------------------------------------------------------------- argument validation


BAD_ARGS = [
    (lambda: DiagonalNormal(0), "latent_dim must be a positive integer, got 0"),
    (lambda: FullCovarianceNormal(-2), "latent_dim must be a positive integer, got -2"),
    (lambda: DiagonalNormal(2, scale_floor=0.0), "scale_floor must be > 0"),
    (lambda: Gaussian(DATA_SHAPE, sigma="learned"), "unknown sigma mode 'learned'"),
    (lambda: Gaussian(DATA_SHAPE, sigma_init=1e-3), "sigma_init=0.001"),
    (lambda: Gaussian(DATA_SHAPE, sigma_init=0.5, scale_floor=0.5), "sigma_init=0.5"),
    (lambda: Gaussian(DATA_SHAPE, sigma_init=-1.0), "sigma_init=-1.0"),
    (lambda: Gaussian(DATA_SHAPE, scale_floor=0.0, sigma_init=1.0), "scale_floor=0.0"),
    (lambda: Categorical(DATA_SHAPE, num_categories=1), "num_categories must be >= 2, got 1"),
    (lambda: Bernoulli(()), "data_shape"),
    (lambda: Gaussian((2, 0)), "data_shape"),
    (lambda: posterior_head("lowrank", 2), "unknown posterior 'lowrank'"),
    (lambda: likelihood_head("poisson", DATA_SHAPE), "unknown likelihood 'poisson'"),
    (lambda: likelihood_head("bernoulli", DATA_SHAPE, sigma="fixed"), "sigma"),
    (lambda: likelihood_head("gaussian", DATA_SHAPE, sigma="nope"), "unknown sigma mode 'nope'"),
    (lambda: posterior_head("diag", 0), "latent_dim"),
    (lambda: StandardNormalPrior(0), "latent_dim must be a positive integer, got 0"),
]


@pytest.mark.parametrize("make, message", BAD_ARGS)
def test_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_unknown_name_errors_list_known_names():
    with pytest.raises(ValueError, match=re.escape(str(sorted(POSTERIORS)))):
        posterior_head("x", 2)
    with pytest.raises(ValueError, match=re.escape(str(sorted(LIKELIHOODS)))):
        likelihood_head("x", DATA_SHAPE)


@pytest.mark.parametrize("kind", sorted(POSTERIORS))
def test_posterior_head_factory(kind):
    head = posterior_head(kind, 3, scale_floor=1e-3)
    assert type(head) is POSTERIORS[kind]
    assert head.latent_dim == 3 and head.scale_floor == 1e-3


@pytest.mark.parametrize("kind", sorted(LIKELIHOODS))
def test_likelihood_head_factory(kind):
    head = likelihood_head(kind, (4, 4, 1))
    assert type(head) is LIKELIHOODS[kind]
    assert head.data_shape == (4, 4, 1)


def test_likelihood_head_factory_passes_options():
    assert likelihood_head("gaussian", (28, 28, 1), sigma="predicted").network_output_shape == (28, 28, 2)
    assert likelihood_head("categorical", (2,), num_categories=3).num_categories == 3


def test_heads_refuse_functional_graphs():
    with pytest.raises(NotImplementedError, match="subclassed model"):
        DiagonalNormal(2)(keras.Input((4,)))


# --------------------------------------------------------------------------- prior


def test_prior_log_prob_matches_scipy():
    d = 3
    prior = StandardNormalPrior(d)
    dist = prior.distribution()
    assert dist.event_shape.as_list() == [d] and dist.batch_shape.as_list() == []
    z = 2.0 * np.random.default_rng(0).standard_normal((7, d))
    np.testing.assert_allclose(
        dist.log_prob(z.astype("float32")).numpy(),
        stats.multivariate_normal(np.zeros(d), np.eye(d)).logpdf(z),
        rtol=RTOL,
    )
    np.testing.assert_allclose(dist.log_prob(np.zeros((1, d), "float32")).numpy(), [-1.5 * math.log(2 * math.pi)], rtol=1e-6)


def test_prior_from_noise_is_identity():
    prior = StandardNormalPrior(4)
    assert prior.noise_shape == (4,)
    eps = np.random.default_rng(1).standard_normal((6, 4)).astype("float32")
    z = prior.from_noise(eps)
    assert isinstance(z, tf.Tensor)
    np.testing.assert_array_equal(z.numpy(), eps)
    np.testing.assert_array_equal(prior(eps).numpy(), eps)
    assert prior.distribution().sample(3, seed=seed()).shape == (3, 4)
