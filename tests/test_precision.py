"""Mixed precision: every registered model trains under the ``mixed_float16`` policy,
with float16 networks and float32 distributions, densities and weights."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import data_for, inputs, small_model, weights_of

import vaezoo

MODELS = vaezoo.list_models()


@pytest.fixture
def mixed_policy():
    from vaezoo._tf import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", MODELS)
def test_mixed_float16_training_step(name, load_small, mixed_policy):
    from vaezoo._tf import keras

    data = data_for(load_small, name)
    model = small_model(name, data.train.x.shape[1:])
    keras.mixed_precision.set_global_policy("float32")  # the model keeps the policy it was built under
    assert model.dtype_policy.name == "mixed_float16"
    assert model.encoder.compute_dtype == "float16" and model.decoder.compute_dtype == "float16"
    heads = [model.likelihood, model.prior, getattr(model, "posterior", None)]  # no posterior: no encoder (DEO)
    for head in filter(None, heads):
        assert head.compute_dtype == "float32", (type(head).__name__, head.compute_dtype)
    # XLA: TensorFlow's CPU kernels for float16 are slow; XLA's are not.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = weights_of(model)
    # Dynamic loss scaling starts at 2**15 and skips the steps whose float16 gradients
    # overflow, halving the scale each time: 24 steps leave enough that are applied.
    history = model.fit(*inputs(model, data.train, 384), epochs=1, batch_size=16, verbose=0).history
    for metric in model.metric_names:
        assert np.isfinite(history[metric]).all(), (metric, history[metric])
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights_of(model)))
    assert int(model.optimizer.iterations) > 0  # some steps were applied
    test = inputs(model, data.test, 8)
    assert model.reconstruct(*test).dtype == np.float32
    assert np.isfinite(model.elbo(*test)).all()
