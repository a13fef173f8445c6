"""VQ-VAE (van den Oord, Vinyals and Kavukcuoglu 2017): discrete latents by
nearest-neighbour lookup in a learned codebook, trained with the straight-through
gradient."""

from __future__ import annotations

import math
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.distributions.discrete import (
    UniformCategoricalPrior,
    VectorQuantizer,
    at_least_two,
)
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.own_posterior import OwnPosterior
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class VQVAE(OwnPosterior, VAE):
    """Vector-quantised variational autoencoder.

    van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation Learning",
    NeurIPS 2017.

    The encoder emits z_e(x), ``latent_dim`` = N vectors of size D; each is replaced by
    its nearest codebook embedding, z_q(x) = e_k, k = argmin_j ||z_e(x) - e_j||^2
    (:class:`~vaezoo.distributions.discrete.VectorQuantizer`), and the decoder
    reconstructs x from z_q. The paper's loss (equation 3):

        loss = reconstruction + ||sg[z_e(x)] - e||^2 + beta ||z_e(x) - sg[e]||^2

    with ``reconstruction`` = -log p(x|z_q(x)), the ``codebook_loss`` (the VQ term,
    which moves the embeddings to the encoder outputs) and the ``commitment_loss``
    (which keeps the encoder near its codes), squared norms summed over the N vectors.
    The decoder's input is z_e + sg[z_q - z_e]: the value z_q, the gradient copied
    straight through to the encoder.

    The prior is uniform over the K codes and the posterior one-hot, so KL = N log K,
    a constant: ``kl`` reports it and ``elbo`` = -(reconstruction + kl). ``perplexity``
    = exp(H(code usage in the batch)), between 1 (one code used) and K.

    The latent z of the model is the N code indices (float32); ``decoder_params(z)``
    embeds them. Export: the encoder emits ``loc`` (the code indices) and ``z_q``; the
    decoder takes code indices ``z`` (rounded and clipped to 0..K-1); the sampler takes
    noise ``eps`` of shape (N, K) and draws code n as argmax_k eps[n, k], uniform over
    the K codes (:class:`~vaezoo.distributions.discrete.UniformCategoricalPrior`).
    Since q is deterministic, every importance-weighted bound equals the ELBO
    (``deterministic_posterior``).

    The likelihood sets the balance between the reconstruction's pull on z_e (through
    the straight-through gradient) and the commitment loss. The registry's ``vq_vae``
    uses squared error (a Gaussian likelihood with sigma = 1): with a
    sharper likelihood (a small sigma, the continuous Bernoulli) z_e outruns the
    codebook, which Adam moves by about one learning rate per step, and the codebook
    loss spikes early in training.

    Args:
        num_embeddings: K, the codebook size.
        embedding_dim: D, the size of each code vector.
        beta: weight of the commitment loss, >= 0 (the paper: 0.25).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but
            ``posterior`` and ``prior``; ``latent_dim`` is N.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import VQVAE
        >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
        >>> model = VQVAE(num_embeddings=16, embedding_dim=4, latent_dim=3, hidden_units=(16,), likelihood="gaussian")
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)  # doctest: +NORMALIZE_WHITESPACE
        ['codebook_loss', 'commitment_loss', 'elbo', 'kl', 'loss', 'perplexity', 'reconstruction']
        >>> model.encode(x[:2]).mean().shape  # the code indices
        TensorShape([2, 3])
    """

    metric_names = VAE.metric_names + ("codebook_loss", "commitment_loss", "perplexity")
    #: q(z|x) is a point mass: every k-sample importance-weighted bound is the ELBO.
    deterministic_posterior = True

    def __init__(self, num_embeddings: int = 512, embedding_dim: int = 64, beta: float = 0.25, **kwargs: Any) -> None:
        self.num_embeddings = at_least_two("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        self.beta = non_negative("beta", beta)
        super().__init__(**kwargs)

    def make_posterior(self) -> VectorQuantizer:
        return VectorQuantizer(self.latent_dim, self.num_embeddings, self.embedding_dim, name="posterior", dtype="float32")

    def _make_prior(self, prior):
        if prior is None:
            prior = UniformCategoricalPrior(self.latent_dim, self.num_embeddings, one_hot=False, name="prior", dtype="float32")
        prior = super()._make_prior(prior)
        if not isinstance(prior, UniformCategoricalPrior) or prior.one_hot or prior.num_classes != self.num_embeddings:
            raise ValueError(f"prior: {type(self).__name__} needs the uniform prior over its {self.num_embeddings} codes")
        return prior

    def decoder_input_units(self) -> int:
        return self.latent_dim * self.embedding_dim

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "beta": self.beta,
        }

    def decoder_params(self, z, training=False):
        """The likelihood's parameters for code indices ``z`` (batch, N)."""
        return self.decoder_params_from_embeddings(self.posterior.embed(z), training)

    def decoder_params_from_embeddings(self, z_q: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """The likelihood's parameters for flattened embeddings ``z_q`` (batch, N D)."""
        return super().decoder_params(z_q, training)

    def elbo_terms(self, x, training=False):
        h = tf.cast(self.encoder(x, training=training), tf.float32)
        z_e, z_q, codes = self.posterior.nearest(h)
        straight_through = z_e + tf.stop_gradient(z_q - z_e)
        params = self.decoder_params_from_embeddings(tf.reshape(straight_through, [-1, self.decoder_input_units()]), training)
        reconstruction = -self.likelihood.distribution(params).log_prob(self.likelihood.prepare_targets(x))
        kl = tf.fill(tf.shape(reconstruction), self.latent_dim * math.log(self.num_embeddings))
        return {
            "reconstruction": reconstruction,
            "kl": kl,
            "codebook_loss": tf.reduce_sum(tf.square(tf.stop_gradient(z_e) - z_q), axis=[1, 2]),
            "commitment_loss": tf.reduce_sum(tf.square(z_e - tf.stop_gradient(z_q)), axis=[1, 2]),
            "codes": codes,
        }

    def perplexity(self, codes: tf.Tensor) -> tf.Tensor:
        """exp(entropy) of the codes' frequencies in ``codes`` (any shape)."""
        usage = tf.reduce_mean(tf.reshape(tf.one_hot(codes, self.num_embeddings), [-1, self.num_embeddings]), axis=0)
        return tf.exp(-tf.reduce_sum(tf.math.xlogy(usage, usage)))

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        codebook = tf.reduce_mean(terms["codebook_loss"])
        commitment = tf.reduce_mean(terms["commitment_loss"])
        return {
            "loss": elbo["reconstruction"] + codebook + self.beta * commitment,
            **elbo,
            "codebook_loss": codebook,
            "commitment_loss": commitment,
            "perplexity": self.perplexity(terms["codes"]),
        }
