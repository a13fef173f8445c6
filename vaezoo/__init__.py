"""vaezoo: variational autoencoders for Keras 3, with ONNX and TFLite export.

``import vaezoo`` is light: TensorFlow is imported only when a model, head or network
is first used, so the edge runtime (``vaezoo.export.runtime``) runs without it.

Example:
    >>> import vaezoo
    >>> "vae" in vaezoo.list_models()
    True
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from vaezoo._version import __version__
from vaezoo.registry import create_model, get_spec, list_models, register

# In a source checkout `vaezoo.export` lives in the sibling folder `export/` (installs map
# it with setuptools' package-dir): a finder maps that one name, so that `python -m
# vaezoo.cli` runs from the checkout too, without exposing the checkout's other folders
# as `vaezoo.*` packages.
_EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export")


class _CheckoutExportFinder:
    """Finds ``vaezoo.export`` in the checkout's ``export/`` folder."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != "vaezoo.export":
            return None
        init = os.path.join(_EXPORT, "__init__.py")
        return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[_EXPORT])


if not os.path.isdir(os.path.join(__path__[0], "export")) and os.path.isfile(os.path.join(_EXPORT, "__init__.py")):
    sys.meta_path.append(_CheckoutExportFinder)

_SUBMODULES = {
    "callbacks", "cli", "datasets", "distribute", "distributions", "downloads", "export", "losses", "metrics",
    "models", "nets", "plots", "presets", "registry", "training", "validation",
}


def from_preset(handle: str, download: bool = True, progress: bool | None = None):
    """A ready model from a preset name (``vaezoo.list_presets()``), folder or URL.

    Example:
        >>> import vaezoo
        >>> vaezoo.from_preset("vae_mlp_binarized_mnist").name
        'vae'
    """
    from vaezoo.presets import from_preset as load

    return load(handle, download, progress)


def list_presets() -> list[dict[str, Any]]:
    """The preset catalog, one row per preset (no TensorFlow import).

    Example:
        >>> import vaezoo
        >>> "vae_mlp_binarized_mnist" in [p["name"] for p in vaezoo.list_presets()]
        True
    """
    from vaezoo.presets import list_presets as rows

    return rows()


def load_model(path: str):
    """Load a ``.keras`` file saved from a vaezoo model, always with ``safe_mode=True``.

    Example:
        >>> import tempfile, os, vaezoo
        >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
        >>> vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2).save(path)
        >>> vaezoo.load_model(path).latent_dim
        2
    """
    import json
    import os
    import zipfile

    importlib.import_module("vaezoo.models")
    from vaezoo._tf import keras

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .keras file ({type(err).__name__}: {err})") from err


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"vaezoo.{name}")
    raise AttributeError(f"module 'vaezoo' has no attribute {name!r}")


__all__ = [
    "__version__", "create_model", "from_preset", "get_spec", "list_models", "list_presets", "load_model", "register",
]
