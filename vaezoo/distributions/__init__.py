"""Keras layers that turn network outputs into TFP distributions (a replacement for
``tfp.layers``, which does not work with Keras 3).

Each head separates two steps so that exported graphs can stop at plain tensors:
``params(h)`` maps the network output to named parameter tensors, and
``distribution(params)`` builds the ``tfd`` distribution. Calling the layer does both.

Example:
    >>> import numpy as np
    >>> from vaezoo.distributions import DiagonalNormal
    >>> head = DiagonalNormal(latent_dim=2)
    >>> q = head(np.zeros((3, head.num_params), "float32"))
    >>> tuple(q.sample(seed=(1, 2)).shape)
    (3, 2)
"""

from vaezoo.distributions.heads import (
    LIKELIHOODS,
    POSTERIORS,
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    DiagonalNormal,
    DistributionHead,
    FullCovarianceNormal,
    Gaussian,
    LikelihoodHead,
    PosteriorHead,
    likelihood_head,
    posterior_head,
)
from vaezoo.distributions.priors import StandardNormalPrior
from vaezoo.distributions.structured import StructuredGaussian

__all__ = [
    "LIKELIHOODS",
    "POSTERIORS",
    "Bernoulli",
    "Categorical",
    "ContinuousBernoulli",
    "DiagonalNormal",
    "DistributionHead",
    "FullCovarianceNormal",
    "Gaussian",
    "LikelihoodHead",
    "PosteriorHead",
    "StandardNormalPrior",
    "StructuredGaussian",
    "likelihood_head",
    "posterior_head",
]

# Mixture priors (VampPrior, mixture of Gaussians).
from vaezoo.distributions.mixture_priors import MixtureOfGaussiansPrior, VampPrior

__all__ += ["MixtureOfGaussiansPrior", "VampPrior"]

# Flow posteriors (IAF, planar) and discrete latents (vector quantiser, Gumbel-softmax).
from vaezoo.distributions.discrete import UniformCategoricalPrior, VectorQuantizer
from vaezoo.distributions.flows import MADE, IAFPosterior, PlanarPosterior
from vaezoo.distributions.relaxed import GumbelSoftmaxPosterior

__all__ += ["MADE", "GumbelSoftmaxPosterior", "IAFPosterior", "PlanarPosterior", "UniformCategoricalPrior", "VectorQuantizer"]
