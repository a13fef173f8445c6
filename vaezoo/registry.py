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

# Mixture prior, two-stage and structured-residual VAEs, all for Fashion-MNIST.
register(
    "gmvae",
    "vaezoo.models.gmvae:GMVAE",
    data="fashion_mnist",
    summary="Gaussian-mixture VAE: K = 10 components set by w ~ N(0, I), free bits 0.5 on the z-prior term",
    paper="Dilokthanakul et al. 2017, Deep Unsupervised Clustering with Gaussian Mixture Variational Autoencoders",
    hidden_units=(256,),
    latent_dim=10,
    w_dim=10,
    prior_hidden_units=(64,),
    num_clusters=10,
    free_bits=0.5,
    likelihood="gaussian",
    likelihood_options={"sigma": "shared", "sigma_init": 0.2},
)
register(
    "two_stage_vae",
    "vaezoo.models.two_stage:TwoStageVAE",
    data="fashion_mnist",
    summary="Two-stage VAE: Gaussian likelihood with one learned gamma, then a second VAE on its latents",
    paper="Dai & Wipf 2019, Diagnosing and Enhancing VAE Models",
    hidden_units=(512, 256),
    latent_dim=32,
    likelihood="gaussian",
    likelihood_options={"sigma": "shared", "sigma_init": 1.0},
)
register(
    "vae_structured",
    "vaezoo.models.structured:StructuredResidualVAE",
    data="fashion_mnist",
    summary="VAE with a low-rank-plus-diagonal residual covariance (rank 8), on dequantized pixels",
    paper="Dorta et al. 2018, Structured Uncertainty Prediction Networks; Training VAEs Under Structured Residuals",
    hidden_units=(512, 256),
    latent_dim=16,
    likelihood="structured_gaussian",
    likelihood_options={"rank": 8},
    dequantization_levels=256,
)

# Importance-weighted autoencoders and VampPrior VAEs, MLP 784-300-300-40 for the binarized MNIST NLL benchmark.
_NLL_MLP = {"hidden_units": (300, 300), "latent_dim": 40}
_PAPER_VAMP = "Tomczak & Welling 2018, VAE with a VampPrior"
register(
    "iwae",
    "vaezoo.models.iwae:IWAE",
    data="binarized_mnist",
    summary="IWAE: maximises the k = 50 importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i|x)",
    paper="Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders",
    num_samples=50,
    **_NLL_MLP,
)
register(
    "miwae",
    "vaezoo.models.iwae:MIWAE",
    data="binarized_mnist",
    summary="MIWAE: the average of M = 8 importance-weighted bounds of K = 8 samples each",
    paper="Rainforth et al. 2018, Tighter Variational Bounds are Not Necessarily Better",
    M=8,
    K=8,
    **_NLL_MLP,
)
register(
    "vamp_vae",
    "vaezoo.models.vamp:VampPriorVAE",
    data="binarized_mnist",
    summary="VampPrior VAE: p(z) = (1/K) sum_k q(z|u_k) over K = 500 learned pseudo-inputs; ELBO",
    paper=_PAPER_VAMP,
    num_components=500,
    **_NLL_MLP,
)
register(
    "mog_vae",
    "vaezoo.models.vamp:MoGPriorVAE",
    data="binarized_mnist",
    summary="VAE with a learned mixture-of-Gaussians prior, K = 500 components; ELBO",
    paper=_PAPER_VAMP + " (mixture-of-Gaussians baseline)",
    num_components=500,
    **_NLL_MLP,
)
register(
    "hvae_vamp",
    "vaezoo.models.hvae:HVAE",
    data="binarized_mnist",
    summary="Two-layer HVAE: q(z1|x,z2) q(z2|x), p(x|z1,z2) p(z1|z2), VampPrior (K = 500) on z2; 40 + 40 latents",
    paper=_PAPER_VAMP,
    num_components=500,
    hidden_units=(300, 300),
    latent_dim=80,
)

