"""MLP and convolutional encoder/decoder builders."""

from __future__ import annotations

import math
from collections.abc import Sequence

from vaezoo._tf import keras

ARCHITECTURES = ("mlp", "conv")
layers = keras.layers


def _check(architecture: str, data_shape: tuple[int, ...], conv_filters: Sequence[int]) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown network {architecture!r}; known: {list(ARCHITECTURES)}")
    if architecture == "conv":
        if len(data_shape) != 3:
            raise ValueError(f"network='conv' needs image data (H, W, C), got data_shape={data_shape}")
        if not conv_filters:
            raise ValueError("network='conv' needs at least one entry in conv_filters")
        factor = 2 ** len(conv_filters)
        if data_shape[0] % factor or data_shape[1] % factor:
            raise ValueError(
                f"network='conv' halves the image {len(conv_filters)} times, so H and W must be "
                f"divisible by {factor}; got data_shape={data_shape}. Use fewer conv_filters."
            )


def build_encoder(
    architecture: str,
    data_shape: tuple[int, ...],
    output_units: int,
    hidden_units: Sequence[int] = (512, 256),
    conv_filters: Sequence[int] = (32, 64),
    activation: str = "relu",
    name: str = "encoder",
) -> keras.Sequential:
    """x -> a flat vector of ``output_units`` (the posterior head's raw parameters).

    ``mlp``: Flatten, then Dense(h) for h in ``hidden_units``. ``conv``: a stride-2
    4x4 convolution per entry of ``conv_filters``, Flatten, then the dense layers.

    Example:
        >>> build_encoder("conv", (28, 28, 1), 4, hidden_units=(8,), conv_filters=(4, 8)).output_shape
        (None, 4)
    """
    data_shape = tuple(data_shape)
    _check(architecture, data_shape, conv_filters)
    stack: list[keras.layers.Layer] = [keras.Input(data_shape)]
    if architecture == "conv":
        stack += [
            layers.Conv2D(f, 4, strides=2, padding="same", activation=activation) for f in conv_filters
        ]
    stack.append(layers.Flatten())
    stack += [layers.Dense(h, activation=activation) for h in hidden_units]
    stack.append(layers.Dense(output_units))
    return keras.Sequential(stack, name=name)


def build_decoder(
    architecture: str,
    latent_dim: int,
    output_shape: tuple[int, ...],
    hidden_units: Sequence[int] = (512, 256),
    conv_filters: Sequence[int] = (32, 64),
    activation: str = "relu",
    name: str = "decoder",
) -> keras.Sequential:
    """z -> a tensor of ``output_shape`` (the likelihood head's raw parameters).

    Mirrors ``build_encoder``: dense layers in reverse order, then for ``conv`` a
    stride-2 transposed convolution per filter (reversed) and a 3x3 output convolution.

    Example:
        >>> build_decoder("mlp", 4, (28, 28, 2), hidden_units=(8,)).output_shape
        (None, 28, 28, 2)
    """
    output_shape = tuple(output_shape)
    _check(architecture, output_shape, conv_filters)
    stack: list[keras.layers.Layer] = [keras.Input((latent_dim,))]
    stack += [layers.Dense(h, activation=activation) for h in reversed(tuple(hidden_units))]
    if architecture == "mlp":
        stack += [layers.Dense(math.prod(output_shape)), layers.Reshape(output_shape)]
    else:
        factor = 2 ** len(conv_filters)
        start = (output_shape[0] // factor, output_shape[1] // factor, conv_filters[-1])
        stack += [layers.Dense(math.prod(start), activation=activation), layers.Reshape(start)]
        stack += [
            layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation=activation)
            for f in reversed(tuple(conv_filters))
        ]
        stack.append(layers.Conv2D(output_shape[-1], 3, padding="same"))
    return keras.Sequential(stack, name=name)
