"""Model classes. Importing this package registers every class with Keras, so that
``keras.saving.load_model(path, safe_mode=True)`` finds them without ``custom_objects``.

Example:
    >>> from vaezoo.models import VAE
    >>> VAE(hidden_units=(8,), latent_dim=2).latent_dim
    2
"""

from vaezoo.models.base import BaseVAE
from vaezoo.models.beta_vae import BetaVAE, BetaVAECapacity
from vaezoo.models.dip_vae import DIPVAE, DIPVAEI, DIPVAEII
from vaezoo.models.factor_vae import FactorVAE
from vaezoo.models.tcvae import BetaTCVAE
from vaezoo.models.vae import VAE

__all__ = ["DIPVAE", "DIPVAEI", "DIPVAEII", "VAE", "BaseVAE", "BetaTCVAE", "BetaVAE", "BetaVAECapacity", "FactorVAE"]

# The statistical-distance family (SWAE, Radon-Sobolev, InfoVAE, WAE-MMD/GAN, kernelized VAE).
from vaezoo.models.distance_vaes import (
    SWAE,
    WAEGAN,
    WAEMMD,
    DistanceVAE,
    EnergyVAE,
    InfoVAE,
    KernelizedVAE,
)

__all__ += ["SWAE", "WAEGAN", "WAEMMD", "DistanceVAE", "EnergyVAE", "InfoVAE", "KernelizedVAE"]

# Mixture prior, two-stage and structured-residual VAEs.
from vaezoo.models.gmvae import GMVAE, ConditionalMixturePrior
from vaezoo.models.structured import StructuredResidualVAE
from vaezoo.models.two_stage import SecondStagePrior, TwoStageVAE

__all__ += ["GMVAE", "ConditionalMixturePrior", "SecondStagePrior", "StructuredResidualVAE", "TwoStageVAE"]

# Importance-weighted objectives (IWAE, MIWAE), mixture priors (VampPrior, MoG) and the two-layer HVAE.
from vaezoo.models.hvae import HVAE
from vaezoo.models.iwae import IWAE, MIWAE
from vaezoo.models.vamp import MoGPriorVAE, VampPriorVAE

__all__ += ["HVAE", "IWAE", "MIWAE", "MoGPriorVAE", "VampPriorVAE"]

# Conditional VAE and the VAE/GAN hybrids.
from vaezoo.models.conditional import ConditionalVAE
from vaezoo.models.vae_gan import CVAEGAN, VAEGAN

__all__ += ["CVAEGAN", "VAEGAN", "ConditionalVAE"]

# Flow posteriors (IAF, planar) and discrete latents (VQ-VAE, Gumbel-softmax).
from vaezoo.models.flow_vae import FlowVAE
from vaezoo.models.gumbel_vae import GumbelVAE
from vaezoo.models.vq_vae import VQVAE

__all__ += ["VQVAE", "FlowVAE", "GumbelVAE"]

# Semi-supervised M2 and M1+M2; the binary-latent VAE trained by evolutionary optimization.
from vaezoo.models.deo import BernoulliPrior, DEOBinaryVAE
from vaezoo.models.semi_supervised import M1M2, M2

__all__ += ["M1M2", "M2", "BernoulliPrior", "DEOBinaryVAE"]
