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
    "likelihood_head",
    "posterior_head",
]
