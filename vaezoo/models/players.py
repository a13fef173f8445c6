"""Models trained by several players: each minimises one term of the objective over its
own variables with its own optimizer, all from one forward pass of a training step
(FactorVAE, Kim and Mnih 2018; WAE-GAN, Tolstikhin et al. 2018; VAE/GAN, Larsen et al.
2016; CVAE-GAN, Bao et al. 2017)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from vaezoo._tf import keras, tf
from vaezoo.losses import positive_int


def optimizer_argument(name: str, value: dict[str, Any] | keras.optimizers.Optimizer | None):
    """A Keras optimizer from an optimizer, its serialized config or None (kept None).

    Example:
        >>> optimizer_argument("decoder_optimizer", {"class_name": "SGD", "config": {}}).__class__.__name__
        'SGD'
    """
    if isinstance(value, dict):  # deserialize edits its argument: give it a copy
        value = keras.optimizers.deserialize(copy.deepcopy(value))
    if not isinstance(value, (keras.optimizers.Optimizer, type(None))):
        raise TypeError(f"{name} must be a keras optimizer, its config or None, got {value!r}")
    return value


def build_discriminator(latent_dim: int, units: Sequence[int], name: str = "discriminator") -> keras.Sequential:
    """z -> two logits (class 0 and class 1: the two kinds of latent samples a
    discriminator tells apart), through dense leaky-ReLU layers of ``units``.

    Example:
        >>> build_discriminator(4, (8, 8)).output_shape
        (None, 2)
    """
    stack: list[keras.layers.Layer] = [keras.Input((latent_dim,))]
    stack += [keras.layers.Dense(u, activation="leaky_relu") for u in units]
    stack.append(keras.layers.Dense(2, dtype="float32"))  # logits in float32 under mixed precision
    return keras.Sequential(stack, name=name)


class Players:
    """Mixin of a :class:`vaezoo.models.base.BaseVAE` trained by several players (e.g.
    Algorithm 1 of Larsen et al. 2016 and of Bao et al. 2017): each minimises one term
    of ``objective`` over its own variables with its own optimizer, all from the same
    forward pass of one ``train_step``, through ``BaseVAE._apply_updates`` (so the NaN
    guard and ``tf.distribute`` weighting cover every player).

    The first player uses the compiled optimizer; the others use the optimizers named
    by ``optimizer_names``: each given as a Keras optimizer or its config, or, if None,
    the one ``default_optimizer`` makes (the paper's), or where there is none a copy of
    the compiled optimizer (same class and settings, so that ``compile(optimizer=...)``
    and ``vaezoo train --lr`` set every player's) made by ``compile``. A subclass lists
    its players in ``players()``.
    """

    #: Attributes holding the optimizers of the players after the first.
    optimizer_names: tuple[str, ...] = ()

    def _init_optimizers(self, given: dict[str, Any]) -> None:
        self._given_optimizers = {}
        for name in self.optimizer_names:
            value = optimizer_argument(name, given[name])
            self._given_optimizers[name] = value if value is not None else self.default_optimizer(name)
            setattr(self, name, self._given_optimizers[name])

    def default_optimizer(self, name: str) -> keras.optimizers.Optimizer | None:
        """The optimizer ``name`` when none is given; None: a copy of the compiled one."""
        return None

    def _optimizer_config(self) -> dict[str, Any]:
        return {
            name: None if value is None else keras.optimizers.serialize(value)
            for name, value in self._given_optimizers.items()
        }

    def players(self) -> list[tuple[str, Any, list]]:
        """``(term, optimizer, variables)`` of each player; the variable lists partition
        the model's trainable variables."""
        raise NotImplementedError

    def optimizer_variables(self) -> list:
        """The first player's variables: those that the compiled optimizer updates."""
        return self.players()[0][2]

    def _other_variables(self, *groups: Sequence) -> list:
        """The trainable variables in none of ``groups``."""
        taken = {id(v) for group in groups for v in group}
        return [v for v in self.trainable_variables if id(v) not in taken]

    def compile(self, *args: Any, **kwargs: Any) -> None:
        super().compile(*args, **kwargs)
        for name, given in self._given_optimizers.items():
            if given is None:
                config = keras.optimizers.serialize(self.optimizer)
                config["config"]["name"] = name
                given = keras.optimizers.deserialize(config)
            setattr(self, name, given)

    def train_step(self, data):
        x, inputs = self._step_inputs(data)
        with tf.GradientTape(persistent=True) as tape:
            terms = self._with_regularisers(self.objective(inputs, training=True))
        return self._apply_updates(x, terms, [(tape, term, opt, variables) for term, opt, variables in self.players()])


class LatentDiscriminator(Players):
    """Mixin of a VAE whose second player is a discriminator over z
    (``self.discriminator``, :func:`build_discriminator`, saved with the model): the
    compiled optimizer minimises ``loss`` over every other variable, and
    ``discriminator_optimizer`` minimises ``discriminator_loss`` over the
    discriminator's. The subclass's ``objective`` returns both terms.

    Args:
        discriminator_units: widths of the discriminator's hidden layers.
        discriminator_optimizer: a Keras optimizer or its serialized config, or None
            for ``default_optimizer("discriminator_optimizer")``.
        **kwargs: the arguments of the model.
    """

    optimizer_names = ("discriminator_optimizer",)

    def __init__(
        self,
        discriminator_units: Sequence[int],
        discriminator_optimizer: dict[str, Any] | keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        units = tuple(positive_int("discriminator_units", u) for u in discriminator_units)
        if not units:
            raise ValueError(f"discriminator_units must be one or more positive widths, got {discriminator_units!r}")
        self.discriminator_units = units  # read by ``build``, which BaseVAE.__init__ calls
        super().__init__(**kwargs)
        self._init_optimizers({"discriminator_optimizer": discriminator_optimizer})

    def build(self, input_shape=None):
        if not self.built:
            self.discriminator = build_discriminator(self.latent_dim, self.discriminator_units)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "discriminator_units": list(self.discriminator_units), **self._optimizer_config()}

    def players(self) -> list[tuple[str, Any, list]]:
        discriminator = self.discriminator.trainable_variables
        return [
            ("loss", self.optimizer, self._other_variables(discriminator)),
            ("discriminator_loss", self.discriminator_optimizer, discriminator),
        ]
