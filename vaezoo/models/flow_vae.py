"""VAEs with normalizing-flow posteriors: inverse autoregressive flow (Kingma et al.
2016) and planar flow (Rezende and Mohamed 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.distributions.flows import FLOWS, FlowPosterior
from vaezoo.losses import positive_int
from vaezoo.models.own_posterior import OwnPosterior
from vaezoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vaezoo")
class FlowVAE(OwnPosterior, VAE):
    """VAE whose posterior q(z_T|x) is a diagonal Normal q(z_0|x) transformed by a flow.

    Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling, "Improved Variational
    Inference with Inverse Autoregressive Flow", NeurIPS 2016 (``flow="iaf"``);
    Rezende and Mohamed, "Variational Inference with Normalizing Flows", ICML 2015
    (``flow="planar"``). See :mod:`vaezoo.distributions.flows` for the steps.

    z_0 = mu(x) + sigma(x) * eps, z_T = f_T(...f_1(z_0)), and

        log q(z_T|x) = log N(z_0; mu, sigma) - sum_t log|det df_t/dz_{t-1}|
        ELBO(x) = E_q[log p(x|z_T)] - KL,  KL ~= log q(z_T|x) - log p(z_T)

    The KL has no closed form: ``kl`` is this one-sample estimate at the same z_T as
    ``reconstruction``; ``loss`` = -ELBO. The importance-sampled estimates use the flow
    posterior too: each z_T comes with its log q from the same forward pass.

    ``call`` (and ``reconstruct``) decode f(mu), the flow at eps = 0. The export's
    encoder emits ``loc`` = f(mu), ``base_loc`` = mu, ``base_scale`` = sigma and the
    flow's per-example parameters (IAF: ``context``; planar: ``u_hat``, ``w``, ``b``);
    an extra ``posterior_sampler`` part maps (x, eps) to z_T = f(mu + sigma eps).

    Args:
        flow: ``"iaf"`` or ``"planar"``.
        num_flows: the number of flow steps (IAF: T, 2 in the paper's MNIST table;
            planar: K, 2 to 80 in the paper).
        flow_units: IAF only: widths of each MADE's hidden layers (the paper: 320).
        context_units: IAF only: size of the context h(x) the encoder emits.
        **kwargs: the arguments of :class:`vaezoo.models.base.BaseVAE` but ``posterior``.

    Example:
        >>> import numpy as np
        >>> from vaezoo.models import FlowVAE
        >>> x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = FlowVAE(flow="iaf", flow_units=(8,), context_units=4, hidden_units=(16,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
        ['elbo', 'kl', 'loss', 'reconstruction']
        >>> sorted(model.export_parts())
        ['decoder', 'encoder', 'posterior_sampler', 'sampler']
    """

    def __init__(
        self,
        flow: str = "iaf",
        num_flows: int = 2,
        flow_units: Sequence[int] = (320, 320),
        context_units: int = 64,
        **kwargs: Any,
    ) -> None:
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}; known: {sorted(FLOWS)}")
        units = tuple(int(u) for u in flow_units)
        if not units or min(units) < 1:
            raise ValueError(f"flow_units must be one or more positive widths, got {flow_units!r}")
        self.flow = flow
        self.num_flows = positive_int("num_flows", num_flows)
        self.flow_units = units
        self.context_units = positive_int("context_units", context_units)
        super().__init__(**kwargs)

    def make_posterior(self) -> FlowPosterior:
        options: dict[str, Any] = {"num_flows": self.num_flows}
        if self.flow == "iaf":
            options.update(hidden_units=self.flow_units, context_units=self.context_units, activation=self.activation)
        return FLOWS[self.flow](self.latent_dim, name="posterior", dtype="float32", **options)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "flow": self.flow,
            "num_flows": self.num_flows,
            "flow_units": list(self.flow_units),
            "context_units": self.context_units,
        }

    def elbo_terms(self, x, training=False):
        q = self.encode(x, training)
        z, log_q = q.experimental_sample_and_log_prob(seed=self._next_seed())
        p_x = self.likelihood.distribution(self.decoder_params(z, training))
        reconstruction = -p_x.log_prob(self.likelihood.prepare_targets(x))
        kl = log_q - self.prior.distribution().log_prob(z)
        return {"reconstruction": reconstruction, "kl": kl, "z": z, "q": q}

    def _log_weights(self, x, seed, num_samples):
        """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x), z_s ~ q(z_T|x) drawn with
        its log-density through the flow; shape (S, B)."""
        z, log_q = self.encode(x).experimental_sample_and_log_prob(num_samples, seed=seed)
        batch = tf.shape(x)[0]
        params = self.decoder_params(tf.reshape(z, [-1, self.latent_dim]))
        targets = self.likelihood.prepare_targets(x)
        tiled = tf.tile(targets, [num_samples] + [1] * len(self.data_shape))  # index s * B + b, as z
        log_px = tf.reshape(self.likelihood.distribution(params).log_prob(tiled), [num_samples, batch])
        return log_px + self.prior.distribution().log_prob(z) - log_q

    def export_parts(self) -> dict[str, Any]:
        """The default parts plus ``posterior_sampler``: (``x``, ``eps``) -> ``z`` =
        f(mu + sigma eps), a sample of q(z_T|x) for standard-normal ``eps``."""
        from vaezoo.export.manifest import TensorInfo
        from vaezoo.export.parts import ExportPart, default_parts

        parts = default_parts(self)
        encoder = parts["encoder"]
        x_info = encoder.inputs[0]
        eps_info = TensorInfo("eps", (None, self.latent_dim), "float32")

        def posterior_sampler(x, eps):
            params = encoder.fn(x=x)
            z_0 = params["base_loc"] + params["base_scale"] * eps
            return {"z": self.posterior.bijector(params).forward(z_0)}

        def feeds(x):
            noise = parts["sampler"].feeds(x)["eps"]
            return {**encoder.feeds(x), "eps": noise}

        parts["posterior_sampler"] = ExportPart("posterior_sampler", (x_info, eps_info), posterior_sampler, feeds)
        return parts