# Conditional VAE and the VAE/GAN hybrids, on labelled Fashion-MNIST (label_dim: its 10 classes).
register(
    "cvae",
    "vaezoo.models.conditional:ConditionalVAE",
    data="fashion_mnist",
    summary="Conditional VAE: q(z|x, y), p(x|z, y) given the class y, hybrid CVAE/GSNN objective (alpha 0.5); MLP",
    paper="Sohn, Lee & Yan 2015, Learning Structured Output Representation using Deep Conditional Generative Models",
    hidden_units=(512, 256),
    latent_dim=16,
    label_dim=10,
    alpha=0.5,
    likelihood="gaussian",
    likelihood_options={"sigma": "per_output", "sigma_init": 0.2},
)
register(
    "vae_gan",
    "vaezoo.models.vae_gan:VAEGAN",
    data="fashion_mnist",
    summary="VAE/GAN: reconstruction error in a conv discriminator's features; encoder, decoder, discriminator optimizers",
    paper="Larsen et al. 2016, Autoencoding beyond pixels using a learned similarity metric",
    network="conv",
    conv_filters=(32, 64),
    hidden_units=(256,),
    latent_dim=16,
    likelihood="gaussian",
    likelihood_options={"sigma": "fixed", "sigma_init": 0.1},
    gamma=1.0,
)
register(
    "cvae_gan",
    "vaezoo.models.vae_gan:CVAEGAN",
    data="fashion_mnist",
    summary="CVAE-GAN: conditional VAE/GAN with a classifier, pairwise and mean feature matching; MLP nets",
    paper="Bao et al. 2017, CVAE-GAN: Fine-Grained Image Generation through Asymmetric Training",
    hidden_units=(512, 256),
    latent_dim=16,
    label_dim=10,
    likelihood="gaussian",
    likelihood_options={"sigma": "fixed", "sigma_init": 1.0},
)

# Flow posteriors (IAF, planar) and discrete latents (VQ-VAE, Gumbel-softmax).
register(
    "vae_iaf",
    "vaezoo.models.flow_vae:FlowVAE",
    data="binarized_mnist",
    summary="VAE with an inverse autoregressive flow posterior: 2 IAF steps, MADEs of 320-320, context h(x) of 64",
    paper="Kingma et al. 2016, Improved Variational Inference with Inverse Autoregressive Flow",
    hidden_units=(512, 256),
    latent_dim=32,
    flow="iaf",
    num_flows=2,
    flow_units=(320, 320),
    context_units=64,
)
register(
    "vae_planar",
    "vaezoo.models.flow_vae:FlowVAE",
    data="binarized_mnist",
    summary="VAE with a planar flow posterior: 10 steps, amortised u, w, b with the u-hat invertibility constraint",
    paper="Rezende & Mohamed 2015, Variational Inference with Normalizing Flows",
    hidden_units=(512, 256),
    latent_dim=32,
    flow="planar",
    num_flows=10,
)
register(
    "vq_vae",
    "vaezoo.models.vq_vae:VQVAE",
    data="fashion_mnist",
    summary="VQ-VAE: 16 codes from a 128 x 16 codebook, straight-through gradient, beta 0.25, squared error; small conv net",
    paper="van den Oord et al. 2017, Neural Discrete Representation Learning",
    network="conv",
    conv_filters=(32, 64),
    hidden_units=(256,),
    latent_dim=16,
    num_embeddings=128,
    embedding_dim=16,
    beta=0.25,
    likelihood="gaussian",
    likelihood_options={"sigma": "fixed", "sigma_init": 1.0},
)
register(
    "gumbel_vae",
    "vaezoo.models.gumbel_vae:GumbelVAE",
    data="binarized_mnist",
    summary="Categorical VAE: 20 x 10-way latents, Gumbel-softmax samples, tau = max(0.5, exp(-3e-5 t)) every 1000 steps",
    paper="Jang et al. 2017, Categorical Reparameterization with Gumbel-Softmax",
    hidden_units=(512, 256),
    latent_dim=20,
    num_classes=10,
    temperature=1.0,
    min_temperature=0.5,
    anneal_rate=3e-5,
    anneal_interval=1000,
)

