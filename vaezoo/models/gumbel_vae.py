"""The categorical VAE of Jang, Gu and Poole (2017), trained through the Gumbel-softmax
(Concrete) relaxation with an annealed temperature."""

from __future__ import annotations

from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.distributions.discrete import UniformCategoricalPrior, at_least_two
from vaezoo.distributions.relaxed import GumbelSoftmaxPosterior, annealed_temperature
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.own_posterior import OwnPosterior
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class GumbelVAE(OwnPosterior, VAE):
    """VAE with N categorical latents of K classes, trained with Gumbel-softmax samples.

    Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017;
    Maddison, Mnih and Teh, "The Concrete Distribution", ICLR 2017.

    q(z|x) = prod_n Cat(z_n; pi_n(x)), p(z) uniform over the K^N one-hot codes. The
    reconstruction term is evaluated at a relaxed sample
    y = softmax((log pi + g) / tau), g ~ Gumbel(0, 1) (or, with ``hard``, at
    one_hot(argmax y) with y's gradient: the straight-through Gumbel estimator), and
    the KL is analytic on the categorical probabilities:

        ELBO(x) = E_y[log p(x|y)] - sum_n KL(Cat(pi_n) || Cat(1/K)),
        KL(Cat(pi_n) || Cat(1/K)) = sum_k pi_nk log pi_nk + log K.

    The temperature follows the paper's schedule tau = max(min_temperature,
    temperature * exp(-anneal_rate * t)), t the optimizer step rounded down to a
    multiple of ``anneal_interval``; before any training step (no optimizer) tau is
    ``temperature``. Metrics: ``reconstruction``, ``kl``, ``elbo``, ``loss`` = -elbo
    and ``temperature``.

    z is the N one-hot vectors flattened: ``model.latent_dim``, its width (the
    decoder's input), is N K, while the ``latent_dim`` argument is N, the number of
    categorical latents. ``call`` decodes the
    probabilities pi (the mean of z); the importance-sampled estimates draw hard one-hot
    z from q. Export: the encoder emits ``loc`` = pi and ``logits`` = log pi; the
    sampler maps noise of shape (N, K) to one-hot codes, class n = argmax_k eps[n, k]
    (uniform; :class:`~vaezoo.distributions.discrete.UniformCategoricalPrior`).

    Args:
        latent_dim: N, the number of categorical latents (the paper: 20 on MNIST).
        num_classes: K, the classes of each (the paper: 10).
        temperature: the initial temperature tau_0 > 0 (the paper: 1).
        min_temperature: the floor of the schedule, > 0 (the paper: 0.5).
        anneal_rate: r >= 0 in exp(-r t) (the paper: 1e-5 or 1e-4).
        anneal_interval: steps between temperature updates (the paper's N: 500 or 1000).
        hard: use the straight-through (hard) sample for the reconstruction.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but
            ``posterior`` and ``prior``.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import GumbelVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = GumbelVAE(latent_dim=3, num_classes=4, hidden_units=(16,), anneal_rate=0.1, anneal_interval=1)
        >>> model.compile(optimizer="adam")
        >>> history = model.fit(x, epochs=1, batch_size=32, verbose=0).history
        >>> sorted(history), model.latent_dim  # z: 3 one-hot vectors of 4
        (['elbo', 'kl', 'loss', 'reconstruction', 'temperature'], 12)
        >>> round(history["temperature"][0], 4)  # mean of tau(0) = 1 and tau(1) = exp(-0.1)
        0.9524
    """

    metric_names = VAE.metric_names + ("temperature",)

    def __init__(
        self,
        latent_dim: int = 20,
        num_classes: int = 10,
        temperature: float = 1.0,
        min_temperature: float = 0.5,
        anneal_rate: float = 3e-5,
        anneal_interval: int = 1000,
        hard: bool = False,
        **kwargs: Any,
    ) -> None:
        self.num_latents = positive_int("latent_dim", latent_dim)
        self.num_classes = at_least_two("num_classes", num_classes)
        for name, value in (("temperature", temperature), ("min_temperature", min_temperature)):
            if not non_negative(name, value) > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.initial_temperature = float(temperature)
        self.min_temperature = float(min_temperature)
        self.anneal_rate = non_negative("anneal_rate", anneal_rate)
        self.anneal_interval = positive_int("anneal_interval", anneal_interval)
        self.hard = bool(hard)
        super().__init__(latent_dim=self.num_latents * self.num_classes, **kwargs)

    def make_posterior(self) -> GumbelSoftmaxPosterior:
        return GumbelSoftmaxPosterior(self.latent_dim, self.num_classes, name="posterior", dtype="float32")

    def _make_prior(self, prior):
        if prior is None:
            prior = UniformCategoricalPrior(self.num_latents, self.num_classes, one_hot=True, name="prior", dtype="float32")
        prior = super()._make_prior(prior)
        if not isinstance(prior, UniformCategoricalPrior) or not prior.one_hot:
            raise ValueError(f"prior: {type(self).__name__} needs the uniform one-hot categorical prior")
        return prior

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.num_latents,
            "num_classes": self.num_classes,
            "temperature": self.initial_temperature,
            "min_temperature": self.min_temperature,
            "anneal_rate": self.anneal_rate,
            "anneal_interval": self.anneal_interval,
            "hard": self.hard,
        }

    def temperature(self) -> tf.Tensor:
        """tau at the optimizer's current step (``temperature`` before ``compile``)."""
        step = 0 if getattr(self, "optimizer", None) is None else self.optimizer.iterations
        return annealed_temperature(
            step, self.initial_temperature, self.min_temperature, self.anneal_rate, self.anneal_interval
        )

    def elbo_terms(self, x, training=False):
        h = tf.cast(self.encoder(x, training=training), tf.float32)
        params = self.posterior.params(h)
        y = self.posterior.relaxed_sample(params, self.temperature(), self._next_seed(), hard=self.hard)
        p_x = self.likelihood.distribution(self.decoder_params(y, training))
        reconstruction = -p_x.log_prob(self.likelihood.prepare_targets(x))
        return {"reconstruction": reconstruction, "kl": self.posterior.kl_to_uniform(params), "z": y}

    def objective(self, x, training=False):
        _, elbo = self.elbo_summary(x, training)
        return {"loss": -elbo["elbo"], **elbo, "temperature": self.temperature()}
