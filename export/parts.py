"""The exportable parts of a model: encoder, decoder and sampler.

A part is a pure function from named input tensors to named output tensors, plus how
to make its inputs from a batch of data (for calibration and parity checks). Noise is
always an input: no graph contains randomness.

A model can declare its own parts (a conditional model adds a label input, a mixture
prior changes the sampler) by defining ``export_parts(self) -> dict[str, ExportPart]``;
otherwise :func:`model_parts` builds them from the documented attributes ``encoder``,
``posterior``, ``decoder_params``, ``likelihood``, ``prior``, ``data_shape`` and
``latent_dim``, as :func:`default_parts` does.

Example:
    >>> import vaezoo
    >>> from vaezoo.export.parts import model_parts
    >>> parts = model_parts(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2))
    >>> [t.name for t in parts["sampler"].inputs]
    ['eps']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from vaezoo.export.manifest import TensorInfo

from vaezoo._tf import tf

PART_NAMES = ("encoder", "decoder", "sampler")

#: Seeds of the noise that example inputs use: deterministic, so that reruns agree.
NOISE_SEED = 20240610


@dataclasses.dataclass(frozen=True)
class ExportPart:
    """One exportable function.

    Attributes:
        name: ``"encoder"``, ``"decoder"``, ``"sampler"`` or a model-specific name.
        inputs: the input tensors; the batch dimension (first) is ``None``.
        fn: called with one keyword tensor per input; returns ``{output name: tensor}``.
        feeds: maps a float32 data batch ``(n,) + data_shape`` to this part's input
            arrays for ``n`` examples (encoder: the data; decoder: posterior samples of
            it; sampler: standard-normal noise).
    """

    name: str
    inputs: tuple[TensorInfo, ...]
    fn: Callable[..., dict[str, tf.Tensor]]
    feeds: Callable[[np.ndarray], dict[str, np.ndarray]]

    def signature(self) -> list[tf.TensorSpec]:
        """The ``tf.function`` input signature (named specs, dynamic batch)."""
        return [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=t.name) for t in self.inputs]

    def traced(self) -> tf.types.experimental.ConcreteFunction:
        """The part as a concrete function of its positional inputs."""
        names = [t.name for t in self.inputs]
        function = tf.function(lambda *args: self.fn(**dict(zip(names, args))), input_signature=self.signature())
        return function.get_concrete_function()

    def reference(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The part's outputs computed eagerly by Keras, as numpy arrays."""
        return {k: np.asarray(v) for k, v in self.fn(**{k: tf.constant(v) for k, v in feeds.items()}).items()}


def _noise(n: int, shape: tuple[int, ...], stream: int) -> np.ndarray:
    rng = np.random.default_rng([NOISE_SEED, stream])
    return rng.standard_normal((n,) + tuple(shape)).astype(np.float32)


def default_parts(model) -> dict[str, ExportPart]:
    """Encoder, decoder and sampler of a :class:`vaezoo.models.BaseVAE`.

    - ``encoder``: ``x`` -> posterior parameters (``loc`` and ``scale`` or ``scale_tril``);
    - ``decoder``: ``z`` -> likelihood parameters (e.g. ``logits``) and ``mean``, the image;
    - ``sampler``: ``eps`` -> ``z = prior.from_noise(eps)`` -> the decoder's outputs and ``z``.
    """

    def posterior_params(x):
        return model.posterior.params(tf.cast(model.encoder(x, training=False), tf.float32))

    return parts_from(model, posterior_params, model.decoder_params)


def example_labels(label: TensorInfo, n: int) -> np.ndarray:
    """``n`` example values of a label input ``(None, k)``: one-hot classes 0, 1, ..., k - 1, 0, ...

    Example:
        >>> example_labels(TensorInfo("y", (None, 3), "float32"), 4).argmax(1).tolist()
        [0, 1, 2, 0]
    """
    size = label.shape[1]
    return np.eye(size, dtype=np.float32)[np.arange(n) % size]


def parts_from(
    model,
    posterior_params: Callable[..., dict[str, tf.Tensor]],
    decoder_params: Callable[..., dict[str, tf.Tensor]],
    label: TensorInfo | None = None,
) -> dict[str, ExportPart]:
    """The encoder, decoder and sampler of :func:`default_parts`, made from the model's
    ``posterior_params(x)`` and ``decoder_params(z)`` (parameter dicts of its heads).

    With a ``label`` input (a conditional model), every part also takes it and the two
    functions are called as ``posterior_params(x, y)`` and ``decoder_params(z, y)``;
    example inputs label the examples with :func:`example_labels`.
    """
    x_info = TensorInfo("x", (None,) + tuple(model.data_shape), "float32")
    z_info = TensorInfo("z", (None, model.latent_dim), "float32")
    eps_info = TensorInfo("eps", (None,) + tuple(model.prior.noise_shape), "float32")
    extra = (label,) if label is not None else ()

    def labels(n: int) -> dict[str, np.ndarray]:
        return {label.name: example_labels(label, n)} if label is not None else {}

    def encoder(x, **y):
        return dict(posterior_params(tf.cast(x, model.compute_dtype), *y.values()))

    def decoder(z, **y):
        params = dict(decoder_params(tf.cast(z, model.compute_dtype), *y.values()))
        return {**params, "mean": model.likelihood.mean(params)}

    def sampler(eps, **y):
        z = model.prior.from_noise(eps)
        return {"z": z, **decoder(z, **y)}

    def encoder_feeds(x):
        return {"x": np.asarray(x, np.float32), **labels(len(x))}

    def decoder_feeds(x):
        y = labels(len(x))
        params = encoder(tf.constant(x, tf.float32), **{k: tf.constant(v) for k, v in y.items()})
        q = model.posterior.distribution(params)
        return {"z": np.asarray(q.sample(seed=tf.constant([NOISE_SEED, 1])), np.float32), **y}

    def sampler_feeds(x):
        return {"eps": _noise(len(x), eps_info.shape[1:], 2), **labels(len(x))}

    return {
        "encoder": ExportPart("encoder", (x_info, *extra), encoder, encoder_feeds),
        "decoder": ExportPart("decoder", (z_info, *extra), decoder, decoder_feeds),
        "sampler": ExportPart("sampler", (eps_info, *extra), sampler, sampler_feeds),
    }


def model_parts(model) -> dict[str, ExportPart]:
    """The model's ``export_parts()`` if it defines one, else :func:`default_parts`."""
    hook = getattr(model, "export_parts", None)
    parts = hook() if callable(hook) else default_parts(model)
    for name, part in parts.items():
        if not isinstance(part, ExportPart) or part.name != name:
            raise TypeError(f"{type(model).__name__}.export_parts() returned a bad entry for {name!r}: {part!r}")
    return parts


def model_samples(model, n: int) -> np.ndarray:
    """``n`` deterministic examples drawn from the model itself (the likelihood mean at
    prior samples, clipped to the pixel range [0, 1] that exported encoders accept): the
    fallback data for parity checks when none is given."""
    sampler = model_parts(model)["sampler"]
    feeds = sampler.feeds(np.zeros((n,) + tuple(model.data_shape), np.float32))  # noise (and labels) for n examples
    return np.clip(sampler.reference(feeds)["mean"].astype(np.float32), 0.0, 1.0)
