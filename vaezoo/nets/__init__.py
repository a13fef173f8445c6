"""Encoder and decoder networks, chosen by name from a model's config.

Networks are plain ``keras.Sequential`` models: a flat output for the encoder (the
posterior head's parameters) and a data-shaped output for the decoder (the likelihood
head's parameters).

Example:
    >>> from vaezoo.nets import build_encoder
    >>> build_encoder("mlp", (28, 28, 1), 8, hidden_units=(16,)).output_shape
    (None, 8)
"""

from vaezoo.nets.builders import ARCHITECTURES, build_decoder, build_encoder

__all__ = ["ARCHITECTURES", "build_decoder", "build_encoder"]
