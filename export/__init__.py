"""Export vaezoo models to ONNX and TFLite with proven parity, and run them without
TensorFlow.

- :func:`export` (:mod:`vaezoo.export.exporter`) writes the encoder, decoder and
  sampler of a model as ONNX and/or TFLite files, a ``manifest.json`` and the Keras
  weights, and measures parity with Keras;
- :func:`check` (:mod:`vaezoo.export.parity`) re-measures parity of an export directory;
- :mod:`vaezoo.export.runtime` loads an export directory on ONNX Runtime or LiteRT
  with numpy only.

Importing this package does not import TensorFlow: ``export`` and ``check`` are loaded
on first use, so ``import vaezoo.export.runtime`` stays TensorFlow-free.

Example:
    >>> import tempfile, numpy as np, vaezoo
    >>> from vaezoo.export import export, runtime
    >>> model = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=2)
    >>> path = tempfile.mkdtemp()
    >>> _ = export(model, path, formats=("tflite",), parts=("sampler",))
    >>> runtime.load(path).sample(np.zeros((3, 2), "float32"))["mean"].shape
    (3, 28, 28, 1)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export": ("vaezoo.export.exporter", "export"),
    "check": ("vaezoo.export.parity", "check"),
    "ParityError": ("vaezoo.export.parity", "ParityError"),
    "Manifest": ("vaezoo.export.manifest", "Manifest"),
    "load": ("vaezoo.export.runtime", "load"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vaezoo.export' has no attribute {name!r}")


__all__ = ["Manifest", "ParityError", "check", "export", "load"]