# The statistical-distance family: the KL term replaced (or joined) by a distance between
# the batch's codes and prior draws; MLP 784-512-256-8 (the WAE paper's MNIST latent size).
_MNIST_MLP_8 = {"hidden_units": (512, 256), "latent_dim": 8}
_WAE = "Tolstikhin et al. 2018, Wasserstein Auto-Encoders"
_INFO_VAE = "Zhao et al. 2019, InfoVAE: Balancing Learning and Inference in Variational Autoencoders"
register(
    "swae",
    "vaezoo.models.distance_vaes:SWAE",
    data="binarized_mnist",
    summary="Sliced-Wasserstein AE: reconstruction + 10 * SW_2^2 over 50 random projections",
    paper="Kolouri et al. 2019, Sliced-Wasserstein Autoencoder: An Embarrassingly Simple Generative Model",
    lambda_=10.0,
    num_projections=50,
    p=2.0,
    **_MNIST_MLP_8,
)
register(
    "energy_vae",
    "vaezoo.models.distance_vaes:EnergyVAE",
    data="fashion_mnist",
    summary="Radon-Sobolev VAE: reconstruction + 10 * energy distance to the prior; continuous Bernoulli",
    paper="Turinici 2021, Radon-Sobolev Variational Auto-Encoders",
    lambda_=10.0,
    likelihood="continuous_bernoulli",
    **_MNIST_MLP_8,
)
register(
    "info_vae",
    "vaezoo.models.distance_vaes:InfoVAE",
    data="binarized_mnist",
    summary="MMD-VAE: reconstruction + KL + 999 * MMD (rbf kernel, C = 2d), alpha = 0, lambda = 1000",
    paper=_INFO_VAE,
    alpha=0.0,
    lambda_=1000.0,
    kernel="rbf",
    **_MNIST_MLP_8,
)
register(
    "info_vae_imq",
    "vaezoo.models.distance_vaes:InfoVAE",
    data="binarized_mnist",
    summary="MMD-VAE with the inverse multiquadratic kernel C / (C + ||z - z'||^2), C = 2d",
    paper=_INFO_VAE,
    alpha=0.0,
    lambda_=1000.0,
    kernel="imq",
    **_MNIST_MLP_8,
)
register(
    "wae_mmd",
    "vaezoo.models.distance_vaes:WAEMMD",
    data="binarized_mnist",
    summary="WAE-MMD: reconstruction + 100 * unbiased MMD, IMQ kernel summed over 7 scales of C = 2d",
    paper=_WAE,
    lambda_=100.0,
    kernel="imq",
    **_MNIST_MLP_8,
)
register(
    "wae_gan",
    "vaezoo.models.distance_vaes:WAEGAN",
    data="binarized_mnist",
    summary="WAE-GAN: reconstruction + 10 * -log D(z), latent discriminator 4x512 with its own Adam",
    paper=_WAE,
    lambda_=10.0,
    discriminator_units=(512, 512, 512, 512),
    **_MNIST_MLP_8,
)
register(
    "kernelized_vae",
    "vaezoo.models.distance_vaes:KernelizedVAE",
    data="binarized_mnist",
    summary="ELBO + 1000 * MMD(q(z), p(z)) in 500 random Fourier features (rbf, C = 2d)",
    paper="Louizos et al. 2016, The Variational Fair Autoencoder (its random-feature MMD penalty)",
    lambda_=1000.0,
    num_features=500,
    **_MNIST_MLP_8,
)

# Semi-supervised learning with deep generative models (Kingma et al. 2014), Fashion-MNIST.
_SSL = "Kingma et al. 2014, Semi-Supervised Learning with Deep Generative Models"
register(
    "m2",
    "vaezoo.models.semi_supervised:M2",
    data="fashion_mnist",
    summary="M2: q(y|x) classifier, q(z|x,y), p(x|y,z); labelled -L, unlabelled -U (y summed out), alpha 0.1 per example",
    paper=_SSL,
    num_classes=10,
    alpha=0.1,
    hidden_units=(500,),
    latent_dim=50,
    likelihood="continuous_bernoulli",
)
register(
    "m1_m2",
    "vaezoo.models.semi_supervised:M1M2",
    data="fashion_mnist",
    summary="M1+M2: M2 (Gaussian over z1) on the latent code of a frozen VAE M1 (600-600-50); pass a trained m1",
    paper=_SSL,
    m1={"hidden_units": (600, 600), "latent_dim": 50, "likelihood": "continuous_bernoulli"},
    num_classes=10,
    alpha=0.1,
    hidden_units=(500,),
    latent_dim=50,
)

# Binary latents trained by direct evolutionary optimization: no encoder, so it exports
# a decoder and a sampler only.
register(
    "deo_binary_vae",
    "vaezoo.models.deo:DEOBinaryVAE",
    data="binarized_mnist",
    summary="Binary latents (Bernoulli prior), no encoder: evolutionary E-step on stored truncated posteriors",
    paper="Drefs et al. 2023, Direct Evolutionary Optimization of Variational Autoencoders with Binary Latents",
    latent_dim=32,
    hidden_units=(512, 256),
    num_states=32,
    parents=4,
    children=4,
    generations=2,
)
