"""VAEs with learnable mixture priors: the VampPrior of Tomczak and Welling (2018) and a
mixture of Gaussians. The prior's KL term has no closed form; it is the sampled
log q(z|x) - log p(z), as in the paper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf, tfd
from vaezoo.distributions.mixture_priors import MixtureOfGaussiansPrior, VampPrior
from vaezoo.losses import positive_int
from vaezoo.models.base import _ESTIMATE_BUDGET
from vaezoo.models.iwae import IWAE


class MixturePriorVAE(IWAE):
    """Base of the VAEs whose prior is a learnable K-component mixture that the model
    builds itself (``_make_prior``) from ``num_components``; ``prior`` cannot be given.

    The objective is the importance-weighted bound of :class:`vaezoo.models.IWAE` with
    ``num_samples`` = 1 by default, which is the ELBO with the sampled KL
    log q(z|x) - log p(z) that the VampPrior paper trains.
    """

    def __init__(self, num_components: int = 500, num_samples: int = 1, **kwargs: Any) -> None:
        if kwargs.pop("prior", None) is not None:
            raise ValueError(f"{type(self).__name__} builds its own prior from num_components; do not pass prior")
        self.num_components = positive_int("num_components", num_components)  # read by _make_prior
        super().__init__(num_samples=num_samples, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["prior"]  # rebuilt from num_components and the options below
        return {**config, "num_components": self.num_components}

    def _chunk_size(self, batch_size: int) -> int:
        # log p(z) compares each sample with every component: (samples, batch, K, latent) terms.
        mixture = _ESTIMATE_BUDGET // (batch_size * self.num_components * self.latent_dim)
        return max(1, min(super()._chunk_size(batch_size), mixture))


@keras.saving.register_keras_serializable(package="vaezoo")
class MoGPriorVAE(MixturePriorVAE):
    """VAE with a learnable mixture-of-Gaussians prior.

    The baseline prior of Tomczak and Welling, "VAE with a VampPrior", AISTATS 2018:
    p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)) with the means,
    scales and weights learned with the encoder and decoder
    (:class:`vaezoo.distributions.MixtureOfGaussiansPrior`).

        loss = -L_k,  L_1 = ELBO = E_q[log p(x|z)] - E_q[log q(z|x) - log p(z)]

    The metrics are those of :class:`vaezoo.models.IWAE`; with the default
    ``num_samples`` = 1, ``iwae_bound`` = ``elbo`` and ``kl`` is the one-sample
    estimate of KL(q(z|x) || p(z)).

    Args:
        num_components: K, Gaussians in the prior (the paper compares with K = 500).
        prior_scale_floor: smallest standard deviation of a component, > 0.
        num_samples: importance samples of the bound (1: the ELBO).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but ``prior``.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import MoGPriorVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = MoGPriorVAE(num_components=3, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'iwae_bound', 'kl', 'loss', 'reconstruction']
        >>> model.prior.noise_shape  # z's noise, then the component selector
        (3,)
    """

    def __init__(self, num_components: int = 500, prior_scale_floor: float = 1e-3, **kwargs: Any) -> None:
        self.prior_scale_floor = prior_scale_floor  # read by _make_prior, which checks it
        super().__init__(num_components=num_components, **kwargs)

    def _make_prior(self, prior):
        return MixtureOfGaussiansPrior(
            self.latent_dim, self.num_components, scale_floor=self.prior_scale_floor, name="prior", dtype="float32"
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "prior_scale_floor": self.prior.scale_floor}


@keras.saving.register_keras_serializable(package="vaezoo")
class VampPriorVAE(MixturePriorVAE):
    """VAE with the VampPrior, a mixture of the posterior at K learned pseudo-inputs.

    Tomczak and Welling, "VAE with a VampPrior", AISTATS 2018.

        p_lambda(z) = (1/K) sum_k q(z | u_k)

        loss = -L_k,  L_1 = E_q[log p(x|z)] - E_q[log q(z|x) - log p_lambda(z)]

    The pseudo-inputs u_k are data-shaped weights of the prior
    (:class:`vaezoo.distributions.VampPrior`), passed through this model's encoder, so
    the prior is learned with the encoder, the decoder and them; the KL term is the
    one-sample estimate, as in the paper. Sampling picks a pseudo-input, encodes it
    and draws from its posterior. The metrics are those of :class:`vaezoo.models.IWAE`
    (with ``num_samples`` = 1, ``iwae_bound`` = ``elbo``).

    Args:
        num_components: K, pseudo-inputs (the paper uses 500 for MNIST).
        pseudo_input_mean: mean of the initial pseudo-inputs (the paper: 0.05).
        pseudo_input_stddev: standard deviation of the initial pseudo-inputs (0.01).
        pseudo_input_range: (lo, hi) that the pseudo-inputs are clipped to (the
            paper's hard-tanh to the pixel range [0, 1]), or None.
        num_samples: importance samples of the bound (1: the ELBO).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but ``prior``.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import VampPriorVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = VampPriorVAE(num_components=5, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'iwae_bound', 'kl', 'loss', 'reconstruction']
        >>> tuple(model.prior.pseudo_inputs.shape)
        (5, 28, 28, 1)
    """

    def __init__(
        self,
        num_components: int = 500,
        pseudo_input_mean: float = 0.05,
        pseudo_input_stddev: float = 0.01,
        pseudo_input_range: Sequence[float] | None = (0.0, 1.0),
        **kwargs: Any,
    ) -> None:
        self._pseudo_input_options = {  # read by _make_prior; VampPrior checks them
            "pseudo_input_mean": pseudo_input_mean,
            "pseudo_input_stddev": pseudo_input_stddev,
            "pseudo_input_range": pseudo_input_range,
        }
        super().__init__(num_components=num_components, **kwargs)
        self.vamp_prior.bind(self.pseudo_input_posterior)

    def _new_vamp_prior(self, latent_dim: int, name: str = "prior") -> VampPrior:
        return VampPrior(
            latent_dim, self.data_shape, self.num_components, **self._pseudo_input_options, name=name, dtype="float32"
        )

    def _make_prior(self, prior):
        return self._new_vamp_prior(self.latent_dim)

    @property
    def vamp_prior(self) -> VampPrior:
        """The VampPrior layer (the whole prior here)."""
        return self.prior

    def pseudo_input_posterior(self, u: tf.Tensor) -> tfd.Distribution:
        """q(z|u) for a batch of pseudo-inputs: the VampPrior's components."""
        return self.encode(u)

    def get_config(self) -> dict[str, Any]:
        vamp = self.vamp_prior.get_config()
        return {**super().get_config(), **{key: vamp[key] for key in self._pseudo_input_options}}
