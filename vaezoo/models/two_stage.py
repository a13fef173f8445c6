"""The two-stage VAE of Dai and Wipf (2019): a VAE with a learned decoder variance, then a
second VAE that learns the distribution of the first one's latents and replaces its
N(0, I) prior when generating."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf, tfd
from vaezoo.models.vae import VAE

#: How ``fit_second_stage`` turns q(z|x) into training data for the second stage.
LATENTS = ("sample", "mean")


@keras.saving.register_keras_serializable(package="vaezoo")
class SecondStagePrior(keras.layers.Layer):
    """The prior of a :class:`TwoStageVAE`'s first stage, holding the second stage.

    ``vae`` is the second-stage VAE over latents z in R^d (d = ``latent_dim``): its
    latent u is d-dimensional too, and its likelihood p(z|u) = N(z; mu_z(u), gamma_z I)
    with gamma_z one learned scalar, as in the first stage. ``distribution()`` is
    N(0, I), the prior that the first stage is trained and evaluated with.
    ``from_noise(eps)`` takes standard-normal noise eps = (u, e) of ``noise_shape`` =
    (2 d,) and returns z = u until the second stage is trained (``fitted`` = 0), then
    the second stage's sample z = mu_z(u) + sqrt(gamma_z) e (as the paper's code
    generates): that is how ``sample`` and the exported sampler generate z.
    ``fitted`` is a non-trainable weight, saved with the model.

    Args:
        latent_dim: d, the size of the first stage's z.
        hidden_units: the second stage's encoder widths (reversed in its decoder).
        seed: seed of the second stage's noise.

    Example:
        >>> import numpy as np
        >>> prior = SecondStagePrior(2, hidden_units=(8,))
        >>> eps = np.ones((3, 4), "float32")
        >>> bool(np.all(prior.from_noise(eps) == eps[:, :2]))  # untrained second stage: z = u
        True
    """

    def __init__(self, latent_dim: int, hidden_units: Sequence[int] = (1024, 1024, 1024), seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.seed = int(seed)
        self.vae = VAE(
            data_shape=(self.latent_dim,),
            latent_dim=self.latent_dim,
            hidden_units=self.hidden_units,
            likelihood="gaussian",
            likelihood_options={"sigma": "shared"},
            seed=self.seed,
            name="second_stage",
        )
        self.fitted = self.add_weight(name="fitted", shape=(), initializer="zeros", trainable=False)
        self._stage: int | None = None

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape (without batch) of the noise that ``from_noise`` takes: (u, e)."""
        return (2 * self.latent_dim,)

    def distribution(self) -> tfd.Distribution:
        """The first stage's prior N(0, I)."""
        zeros = tf.zeros([self.latent_dim], self.compute_dtype)
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def from_noise(self, eps: tf.Tensor) -> tf.Tensor:
        """z for standard-normal noise ``eps`` = (u, e): mu_z(u) + sqrt(gamma_z) e once
        the second stage is trained, else u."""
        u, e = tf.split(tf.convert_to_tensor(eps), 2, axis=-1)
        if self._stage == 1:
            return u
        params = self.vae.decoder_params(u)
        second = params["loc"] + params["scale"] * e
        if self._stage == 2:
            return second
        return tf.where(self.fitted > 0.5, second, u)

    @contextlib.contextmanager
    def stage(self, stage: int) -> Iterator[None]:
        """Within this context (eager code), ``from_noise`` uses stage ``stage`` (1: z =
        u, 2: the second stage) whether or not the second stage is trained."""
        self._stage = stage
        try:
            yield
        finally:
            self._stage = None

    def call(self, eps: tf.Tensor) -> tf.Tensor:
        return self.from_noise(eps)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "hidden_units": list(self.hidden_units),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="vaezoo")
