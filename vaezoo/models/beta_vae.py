"""beta-VAE (Higgins et al. 2017) and its capacity-annealed objective (Burgess et al. 2018)."""

from __future__ import annotations

from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.losses import non_negative, positive_int
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class BetaVAE(VAE):
    """beta-VAE: the ELBO with its KL term weighted by beta.

    Higgins, Matthey, Pal, Burgess, Glorot, Botvinick, Mohamed and Lerchner,
    "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
    Framework", ICLR 2017.

        loss = reconstruction + beta * KL(q(z|x) || p(z))

    beta > 1 presses the posterior towards the factorised prior, trading
    reconstruction for disentangled latents; beta = 1 is the VAE. The metrics are
    ``reconstruction`` = -log p(x|z) (one sample), ``kl`` (analytic) and ``loss``,
    nats per example, batch means.

    Args:
        beta: weight of the KL term, >= 0 (the paper uses 4 on dSprites).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import BetaVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = BetaVAE(beta=4.0, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
    """

    metric_names = VAE.metric_names

    def __init__(self, beta: float = 4.0, **kwargs: Any) -> None:
        beta = non_negative("beta", beta)
        super().__init__(**kwargs)
        self.beta = beta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}

    def objective(self, x, training=False):
        _, elbo = self.elbo_summary(x, training)
        return {"loss": elbo["reconstruction"] + self.beta * elbo["kl"], **elbo}


@keras.saving.register_keras_serializable(package="vaezoo")
class BetaVAECapacity(VAE):
    """beta-VAE with a controlled, linearly increasing KL capacity.

    Burgess, Higgins, Pal, Matthey, Watters, Desjardins and Lerchner,
    "Understanding disentangling in beta-VAE", NIPS 2017 Workshop on Learning
    Disentangled Representations (arXiv:1804.03599, 2018).

        loss = reconstruction + gamma * |KL(q(z|x) || p(z)) - C(t)|
        C(t) = C_max * min(1, t / capacity_steps)

    where t is the optimizer's iteration count, so the target grows from 0 nats to
    ``c_max`` over the first ``capacity_steps`` updates and then stays there; the
    latents take on information one factor at a time. The metrics are
    ``reconstruction``, ``kl``, ``capacity`` = C(t) and ``loss``. Outside training
    (no optimizer yet) C is C(0) = 0.

    Args:
        gamma: weight of the capacity term, >= 0 (the paper uses 1000 on dSprites).
        c_max: final capacity C_max in nats, >= 0 (the paper uses 25 on dSprites).
        capacity_steps: optimizer steps over which C grows from 0 to ``c_max``
            (the paper uses 100,000), >= 1.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import BetaVAECapacity
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = BetaVAECapacity(c_max=10.0, capacity_steps=4, hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> history = model.fit(x, epochs=2, batch_size=32, verbose=0).history
        >>> history["capacity"]  # the mean of C(t) over the steps t = 0, 1, then 2, 3
        [1.25, 6.25]
    """

    metric_names = VAE.metric_names + ("capacity",)

    def __init__(
        self, gamma: float = 1000.0, c_max: float = 25.0, capacity_steps: int = 100_000, **kwargs: Any
    ) -> None:
        gamma = non_negative("gamma", gamma)
        c_max = non_negative("c_max", c_max)
        capacity_steps = positive_int("capacity_steps", capacity_steps)
        super().__init__(**kwargs)
        self.gamma = gamma
        self.c_max = c_max
        self.capacity_steps = capacity_steps

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "c_max": self.c_max,
            "capacity_steps": self.capacity_steps,
        }

    def capacity(self) -> tf.Tensor:
        """C(t) at the optimizer's current iteration t (0 before ``compile``)."""
        if getattr(self, "optimizer", None) is None:
            return tf.constant(0.0)
        progress = tf.cast(self.optimizer.iterations, tf.float32) / float(self.capacity_steps)
        return self.c_max * tf.minimum(progress, 1.0)

    def objective(self, x, training=False):
        _, elbo = self.elbo_summary(x, training)
        capacity = self.capacity()
        return {"loss": elbo["reconstruction"] + self.gamma * tf.abs(elbo["kl"] - capacity), **elbo, "capacity": capacity}
