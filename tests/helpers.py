"""Helpers shared by the test modules (imported as ``helpers``; see conftest.py)."""

from __future__ import annotations

import numpy as np

#: Overrides that make every registered model small enough to train in seconds.
SMALL = {"hidden_units": (32,), "latent_dim": 4, "conv_filters": (8, 16)}


def data_for(load_small, model_name: str):
    """The registry's data set for ``model_name``, small."""
    from vaezoo.registry import get_spec

    return load_small(get_spec(model_name).data)


def small_model(model_name: str, data_shape, **overrides):
    """The registered model with the SMALL overrides for data of ``data_shape``."""
    from vaezoo.training import build_for_data

    return build_for_data(model_name, tuple(data_shape), **{**SMALL, **overrides})


def weights_of(model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]
