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
