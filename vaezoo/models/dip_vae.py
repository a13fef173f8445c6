"""DIP-VAE I and II (Kumar et al. 2018): match the moments of the aggregate posterior
to those of the prior N(0, I) by penalising the distance of a covariance from I."""

from __future__ import annotations

from typing import Any

from vaezoo._tf import keras, tf, tfd
from vaezoo.losses import batch_covariance, dip_penalties, non_negative
from vaezoo.models.vae import VAE


class DIPVAE(VAE):
    """The objective both DIP-VAEs share (abstract; use :class:`DIPVAEI` or
    :class:`DIPVAEII`).

    Kumar, Sattigeri and Balakrishnan, "Variational Inference of Disentangled
    Latent Concepts from Unlabeled Observations", ICLR 2018.

        loss = reconstruction + KL(q(z|x) || p(z)) + dip_regulariser
        dip_regulariser = lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2

    where C is the batch estimate of a covariance of the aggregate posterior that
    the subclass names in ``covariance``. The metrics are ``reconstruction``, ``kl``,
    ``off_diagonal`` = sum_{i != j} C_ij^2, ``diagonal`` = sum_i (C_ii - 1)^2 (both
    unweighted), ``dip_regulariser`` and ``loss``.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import DIPVAEII
        >>> model = DIPVAEII(lambda_od=2.0, lambda_d=3.0, hidden_units=(8,), latent_dim=2)
        >>> terms = model.objective(np.zeros((16, 28, 28, 1), "float32"))
        >>> bool(np.isclose(terms["dip_regulariser"], 2 * terms["off_diagonal"] + 3 * terms["diagonal"]))
        True
    """

    metric_names = VAE.metric_names + ("dip_regulariser", "off_diagonal", "diagonal")

    def __init__(self, lambda_od: float = 10.0, lambda_d: float = 100.0, **kwargs: Any) -> None:
        lambda_od = non_negative("lambda_od", lambda_od)
        lambda_d = non_negative("lambda_d", lambda_d)
        super().__init__(**kwargs)
        self.lambda_od = lambda_od
        self.lambda_d = lambda_d

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lambda_od": self.lambda_od, "lambda_d": self.lambda_d}

    def covariance(self, q: tfd.Distribution) -> tf.Tensor:
        """The (latent_dim, latent_dim) covariance that the regulariser pulls towards I."""
        raise NotImplementedError

    def objective(self, x, training=False):
        terms, elbo = self.elbo_summary(x, training)
        off_diagonal, diagonal = dip_penalties(self.covariance(terms["q"]))
        regulariser = self.lambda_od * off_diagonal + self.lambda_d * diagonal
        return {
            "loss": -elbo["elbo"] + regulariser,
            **elbo,
            "dip_regulariser": regulariser,
            "off_diagonal": off_diagonal,
            "diagonal": diagonal,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class DIPVAEI(DIPVAE):
    """DIP-VAE-I: penalise the covariance of the posterior means, C = Cov_p(x)[mu(x)].

    Kumar, Sattigeri and Balakrishnan, "Variational Inference of Disentangled
    Latent Concepts from Unlabeled Observations", ICLR 2018 (eq. 6). See
    :class:`DIPVAE` for the objective; the paper sets lambda_d = 10 lambda_od.

    Args:
        lambda_od: weight of the off-diagonal penalty, >= 0.
        lambda_d: weight of the diagonal penalty, >= 0.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import DIPVAEI
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = DIPVAEI(lambda_od=10.0, lambda_d=100.0, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['diagonal', 'dip_regulariser', 'elbo', 'kl', 'loss', 'off_diagonal', 'reconstruction']
    """

    def covariance(self, q):
        return batch_covariance(q.mean())


@keras.saving.register_keras_serializable(package="vaezoo")
class DIPVAEII(DIPVAE):
    """DIP-VAE-II: penalise the covariance of the aggregate posterior itself,
    C = Cov_q(z)[z] = E_p(x)[Sigma(x)] + Cov_p(x)[mu(x)].

    Kumar, Sattigeri and Balakrishnan, "Variational Inference of Disentangled
    Latent Concepts from Unlabeled Observations", ICLR 2018 (eq. 7). See
    :class:`DIPVAE` for the objective; the paper sets lambda_d = lambda_od.

    Args:
        lambda_od: weight of the off-diagonal penalty, >= 0.
        lambda_d: weight of the diagonal penalty, >= 0.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import DIPVAEII
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = DIPVAEII(lambda_od=10.0, lambda_d=10.0, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['diagonal', 'dip_regulariser', 'elbo', 'kl', 'loss', 'off_diagonal', 'reconstruction']
    """

    def __init__(self, lambda_od: float = 10.0, lambda_d: float = 10.0, **kwargs: Any) -> None:
        super().__init__(lambda_od=lambda_od, lambda_d=lambda_d, **kwargs)

    def covariance(self, q):
        return tf.reduce_mean(q.covariance(), axis=0) + batch_covariance(q.mean())
