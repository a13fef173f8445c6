"""beta-TCVAE (Chen et al. 2018): the KL term split into index-code mutual information,
total correlation and dimension-wise KL, each with its own weight."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import ESTIMATORS, kl_decomposition, non_negative, positive_int
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class BetaTCVAE(VAE):
    """beta-TCVAE: penalise the total correlation of the aggregate posterior.

    Chen, Li, Grosse and Duvenaud, "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS 2018.

    With n the index of an example and q(z) = (1/N) sum_n q(z|n) the aggregate
    posterior of the N training examples, the KL term of the ELBO decomposes (eq. 2) as

        E_p(n)[KL(q(z|n) || p(z))] = I_q(z; n) + KL(q(z) || prod_j q(z_j))
                                     + sum_j KL(q(z_j) || p(z_j))

    into the index-code ``mutual_information``, the ``total_correlation`` and the
    ``dimension_wise_kl``, and the model minimises

        loss = reconstruction + alpha * MI + beta * TC + gamma * DWKL.

    q(z) and the marginals q(z_j) are estimated over each minibatch of M examples,
    in log space, by minibatch stratified sampling (``estimator="mss"``, the
    default) or minibatch weighted sampling (``"mws"``); see
    :func:`vaezoo.losses.log_importance_weights`. Both need ``dataset_size`` = N,
    the number of training examples (``fit`` warns when the array it gets is of
    another size). The metrics are ``reconstruction``, ``kl`` (analytic, for
    comparison with MI + TC + DWKL, which is its one-sample estimate), the three
    terms and ``loss``, nats per example, batch means. The prior must factorise.

    Args:
        alpha: weight of the index-code mutual information, >= 0.
        beta: weight of the total correlation, >= 0 (the paper uses 6 on dSprites).
        gamma: weight of the dimension-wise KL, >= 0.
        dataset_size: N, the number of training examples, >= 1.
        estimator: ``"mss"`` or ``"mws"``.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import BetaTCVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = BetaTCVAE(beta=6.0, dataset_size=64, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['dimension_wise_kl', 'elbo', 'kl', 'loss', 'mutual_information', 'reconstruction', 'total_correlation']
    """

    metric_names = VAE.metric_names + ("mutual_information", "total_correlation", "dimension_wise_kl")

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 6.0,
        gamma: float = 1.0,
        dataset_size: int = 50_000,
        estimator: str = "mss",
        **kwargs: Any,
    ) -> None:
        alpha, beta, gamma = (non_negative(k, v) for k, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)))
        dataset_size = positive_int("dataset_size", dataset_size)
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; known: {list(ESTIMATORS)}")
        super().__init__(**kwargs)
        if not isinstance(self.prior.distribution(), tfd.MultivariateNormalDiag):
            raise TypeError(
                f"beta-TCVAE's dimension-wise KL needs a prior that factorises over the dimensions of z "
                f"(a diagonal Normal), got {type(self.prior).__name__}"
            )
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.dataset_size = dataset_size
        self.estimator = estimator

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "dataset_size": self.dataset_size,
            "estimator": self.estimator,
        }

    def decomposition(self, q: tfd.Distribution, z: tf.Tensor) -> dict[str, tf.Tensor]:
        """Per-example MI, TC and DWKL of the batch's samples ``z`` ~ ``q``
        (see :func:`vaezoo.losses.kl_decomposition`)."""
        return kl_decomposition(q, z, self.prior.distribution(), self.dataset_size, self.estimator)

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        parts = {k: tf.reduce_mean(v) for k, v in self.decomposition(terms["q"], terms["z"]).items()}
        loss = (
            elbo["reconstruction"]
            + self.alpha * parts["mutual_information"]
            + self.beta * parts["total_correlation"]
            + self.gamma * parts["dimension_wise_kl"]
        )
        return {"loss": loss, **elbo, **parts}

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        if isinstance(x, np.ndarray) and 0 < len(x) != self.dataset_size:
            warnings.warn(
                f"{type(self).__name__} estimates q(z) for dataset_size={self.dataset_size} examples, "
                f"but fit got {len(x)}; set dataset_size to the size of the training set",
                stacklevel=2,
            )
        return super().fit(x, y, validation_data=validation_data, **kwargs)
