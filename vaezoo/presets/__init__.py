"""Pretrained presets: trained weights with a model card, loaded by name, path or URL.

A preset is a folder of three files: ``config.json`` (the Keras serialization of the
model), ``model.weights.h5`` and ``preset.json`` (the model card and the sha256 of the
other two). Nothing is ever unpickled: the model is rebuilt with ``safe_mode=True``
deserialization and ``load_weights``.

A registered name resolves, in order, to the copy shipped inside the package, the local
cache (``$VAEZOO_HOME/presets``, else ``$KERAS_HOME/vaezoo/presets``, else
``~/.keras/vaezoo/presets``), then a download from the catalog's URL. Every file is
checked against the sha256 in the catalog before use. ``file://`` and ``https://`` URLs
and local folders are accepted as handles too; their files are checked against their
own ``preset.json``.

Example:
    >>> import vaezoo
    >>> [p["name"] for p in vaezoo.presets.list_presets()][:1]
    ['vae_mlp_binarized_mnist']
"""

from __future__ import annotations

from vaezoo.presets.catalog import PRESETS, Preset
from vaezoo.presets.loading import (
    PresetError,
    cache_dir,
    from_preset,
    list_presets,
    resolve,
    save_preset,
)

__all__ = ["PRESETS", "Preset", "PresetError", "cache_dir", "from_preset", "list_presets", "resolve", "save_preset"]
