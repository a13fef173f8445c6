"""The variational autoencoder of Kingma and Welling (2014) and Rezende et al. (2014)."""

from __future__ import annotations

from vaezoo._tf import keras, tf
from vaezoo.models.base import BaseVAE


@keras.saving.register_keras_serializable(package="vaezoo")
class VAE(BaseVAE):
    """Variational autoencoder.

    Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014;
    Rezende, Mohamed and Wierstra, "Stochastic Backpropagation and Approximate
    Inference in Deep Generative Models", ICML 2014.

    Maximises the evidence lower bound with the reparameterisation trick:

        ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))

    The metrics are ``reconstruction`` = -E_q[log p(x|z)] (one sample), ``kl`` and
    ``elbo`` (nats per example, batch means); ``loss`` = -ELBO.

    Example:
        >>> import numpy as np, vaezoo
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = vaezoo.create_model("vae", hidden_units=(32,), latent_dim=4)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl")

    def elbo_terms(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Per-example ``reconstruction`` = -log p(x|z), z ~ q(z|x) reparameterised,
        and ``kl`` = KL(q(z|x) || p(z)); also returns ``z`` and ``q``."""
        q = self.encode(x, training)
        z = q.sample(seed=self._next_seed())
        p_x = self.likelihood.distribution(self.decoder_params(z, training))
        reconstruction = -p_x.log_prob(self.likelihood.prepare_targets(x))
        return {"reconstruction": reconstruction, "kl": self.kl_divergence(q, z), "z": z, "q": q}

    def elbo_summary(self, x: tf.Tensor, training: bool = False) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """``elbo_terms`` and their batch means: ``reconstruction``, ``kl`` and
        ``elbo`` = -(reconstruction + kl), which every variant reports whatever it minimises."""
        terms = self.elbo_terms(x, training)
        reconstruction = tf.reduce_mean(terms["reconstruction"])
        kl = tf.reduce_mean(terms["kl"])
        return terms, {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}

    def objective(self, x, training=False):
        _, elbo = self.elbo_summary(x, training)
        return {"loss": -elbo["elbo"], **elbo}
