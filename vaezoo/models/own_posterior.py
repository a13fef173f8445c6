"""A mixin for models whose posterior head is configured by the model's own arguments
(a flow, a vector quantiser, a relaxed categorical) rather than picked by name from
``vaezoo.distributions.POSTERIORS``."""

from __future__ import annotations

from typing import Any

from vaezoo.distributions import PosteriorHead


class OwnPosterior:
    """Builds ``self.posterior`` with :meth:`make_posterior`, through BaseVAE's
    ``_make_posterior`` hook (so the encoder is sized for that head). ``posterior`` is
    not an argument of such a model.
    """

    def __init__(self, **kwargs: Any) -> None:
        if "posterior" in kwargs:
            raise ValueError(
                f"posterior={kwargs['posterior']!r}: {type(self).__name__} builds its own posterior head; "
                "leave posterior out"
            )
        super().__init__(**kwargs)

    def make_posterior(self) -> PosteriorHead:
        """A new posterior head from the model's configuration."""
        raise NotImplementedError

    def _make_posterior(self, posterior: str) -> PosteriorHead:
        return self.make_posterior()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["posterior"]
        return config
