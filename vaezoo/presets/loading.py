"""Resolving, verifying, loading and writing presets."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import urllib.parse
from typing import Any

from vaezoo import downloads
from vaezoo.presets.catalog import PRESETS, Preset

CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
CARD = "preset.json"
SHIPPED = pathlib.Path(__file__).resolve().parent / "shipped"


class PresetError(ValueError):
    """A preset cannot be found, verified or loaded."""


def cache_dir() -> pathlib.Path:
    """Where downloaded presets are kept: ``$VAEZOO_HOME/presets``, else
    ``$KERAS_HOME/vaezoo/presets``, else ``~/.keras/vaezoo/presets``.

    Example:
        >>> cache_dir().name
        'presets'
    """
    if os.environ.get("VAEZOO_HOME"):
        return pathlib.Path(os.environ["VAEZOO_HOME"]) / "presets"
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(keras_home) / "vaezoo" / "presets"


def list_presets() -> list[dict[str, Any]]:
    """One row per catalog entry: name, model, data, metric, value, size (bytes).

    Example:
        >>> sorted(list_presets()[0])
        ['data', 'description', 'metric', 'model', 'name', 'shipped', 'size_bytes', 'value']
    """
    rows = []
    for preset in PRESETS.values():
        shipped = (SHIPPED / preset.name).is_dir()
        rows.append(
            {
                "name": preset.name,
                "model": preset.model,
                "data": preset.data,
                "metric": preset.metric,
                "value": preset.value,
                "description": preset.description,
                "shipped": shipped,
                "size_bytes": preset.size_bytes(SHIPPED / preset.name) if shipped else None,
            }
        )
    return rows


def _sha256(path: pathlib.Path) -> str:
    return downloads.file_sha256(path)


def _verify(folder: pathlib.Path, files: dict[str, str]) -> None:
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise PresetError(f"preset file missing: {path}")
        actual = _sha256(path)
        if actual != expected:
            raise PresetError(
                f"preset file {path} is corrupt or was modified: expected sha256 {expected}, got {actual}"
            )


def _complete(folder: pathlib.Path, files: dict[str, str]) -> bool:
    try:
        _verify(folder, files)
    except PresetError:
        return False
    return True


def _card_files(folder: pathlib.Path) -> dict[str, str]:
    card_path = folder / CARD
    if not card_path.is_file():
        raise PresetError(f"{folder} is not a preset folder: no {CARD}")
    try:
        card = json.loads(card_path.read_text())
        files = dict(card["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise PresetError(f"{card_path} is not a valid preset card: {err}") from None
    missing = {CONFIG, WEIGHTS} - set(files)
    if missing:
        raise PresetError(f"{card_path} lists no sha256 for {sorted(missing)}")
    return files


def _download(base_url: str, folder: pathlib.Path, files: dict[str, str], progress: bool | None) -> None:
    for name, sha in files.items():
        if (folder / name).is_file() and _sha256(folder / name) == sha:
            continue
        try:
            downloads.download_verified(base_url.rstrip("/") + "/" + name, folder / name, sha, progress)
        except (downloads.DownloadError, downloads.IntegrityError) as err:
            raise PresetError(str(err)) from err


def _resolve_catalog(preset: Preset, download: bool, progress: bool | None) -> pathlib.Path:
    files = dict(preset.files)
    for folder in (SHIPPED / preset.name, cache_dir() / preset.name):
        if folder.is_dir() and all((folder / n).is_file() for n in files):
            _verify(folder, files)
            return folder
    if not download or preset.url is None:
        raise PresetError(
            f"preset {preset.name!r} is neither shipped nor cached in {cache_dir() / preset.name}"
            + ("" if preset.url else " and has no download URL")
        )
    folder = cache_dir() / preset.name
    _download(preset.url, folder, files, progress)
    return folder


def _resolve_url(url: str, progress: bool | None) -> pathlib.Path:
    folder = cache_dir() / ("url-" + hashlib.sha256(url.encode()).hexdigest()[:16])
    folder.mkdir(parents=True, exist_ok=True)
    card_url = url.rstrip("/") + "/" + CARD
    try:
        with open(folder / (CARD + ".part"), "wb") as out:
            downloads.stream(card_url, out)
        os.replace(folder / (CARD + ".part"), folder / CARD)
    except OSError as err:
        (folder / (CARD + ".part")).unlink(missing_ok=True)
        raise PresetError(f"cannot download {card_url}: {downloads.reason(err)}") from err
    files = _card_files(folder)
    _download(url, folder, {n: s for n, s in files.items() if n != CARD}, progress)
    return folder


def resolve(handle: str, download: bool = True, progress: bool | None = None) -> pathlib.Path:
    """The local folder holding the verified files of preset ``handle``: a catalog
    name, a local folder, a ``file://`` URL or an ``http(s)://`` base URL.

    Example:
        >>> resolve("vae_mlp_binarized_mnist").name
        'vae_mlp_binarized_mnist'
    """
    if handle in PRESETS:
        return _resolve_catalog(PRESETS[handle], download, progress)
    scheme = urllib.parse.urlsplit(handle).scheme
    if scheme in ("http", "https"):
        if not download:
            raise PresetError(f"{handle} is a URL and download=False")
        return _resolve_url(handle, progress)
    folder = pathlib.Path(urllib.parse.unquote(urllib.parse.urlsplit(handle).path) if scheme == "file" else handle)
    if folder.is_dir():
        files = _card_files(folder)
        _verify(folder, {n: s for n, s in files.items() if n != CARD})
        return folder
    raise PresetError(f"unknown preset {handle!r}: not a folder or URL; catalog: {', '.join(sorted(PRESETS))}")


def load_folder(folder: pathlib.Path):
    """Rebuild the model in a verified preset folder (``safe_mode=True``, no pickles)."""
    import vaezoo.models  # noqa: F401  (registers the classes with Keras)
    from vaezoo._tf import keras

    try:
        config = json.loads((folder / CONFIG).read_text())
        config.pop("compile_config", None)  # a preset is weights for inference or fine-tuning
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except ValueError as err:
        raise PresetError(f"{folder / CONFIG} cannot be loaded safely: {err}") from err
    if not isinstance(model, keras.Model):
        raise PresetError(f"{folder / CONFIG} does not describe a Keras model")
    try:
        model.load_weights(str(folder / WEIGHTS))
    except (OSError, ValueError, KeyError) as err:
        raise PresetError(f"{folder / WEIGHTS} cannot be loaded: {err}") from err
    return model


def from_preset(handle: str, download: bool = True, progress: bool | None = None):
    """A ready model from a preset name, folder, ``file://`` or ``https://`` URL.

    Example:
        >>> import vaezoo
        >>> vaezoo.from_preset("vae_mlp_binarized_mnist").latent_dim
        32
    """
    return load_folder(resolve(handle, download, progress))


def save_preset(model, folder: str | os.PathLike, card: dict[str, Any], weights_dtype: str = "float16") -> dict[str, str]:
    """Write ``model`` as a preset folder and return its files' sha256 (for the catalog).

    Weights are stored as ``weights_dtype`` (float16 halves the size; they are cast back
    to the model's dtype on load). ``card`` is merged into ``preset.json``.

    Example:
        >>> import tempfile, vaezoo
        >>> files = save_preset(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2),
        ...                     tempfile.mkdtemp(), {"name": "tiny"})
        >>> sorted(files)
        ['config.json', 'model.weights.h5', 'preset.json']
    """
    import numpy as np

    from vaezoo._tf import keras
    from vaezoo._version import __version__

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    (folder / CONFIG).write_text(json.dumps(config, indent=1, sort_keys=True))
    full = folder / ("full." + WEIGHTS)
    model.save_weights(str(full))
    try:
        _copy_h5_as(full, folder / WEIGHTS, np.dtype(weights_dtype))
    finally:
        full.unlink(missing_ok=True)
    files = {CONFIG: _sha256(folder / CONFIG), WEIGHTS: _sha256(folder / WEIGHTS)}
    full_card = {**card, "model": card.get("model", model.name), "vaezoo_version": __version__,
                 "weights_dtype": weights_dtype, "parameters": int(model.count_params()), "files": files}
    (folder / CARD).write_text(json.dumps(full_card, indent=1, sort_keys=True))
    return {**files, CARD: _sha256(folder / CARD)}


def _copy_h5_as(src: pathlib.Path, dst: pathlib.Path, dtype) -> None:
    """Copy a Keras weights file without the optimizer's state, casting every float
    dataset to ``dtype`` (a new file: HDF5 does not give back deleted datasets' space)."""
    import h5py

    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        fout.attrs.update(fin.attrs)

        def copy(name, obj):
            if name.split("/")[0] == "optimizer":
                return
            if isinstance(obj, h5py.Group):
                fout.require_group(name).attrs.update(obj.attrs)
            else:
                data = obj[()]
                fout.create_dataset(name, data=data.astype(dtype) if data.dtype.kind == "f" else data)
                fout[name].attrs.update(obj.attrs)

        fin.visititems(copy)
