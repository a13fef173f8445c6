"""One place that imports TensorFlow, Keras and TFP for the modules that need them.

Importing this module is what pulls TensorFlow in; ``import vaezoo`` alone never does.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import tensorflow as tf
import tensorflow_probability as tfp

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"vaezoo needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras."
    )

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["keras", "tf", "tfb", "tfd", "tfp"]
