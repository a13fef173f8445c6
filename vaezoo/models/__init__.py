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

__all__ = ["BaseVAE", "BetaTCVAE", "BetaVAE", "BetaVAECapacity", "DIPVAE", "DIPVAEI", "DIPVAEII", "FactorVAE", "VAE"]

# The statistical-distance family (SWAE, Radon-Sobolev, InfoVAE, WAE-MMD/GAN, kernelized VAE).
from vaezoo.models.distance_vaes import (  # noqa: E402
    SWAE,
    WAEGAN,
    WAEMMD,
    DistanceVAE,
    EnergyVAE,
    InfoVAE,
    KernelizedVAE,
)

__all__ += ["DistanceVAE", "EnergyVAE", "InfoVAE", "KernelizedVAE", "SWAE", "WAEGAN", "WAEMMD"]

# Mixture prior, two-stage and structured-residual VAEs.
from vaezoo.models.gmvae import GMVAE, ConditionalMixturePrior  # noqa: E402
from vaezoo.models.structured import StructuredResidualVAE  # noqa: E402
from vaezoo.models.two_stage import SecondStagePrior, TwoStageVAE  # noqa: E402

__all__ += ["ConditionalMixturePrior", "GMVAE", "SecondStagePrior", "StructuredResidualVAE", "TwoStageVAE"]

# Importance-weighted objectives (IWAE, MIWAE), mixture priors (VampPrior, MoG) and the two-layer HVAE.
from vaezoo.models.hvae import HVAE  # noqa: E402
from vaezoo.models.iwae import IWAE, MIWAE  # noqa: E402
from vaezoo.models.vamp import MoGPriorVAE, VampPriorVAE  # noqa: E402

__all__ += ["HVAE", "IWAE", "MIWAE", "MoGPriorVAE", "VampPriorVAE"]

# Conditional VAE and the VAE/GAN hybrids.
from vaezoo.models.conditional import ConditionalVAE  # noqa: E402
from vaezoo.models.vae_gan import CVAEGAN, VAEGAN  # noqa: E402

__all__ += ["CVAEGAN", "ConditionalVAE", "VAEGAN"]

# Flow posteriors (IAF, planar) and discrete latents (VQ-VAE, Gumbel-softmax).
from vaezoo.models.flow_vae import FlowVAE  # noqa: E402
from vaezoo.models.gumbel_vae import GumbelVAE  # noqa: E402
from vaezoo.models.vq_vae import VQVAE  # noqa: E402

__all__ += ["FlowVAE", "GumbelVAE", "VQVAE"]

# Semi-supervised M2 and M1+M2; the binary-latent VAE trained by evolutionary optimization.
from vaezoo.models.deo import BernoulliPrior, DEOBinaryVAE  # noqa: E402
from vaezoo.models.semi_supervised import M1M2, M2  # noqa: E402

__all__ += ["BernoulliPrior", "DEOBinaryVAE", "M1M2", "M2"]
