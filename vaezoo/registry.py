"""The one registry of models: name -> class and default config.

The CLI, presets, export, docs and the test matrix all read it. Classes are named by
import path and loaded on first use, so listing models never imports TensorFlow. A new
variant is one module in ``vaezoo/models`` plus one ``register(...)`` line below.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model.

    Attributes:
        name: registry name (``vaezoo train --model NAME``).
        target: ``"module:Class"`` of the Keras model class.
        config: constructor arguments that differ from the class defaults.
        data: the data set this configuration is meant for (``vaezoo.datasets``).
        summary: one line for ``vaezoo list``.
        paper: the citation.
    """

    name: str
    target: str
    config: Mapping[str, Any]
    data: str
    summary: str
    paper: str

    def load_class(self) -> type:
        """Import and return the model class."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_MODELS: dict[str, ModelSpec] = {}


def register(
    name: str, target: str, *, data: str, summary: str, paper: str, **config: Any
) -> ModelSpec:
    """Add a model to the registry; a duplicate name is an error.

    Example:
        >>> spec = register("my_vae", "vaezoo.models.vae:VAE", data="shapes",
        ...                 summary="demo", paper="-", latent_dim=3)
        >>> get_spec("my_vae").config["latent_dim"]
        3
        >>> unregister("my_vae")
    """
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered (as {_MODELS[name].target})")
    spec = ModelSpec(name, target, MappingProxyType(dict(config)), data, summary, paper)
    _MODELS[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model from the registry (for tests and plugins)."""
    del _MODELS[name]


def list_models() -> list[str]:
    """Names of every registered model, sorted.

    Example:
        >>> "vae" in list_models()
        True
    """
    return sorted(_MODELS)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; unknown names list the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def create_model(name: str, **overrides: Any):
    """Build a registered model with its default config updated by ``overrides``.

    Example:
        >>> model = create_model("vae", latent_dim=2, hidden_units=(8,))
        >>> model.latent_dim
        2
    """
    spec = get_spec(name)
    return spec.load_class()(**{**spec.config, "name": name, **overrides})


_PAPER_VAE = "Kingma & Welling 2014, Auto-Encoding Variational Bayes"

register(
    "vae",
    "vaezoo.models.vae:VAE",
    data="binarized_mnist",
    summary="MLP VAE 784-512-256-32, diagonal Normal posterior, Bernoulli likelihood",
    paper=_PAPER_VAE,
    hidden_units=(512, 256),
    latent_dim=32,
)
register(
    "vae_tril",
    "vaezoo.models.vae:VAE",
    data="binarized_mnist",
    summary="MLP VAE with a full-covariance posterior N(mu, L L^T), z = mu + L eps",
    paper=_PAPER_VAE,
    hidden_units=(512, 256),
    latent_dim=32,
    posterior="tril",
)
register(
    "conv_vae",
    "vaezoo.models.vae:VAE",
    data="fashion_mnist",
    summary="Convolutional VAE, continuous Bernoulli likelihood, for [0, 1] images",
    paper=_PAPER_VAE + "; Loaiza-Ganem & Cunningham 2019 (continuous Bernoulli)",
    network="conv",
    conv_filters=(32, 64),
    hidden_units=(256,),
    latent_dim=16,
    likelihood="continuous_bernoulli",
)
register(
    "vae_gaussian",
    "vaezoo.models.vae:VAE",
    data="fashion_mnist",
    summary="MLP VAE with a Gaussian likelihood whose per-pixel sigma is learned",
    paper=_PAPER_VAE,
    hidden_units=(512, 256),
    latent_dim=16,
    likelihood="gaussian",
    likelihood_options={"sigma": "per_output", "sigma_init": 0.2},
)

# Disentangling VAEs, configured for the dSprites-like ``shapes`` set (64x64x1, binary).
_SHAPES_CONV = {
    "data_shape": (64, 64, 1),
    "network": "conv",
    "conv_filters": (32, 32, 64, 64),
    "hidden_units": (256,),
    "latent_dim": 10,
    "likelihood": "bernoulli",
}
register(
    "beta_vae",
    "vaezoo.models.beta_vae:BetaVAE",
    data="shapes",
    summary="beta-VAE: reconstruction + beta * KL, beta = 4; conv net for 64x64 shapes",
    paper="Higgins et al. 2017, beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
    beta=4.0,
    **_SHAPES_CONV,
)
register(
    "beta_vae_capacity",
    "vaezoo.models.beta_vae:BetaVAECapacity",
    data="shapes",
    summary="beta-VAE with capacity annealing: reconstruction + gamma * |KL - C(t)|, C: 0 -> 25 nats",
    paper="Burgess et al. 2018, Understanding disentangling in beta-VAE",
    gamma=1000.0,
    c_max=25.0,
    capacity_steps=100_000,
    **_SHAPES_CONV,
)
register(
    "beta_tcvae",
    "vaezoo.models.tcvae:BetaTCVAE",
    data="shapes",
    summary="beta-TCVAE: KL split into MI + TC + dimension-wise KL (stratified sampling), TC weight 6",
    paper="Chen et al. 2018, Isolating Sources of Disentanglement in Variational Autoencoders",
    alpha=1.0,
    beta=6.0,
    gamma=1.0,
    dataset_size=20_000,
    **_SHAPES_CONV,
)
register(
    "factor_vae",
    "vaezoo.models.factor_vae:FactorVAE",
    data="shapes",
    summary="FactorVAE: ELBO + gamma * TC from a 6x1000 MLP discriminator on permuted codes, gamma = 10",
    paper="Kim & Mnih 2018, Disentangling by Factorising",
    gamma=10.0,
    **_SHAPES_CONV,
)
register(
    "dip_vae_i",
    "vaezoo.models.dip_vae:DIPVAEI",
    data="shapes",
    summary="DIP-VAE-I: ELBO + penalty pulling Cov[mu(x)] to I (lambda_od 10, lambda_d 100)",
    paper="Kumar et al. 2018, Variational Inference of Disentangled Latent Concepts from Unlabeled Observations",
    lambda_od=10.0,
    lambda_d=100.0,
    **_SHAPES_CONV,
)
register(
    "dip_vae_ii",
    "vaezoo.models.dip_vae:DIPVAEII",
    data="shapes",
    summary="DIP-VAE-II: ELBO + penalty pulling Cov_q(z) = E[Sigma] + Cov[mu] to I (lambdas 10)",
    paper="Kumar et al. 2018, Variational Inference of Disentangled Latent Concepts from Unlabeled Observations",
    lambda_od=10.0,
    lambda_d=10.0,
    **_SHAPES_CONV,
)