class TwoStageVAE(VAE):
    """Two-stage VAE: a VAE with a learned scalar decoder variance gamma, then a second
    VAE trained on its latents, whose samples replace N(0, I) when generating.

    Dai and Wipf, "Diagnosing and Enhancing VAE Models", ICLR 2019.

    Stage one is a VAE whose likelihood is N(x; mu(z), gamma I) with gamma one learned
    scalar (the ``gaussian`` head with ``sigma="shared"``, sigma = sqrt(gamma)), trained
    by ``fit`` on the ELBO:

        loss = -E_q(z|x)[log N(x; mu(z), gamma I)] + KL(q(z|x) || N(0, I)).

    The paper shows that as gamma -> 0 the model can recover the data manifold, but
    the aggregate posterior q(z) = E_x[q(z|x)] then differs from N(0, I), so decoding
    prior samples gives poor images. Stage two, ``fit_second_stage(x)``, trains a
    second VAE (``second_stage``, the same objective with its own learned gamma_z) on
    z ~ q(z|x) (or the posterior means); generation then draws u ~ N(0, I) and
    z ~ N(mu_z(u), gamma_z I) from the second stage and decodes z with the first:
    ``sample``, and the exported ``sampler`` (``eps`` = (u, e) -> z -> image; the
    default export parts, through :class:`SecondStagePrior`). ``sample(n, stage=1)``
    samples with the first stage's N(0, I) prior for comparison. The second stage is the
    model's ``prior`` layer, so the model's weights, ``.keras`` files and presets keep
    both stages; ``elbo`` and ``log_likelihood`` are the first stage's, under N(0, I).
    The metrics are those of :class:`vaezoo.models.VAE`.

    Args:
        second_stage_units: the second stage's encoder widths (reversed in its
            decoder); None uses ``hidden_units`` (the paper uses three dense layers of
            1024 units).
        likelihood: stage one's likelihood, by default the Gaussian with a shared sigma.
        likelihood_options: its options (default ``{"sigma": "shared"}``).
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE`.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import TwoStageVAE
        >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
        >>> model = TwoStageVAE(hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
        >>> sorted(model.fit_second_stage(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
        >>> model.second_stage_fitted, model.sample(3).shape
        (True, (3, 28, 28, 1))
    """

    metric_names = VAE.metric_names

    def __init__(
        self,
        second_stage_units: Sequence[int] | None = None,
        likelihood: str = "gaussian",
        likelihood_options: dict[str, Any] | None = None,
        prior: None = None,
        **kwargs: Any,
    ) -> None:
        if prior is not None:
            raise ValueError(f"TwoStageVAE's prior is its second stage; prior must be None, got {prior!r}")
        units = None if second_stage_units is None else tuple(second_stage_units)
        if units is not None and (not units or any(isinstance(u, bool) or int(u) != u or int(u) < 1 for u in units)):
            raise ValueError(
                f"second_stage_units must be None or one or more positive widths, got {second_stage_units!r}"
            )
        # Read by _make_prior, which BaseVAE.__init__ calls.
        self.second_stage_units = None if units is None else tuple(int(u) for u in units)
        if likelihood_options is None and likelihood == "gaussian":
            likelihood_options = {"sigma": "shared"}
        super().__init__(likelihood=likelihood, likelihood_options=likelihood_options, **kwargs)

    def _make_prior(self, prior):
        units = self.second_stage_units or self.hidden_units
        return SecondStagePrior(self.latent_dim, units, seed=self.seed + 1, name="prior", dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["prior"]  # rebuilt from second_stage_units
        units = self.second_stage_units
        return {**config, "second_stage_units": None if units is None else list(units)}

    # ------------------------------------------------------------------ stage one

    @property
    def second_stage(self) -> VAE:
        """The second-stage VAE over the first stage's latents."""
        return self.prior.vae

    def optimizer_variables(self) -> list:
        """The trainable variables of everything but the second stage: ``fit`` trains the
        first stage only (the second stage is left as it is)."""
        excluded = {id(v) for v in self.prior.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in excluded]

    # ------------------------------------------------------------------ stage two

    @property
    def second_stage_fitted(self) -> bool:
        """Whether ``fit_second_stage`` has run (generation then uses the second stage)."""
        return bool(self.prior.fitted.numpy() > 0.5)

    def first_stage_latents(self, x, latents: str = "sample", seed: int = 0, batch_size: int = 256) -> np.ndarray:
        """z ~ q(z|x) (``latents="sample"``, noise from ``seed``) or its mean (``"mean"``)
        for every example of ``x``, (N, latent_dim): the second stage's training data.

        Example:
            >>> import numpy as np, vaezoo
            >>> model = vaezoo.create_model("two_stage_vae", hidden_units=(8,), latent_dim=3)
            >>> model.first_stage_latents(np.zeros((4, 28, 28, 1)), latents="mean").shape
            (4, 3)
        """
        if latents not in LATENTS:
            raise ValueError(f"latents must be one of {', '.join(map(repr, LATENTS))}, got {latents!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        x = self.check_data(x)
        out = []
        for i, start in enumerate(range(0, len(x), batch_size)):
            q = self.encode(x[start : start + batch_size])
            z = q.mean() if latents == "mean" else q.sample(seed=tf.constant([seed, i], tf.int32))
            out.append(np.asarray(z, np.float32))
        return np.concatenate(out)

    def fit_second_stage(
        self,
        x,
        latents: str = "sample",
        seed: int = 0,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        **fit_kwargs: Any,
    ) -> keras.callbacks.History:
        """Train the second stage on the first stage's latents of ``x``.

        Args:
            x: the training images (the first stage's data).
            latents: ``"sample"`` (z ~ q(z|x), the paper) or ``"mean"``.
            seed: seed of the samples of q(z|x).
            optimizer: the second stage's optimizer; None keeps the one it was compiled
                with (``model.second_stage.compile(...)``) or, if it was never
                compiled, Adam with learning rate 1e-3.
            **fit_kwargs: arguments of ``keras.Model.fit`` (``epochs``, ``batch_size``...).

        Returns:
            The second stage's ``History``. Afterwards ``sample`` and the exported
            sampler generate through the second stage.
        """
        z = self.first_stage_latents(x, latents, seed)
        vae = self.second_stage
        if optimizer is not None or getattr(vae, "optimizer", None) is None:
            vae.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3))
        history = vae.fit(z, **fit_kwargs)
        self.prior.fitted.assign(1.0)
        return history

    def sample(self, n: int, seed: int = 0, mean: bool = True, stage: int | None = None) -> np.ndarray:
        """Draw ``n`` examples: u ~ N(0, I) through the second stage (once trained) and the
        first stage's decoder. ``stage=1`` decodes z ~ N(0, I) instead (the first stage's
        prior); ``stage=2`` needs a trained second stage.

        Example:
            >>> import vaezoo
            >>> model = vaezoo.create_model("two_stage_vae", hidden_units=(8,), latent_dim=2)
            >>> model.sample(4, stage=1).shape
            (4, 28, 28, 1)
        """
        if stage is None:
            return super().sample(n, seed, mean)
        if stage not in (1, 2):
            raise ValueError(f"stage must be None, 1 or 2, got {stage!r}")
        if stage == 2 and not self.second_stage_fitted:
            raise ValueError("stage=2: the second stage is not trained yet; call fit_second_stage first")
        with self.prior.stage(stage):
            return super().sample(n, seed, mean)
