"""A Gaussian likelihood with correlated residuals: the covariance is a diagonal plus a
low-rank term, predicted by the decoder for every z (Dorta et al. 2018)."""

from __future__ import annotations

import math
from typing import Any

from vaezoo._tf import keras, tf, tfb, tfd
from vaezoo.distributions.heads import LikelihoodHead


@keras.saving.register_keras_serializable(package="vaezoo")
class StructuredGaussian(LikelihoodHead):
    """p(x|z) = N(x; mu(z), Sigma(z)) over the whole image, with the residual covariance

        Sigma(z) = S (I + V V^T) S = S^2 + (S V)(S V)^T,   S = diag(scale(z)),

    a diagonal plus a rank-``rank`` term, so that the residuals x - mu of neighbouring
    pixels (edges, textures) can be correlated. The decoder predicts, per output, the
    mean ``loc``, the ``scale`` (softplus + ``scale_floor``) and ``rank`` entries of the
    whitened factor ``factor`` = V (each bounded to (-c, c) by c tanh(raw / c), c =
    ``factor_bound``).

    Dorta, Vicente, Agapito, Campbell and Simpson, "Structured Uncertainty Prediction
    Networks", CVPR 2018, and "Training VAEs Under Structured Residuals",
    arXiv:1804.01050, 2018, predict a sparse Cholesky factor of the precision; this head
    uses the low-rank-plus-diagonal covariance instead (the papers' other option for
    a covariance that is cheap to evaluate). log p costs O(D rank^2): the Woodbury
    identity and the determinant lemma act on the rank x rank capacitance I + V^T V,
    whose eigenvalues lie in [1, 1 + D rank c^2] whatever the inputs (the whitened
    parameterisation keeps it well conditioned however small the scales get).
    ``rank=0`` is the diagonal Gaussian with a predicted scale per output.

    Args:
        data_shape: shape of one example.
        rank: rank of the correlated part, >= 0.
        scale_floor: added to every softplus scale, > 0.
        factor_bound: c, the bound on the entries of V, > 0.

    Example:
        >>> import numpy as np
        >>> from scipy.stats import multivariate_normal
        >>> head = StructuredGaussian((2, 2, 1), rank=1)
        >>> head.network_output_shape  # loc, scale and one factor entry per pixel
        (2, 2, 3)
        >>> params = head.params(np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype("float32"))
        >>> s, v = params["scale"].numpy().reshape(4), params["factor"].numpy().reshape(4, 1)
        >>> cov = np.diag(s) @ (np.eye(4) + v @ v.T) @ np.diag(s)
        >>> x = np.full((1, 2, 2, 1), 0.5, "float32")
        >>> expected = multivariate_normal(params["loc"].numpy().reshape(4), cov).logpdf(x.reshape(4))
        >>> bool(np.isclose(head.distribution(params).log_prob(x)[0], expected, rtol=1e-5))
        True
    """

    def __init__(
        self, data_shape, rank: int = 8, scale_floor: float = 1e-3, factor_bound: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(data_shape, **kwargs)
        if isinstance(rank, bool) or int(rank) != rank or int(rank) < 0:
            raise ValueError(f"rank must be an integer >= 0, got {rank!r}")
        if not (isinstance(scale_floor, (int, float)) and math.isfinite(scale_floor) and scale_floor > 0):
            raise ValueError(f"scale_floor must be a finite number > 0, got {scale_floor!r}")
        if not (isinstance(factor_bound, (int, float)) and math.isfinite(factor_bound) and factor_bound > 0):
            raise ValueError(f"factor_bound must be a finite number > 0, got {factor_bound!r}")
        self.rank = int(rank)
        self.scale_floor = float(scale_floor)
        self.factor_bound = float(factor_bound)
        self.params_per_output = 2 + self.rank
        self.param_names = ("loc", "scale", "factor") if self.rank else ("loc", "scale")

    def params(self, h):
        split = self._split(h)
        params = {"loc": split[..., 0], "scale": tf.nn.softplus(split[..., 1]) + self.scale_floor}
        if self.rank:
            c = self.factor_bound
            params["factor"] = c * tf.tanh(split[..., 2:] / c)
        return params

    def distribution(self, params):
        size = math.prod(self.data_shape)
        loc = tf.reshape(params["loc"], [-1, size])
        scale = tf.reshape(params["scale"], [-1, size])
        zeros = tf.zeros_like(loc)
        if self.rank:
            factor = tf.reshape(params["factor"], [-1, size, self.rank])
            whitened = tfd.MultivariateNormalDiagPlusLowRankCovariance(
                loc=zeros, cov_diag_factor=tf.ones_like(loc), cov_perturb_factor=factor
            )
        else:
            whitened = tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(loc))
        # x = reshape(loc + scale * e), e ~ N(0, I + V V^T): log p(x) = log p(e) - sum(log scale).
        to_data = tfb.Chain(
            [tfb.Reshape(event_shape_out=self.data_shape, event_shape_in=[size]), tfb.Shift(loc), tfb.Scale(scale)]
        )
        return tfd.TransformedDistribution(whitened, to_data)

    def mean(self, params):
        return params["loc"]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rank": self.rank,
            "scale_floor": self.scale_floor,
            "factor_bound": self.factor_bound,
        }
