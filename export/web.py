"""A static latent-explorer site around an export: the model's ONNX parts run in the
browser on onnxruntime-web (WASM backend), with no server-side code.

:func:`export_web` (``vaezoo export MODEL.keras --web DIR``) writes into ``DIR``:

- the ONNX export of :func:`vaezoo.export.export` (``decoder``, ``sampler``,
  ``encoder``, ``manifest.json`` with sha256 and parity figures);
- ``web.json``: the model card (name, data, NLL if known), the latent dimensions ranked
  by their KL on data, the prior's centre and scale per dimension, the class inputs of
  a conditional decoder, and the onnxruntime-web files with their sha256;
- ``index.html``, ``vaezoo.js`` (load, ``decode(latents)`` with input checks),
  ``ui.js`` and ``style.css`` from ``web_assets/``;
- ``ort/``: onnxruntime-web :data:`ORT_WEB_VERSION` (``ort.wasm.min.mjs``, its WASM glue
  and ``.wasm``), copied from a local cache that :func:`fetch_ort_web` fills from the
  npm registry tarball (sha256 pinned in :data:`ORT_WEB_TARBALL_SHA256`; a mirror named
  by npm's own ``npm_config_registry`` setting is used instead when set), or from a
  folder or tarball given as ``ort_web`` (``--ort-web``) for offline machines.

Serve ``DIR`` with any static file server (ES modules and WASM do not load from
``file://``), e.g. ``python -m http.server -d DIR``, and open the page.

``python -m vaezoo.export.web`` fills the cache and prints its path.

Example:
    >>> describe_condition({"name": "y", "shape": [None, 10], "dtype": "float32"}, {})["encoding"]
    'one_hot'
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vaezoo import downloads

if TYPE_CHECKING:  # numpy is imported where it is used: fetching the files needs only the stdlib
    import numpy as np

ORT_WEB_VERSION = "1.30.0"
ORT_WEB_TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
ORT_WEB_TARBALL_SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"
#: The files the page needs from the package's ``dist/``, with their sha256.
ORT_WEB_FILES = {
    "ort.wasm.min.mjs": "219e6a1fc8a9938268d18efca3c91d310bd2f4a59bbd13744df5b2b7fc6cee3b",
    "ort-wasm-simd-threaded.mjs": "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
ORT_DIR = "ort"
WEB_MANIFEST = "web.json"
WEB_FORMAT_VERSION = 1
ASSETS = pathlib.Path(__file__).resolve().parent / "web_assets"
ASSET_FILES = ("index.html", "vaezoo.js", "ui.js", "style.css")
#: How many latent dimensions get a slider (those of highest KL).
SLIDERS = 8
#: Examples used for the KL ranking when no data are given (drawn from the model).
KL_FALLBACK_EXAMPLES = 256
_CLASS_COUNT_KEYS = ("num_classes", "n_classes", "classes")


def ort_web_cache() -> pathlib.Path:
    """The cache folder of onnxruntime-web :data:`ORT_WEB_VERSION`:
    ``$VAEZOO_HOME/onnxruntime-web/VERSION``, else under ``$KERAS_HOME/vaezoo`` or
    ``~/.keras/vaezoo`` (next to the preset cache).

    Example:
        >>> ort_web_cache().name == ORT_WEB_VERSION
        True
    """
    from vaezoo.presets.loading import cache_dir

    return cache_dir().parent / "onnxruntime-web" / ORT_WEB_VERSION


def _verified(folder: pathlib.Path) -> bool:
    return all((folder / n).is_file() and downloads.file_sha256(folder / n) == h for n, h in ORT_WEB_FILES.items())


def _mismatch(name: str, actual: str, where: str) -> downloads.IntegrityError:
    return downloads.IntegrityError(
        f"{where}: {name} has sha256 {actual}, expected {ORT_WEB_FILES[name]} (onnxruntime-web "
        f"{ORT_WEB_VERSION} from the npm registry); give the files of that exact version"
    )


def _extract(tarball: pathlib.Path, dest: pathlib.Path) -> None:
    """Copy the :data:`ORT_WEB_FILES` out of an npm tarball into ``dest``, each verified
    and renamed into place only when complete."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for name, sha256 in ORT_WEB_FILES.items():
            try:
                member = archive.extractfile(f"package/dist/{name}")
            except KeyError:
                member = None
            if member is None:
                raise downloads.IntegrityError(f"{tarball} has no package/dist/{name}: not an onnxruntime-web tarball")
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(member, out)
                actual = downloads.file_sha256(tmp)
                if actual != sha256:
                    raise _mismatch(name, actual, str(tarball))
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest / name)
            finally:
                pathlib.Path(tmp).unlink(missing_ok=True)


def ort_web_url() -> str:
    """The npm tarball's URL: :data:`ORT_WEB_TARBALL`, or the same path on the registry
    mirror in ``$npm_config_registry`` (npm's setting); the sha256 pin is the same.

    Example:
        >>> ort_web_url().endswith(f"/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz")
        True
    """
    registry = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
    if not registry:
        return ORT_WEB_TARBALL
    return f"{registry.rstrip('/')}/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"


def ort_web_hint() -> str:
    """One line saying how to get the onnxruntime-web files onto this machine.

    Example:
        >>> "python -m vaezoo.export.web" in ort_web_hint()
        True
    """
    return (
        f"get onnxruntime-web {ORT_WEB_VERSION} with `python -m vaezoo.export.web` (it fills {ort_web_cache()}), "
        f"or give --ort-web a folder or the tarball of `npm pack onnxruntime-web@{ORT_WEB_VERSION}`"
    )


def fetch_ort_web(
    cache: str | os.PathLike | None = None, url: str | None = None, progress: bool | None = None
) -> pathlib.Path:
    """The cache folder holding the verified onnxruntime-web files, downloading the npm
    tarball (sha256-checked, atomic; default :func:`ort_web_url`) only when a file is
    missing or wrong.

    Raises:
        downloads.DownloadError: the registry could not be reached (use ``--ort-web``).
        downloads.IntegrityError: the tarball or a file in it has the wrong sha256.

    Example:
        >>> fetch_ort_web()  # doctest: +SKIP
        PosixPath('/root/.keras/vaezoo/onnxruntime-web/1.30.0')
    """
    folder = pathlib.Path(cache) if cache is not None else ort_web_cache()
    if _verified(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        tarball = pathlib.Path(tmp) / "onnxruntime-web.tgz"
        downloads.download_verified(url or ort_web_url(), tarball, ORT_WEB_TARBALL_SHA256, progress)
        _extract(tarball, folder)
    return folder


def find_ort_web(source: str | os.PathLike | None = None) -> pathlib.Path | None:
    """A folder holding verified onnxruntime-web files, or None if there is none.

    ``source`` may be a folder of the files, an npm package folder (``dist/``), a
    folder with ``node_modules/onnxruntime-web``, or the npm tarball (``npm pack
    onnxruntime-web@VERSION``), which is unpacked into the cache. Without ``source``:
    ``$VAEZOO_ORT_WEB`` if set, else the cache (nothing is downloaded).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        downloads.IntegrityError: ``source`` holds files of another version or build.

    Example:
        >>> import tempfile
        >>> find_ort_web(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        FileNotFoundError: no onnxruntime-web 1.30.0 files (ort.wasm.min.mjs) in ...
    """
    if source is None:
        if os.environ.get("VAEZOO_ORT_WEB"):
            return find_ort_web(os.environ["VAEZOO_ORT_WEB"])
        return ort_web_cache() if _verified(ort_web_cache()) else None
    path = pathlib.Path(source)
    if path.is_file():
        actual = downloads.file_sha256(path)
        if actual != ORT_WEB_TARBALL_SHA256:
            raise downloads.IntegrityError(
                f"{path} has sha256 {actual}; the onnxruntime-web {ORT_WEB_VERSION} npm tarball has "
                f"{ORT_WEB_TARBALL_SHA256}"
            )
        _extract(path, ort_web_cache())
        return ort_web_cache()
    if not path.is_dir():
        raise FileNotFoundError(f"--ort-web {path}: no such file or folder")
    candidates = [path, path / "dist", path / "package" / "dist", path / "node_modules" / "onnxruntime-web" / "dist"]
    first = next(iter(ORT_WEB_FILES))
    for folder in candidates:
        if (folder / first).is_file():
            for name, sha256 in ORT_WEB_FILES.items():
                if not (folder / name).is_file():
                    raise FileNotFoundError(f"{folder} has {first} but not {name}")
                actual = downloads.file_sha256(folder / name)
                if actual != sha256:
                    raise _mismatch(name, actual, str(folder))
            return folder
    raise FileNotFoundError(
        f"no onnxruntime-web {ORT_WEB_VERSION} files ({first}) in {path} or its dist/, package/dist/ "
        "or node_modules/onnxruntime-web/dist/"
    )


def locate_ort_web(source: str | os.PathLike | None = None) -> pathlib.Path:
    """:func:`find_ort_web` of ``source``; without it, ``$VAEZOO_ORT_WEB`` or the cache,
    filled from the npm registry when empty (:func:`fetch_ort_web`).

    Raises:
        downloads.DownloadError: nothing local and the registry could not be reached.
        downloads.IntegrityError, FileNotFoundError: as :func:`find_ort_web` and :func:`fetch_ort_web`.

    Example:
        >>> locate_ort_web()  # doctest: +SKIP
        PosixPath('/root/.keras/vaezoo/onnxruntime-web/1.30.0')
    """
    return find_ort_web(source) if source is not None else (find_ort_web() or fetch_ort_web())


def describe_condition(info: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """How the page feeds an extra decoder input (a class label): an integer index
    ``(batch,)`` or ``(batch, 1)`` (the class count from the model config's
    ``num_classes``), or a float one-hot ``(batch, K)``.

    Raises:
        ValueError: any other shape or dtype, or an index input without a class count.

    Example:
        >>> describe_condition({"name": "y", "shape": [None], "dtype": "int32"}, {"num_classes": 3})
        {'name': 'y', 'dtype': 'int32', 'shape': [None], 'encoding': 'index', 'classes': 3, 'labels': ['0', '1', '2']}
    """
    name, shape, dtype = info["name"], list(info["shape"]), str(info["dtype"])
    if dtype.startswith("int") and len(shape) in (1, 2) and shape[1:] in ([], [1]):
        count = next((config[k] for k in _CLASS_COUNT_KEYS if isinstance(config.get(k), int)), None)
        if count is None:
            raise ValueError(
                f"decoder input {name!r} is a class index, but the model config has none of {list(_CLASS_COUNT_KEYS)} "
                "to say how many classes there are"
            )
        encoding = "index"
    elif dtype.startswith("float") and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1:
        count, encoding = shape[1], "one_hot"
    else:
        raise ValueError(
            f"decoder input {name!r} has shape {shape} and dtype {dtype}; the web page feeds extra decoder inputs "
            "as a class index (batch,) or (batch, 1) of integers, or a one-hot (batch, K) of floats"
        )
    return {"name": name, "dtype": dtype, "shape": shape, "encoding": encoding, "classes": int(count),
            "labels": [str(i) for i in range(int(count))]}


def card_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The model-card figures of a ``vaezoo evaluate --json`` result or a preset card
    (``preset.json``): data set, NLL and ELBO (nats) and the importance samples used.

    Example:
        >>> card_from_json({"data": "binarized_mnist", "split": "test", "nll": 91.0, "elbo": -98.1, "num_samples": 1000})
        {'data': 'binarized_mnist', 'nll': 91.0, 'elbo': -98.1, 'nll_samples': 1000, 'split': 'test'}
    """
    evaluation = data.get("evaluation", {})
    found = {
        "data": data.get("data"),
        "nll": data.get("nll", evaluation.get("test_nll")),
        "elbo": data.get("elbo", evaluation.get("test_elbo")),
        "nll_samples": data.get("num_samples", evaluation.get("k")),
        "split": data.get("split", "test" if "test_nll" in evaluation else None),
    }
    return {k: v for k, v in found.items() if v is not None}


def latent_statistics(model, x: np.ndarray, batch_size: int = 256) -> dict[str, Any]:
    """Per-dimension KL between q(z_d|x) and the prior's marginal, averaged over ``x``
    (computed through the model's exported ``encoder`` part, so that a conditional
    model's extra encoder inputs come from its own feeds), the dimensions ranked by it,
    and the prior's mean and standard deviation per dimension (the sliders' centre and
    scale).

    Example:
        >>> import numpy as np, vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> stats = latent_statistics(model, np.zeros((4, 28, 28, 1), "float32"))
        >>> sorted(stats), len(stats["kl"])
        (['center', 'kl', 'ranking', 'scale'], 3)
    """
    import numpy as np
    from vaezoo.export.parts import model_parts

    from vaezoo._tf import tf
    from vaezoo.metrics.likelihood import kl_per_dim_from_moments

    dim = int(model.latent_dim)
    prior = model.prior.distribution()
    center = np.broadcast_to(np.asarray(prior.mean(), np.float64), (dim,))
    scale = np.broadcast_to(np.asarray(prior.stddev(), np.float64), (dim,))
    encoder = model_parts(model)["encoder"]
    means, stddevs = [], []
    for start in range(0, len(x), batch_size):
        params = encoder.fn(**{k: tf.constant(v) for k, v in encoder.feeds(x[start : start + batch_size]).items()})
        q = model.posterior.distribution(params)
        means.append(np.asarray(q.mean()))
        stddevs.append(np.asarray(q.stddev()))
    kl = kl_per_dim_from_moments(np.concatenate(means), np.concatenate(stddevs), center, scale)
    return {
        "kl": [float(v) for v in kl],
        "ranking": [int(i) for i in np.argsort(-kl, kind="stable")],
        "center": [float(v) for v in center],
        "scale": [float(v) for v in scale],
    }


def describe(
    model, manifest, data: np.ndarray | None = None, data_name: str | None = None, card: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``web.json`` content (without the onnxruntime-web entry) for ``model`` and
    its export ``manifest``; ``data`` (float32 images) ranks the latent dimensions by
    KL, else :data:`KL_FALLBACK_EXAMPLES` images drawn from the model do.

    Example:
        >>> web = describe(model, manifest, x, "binarized_mnist")  # doctest: +SKIP
        >>> web["latent"]["ranking"][:3]                           # doctest: +SKIP
        [5, 0, 12]
    """
    from vaezoo.export.parts import model_parts, model_samples

    from vaezoo.registry import get_spec

    decoder = manifest.parts.get("decoder")
    if decoder is None or "onnx" not in decoder["files"]:
        raise ValueError("the web page needs the ONNX decoder; export the 'decoder' part to ONNX")
    inputs = {t["name"]: t for t in decoder["inputs"]}
    if "z" not in inputs or len(inputs["z"]["shape"]) != 2:
        raise ValueError(f"the decoder must take latents 'z' of shape (batch, dim); it takes {list(inputs.values())}")
    config = manifest.data["model"]["config"]
    sampler_inputs = manifest.parts.get("sampler", {}).get("inputs", [])[1:]  # the first is the noise
    extras = {t["name"]: t for t in [*decoder["inputs"], *sampler_inputs] if t["name"] != "z"}
    conditions = [describe_condition(t, config) for t in extras.values()]

    if "encoder" in model_parts(model):
        kl_x, kl_source = (data, f"{len(data)} examples of {data_name or 'the given data'}") if data is not None else (
            model_samples(model, KL_FALLBACK_EXAMPLES), f"{KL_FALLBACK_EXAMPLES} images drawn from the model")
        stats = latent_statistics(model, kl_x)
    else:
        dim = int(model.latent_dim)
        stats = {"kl": None, "ranking": list(range(dim)), "center": [0.0] * dim, "scale": [1.0] * dim}
        kl_source = "no encoder: dimensions in index order"
    try:
        spec = get_spec(model.name)
    except ValueError:
        spec = None
    model_card = {
        "name": model.name,
        "class": manifest.data["model"]["class"],
        "paper": spec.paper if spec else None,
        "data": data_name or (spec.data if spec else None),
        "latent_dim": int(model.latent_dim),
        "likelihood": manifest.data["postprocessing"]["likelihood"],
        "parameters": int(model.count_params()),
        "precision": manifest.precision,
        "vaezoo_version": manifest.data["vaezoo_version"],
        **(dict(card) if card else {}),
    }
    return {
        "format_version": WEB_FORMAT_VERSION,
        "card": model_card,
        "latent": {"input": "z", "dim": int(model.latent_dim), "sliders": min(SLIDERS, int(model.latent_dim)),
                   "kl_data": kl_source, **stats},
        "image": {
            "output": manifest.data["postprocessing"]["image_output"],
            "shape": manifest.data["preprocessing"]["shape"],
            "clip": manifest.data["postprocessing"]["clip_for_display"],
        },
        "conditions": conditions,
    }


def write_site(path: str | os.PathLike, web: Mapping[str, Any], ort_web: str | os.PathLike | None = None) -> pathlib.Path:
    """Write the page, its scripts, ``ort/`` and ``web.json`` (``web`` plus the
    onnxruntime-web entry) into ``path``, which already holds ``manifest.json`` and the
    ONNX files. ``ort_web`` as in :func:`locate_ort_web`.

    Example:
        >>> write_site("exports/vae-web", describe(model, manifest))  # doctest: +SKIP
        PosixPath('exports/vae-web')
    """
    site = pathlib.Path(path)
    source = locate_ort_web(ort_web)
    (site / ORT_DIR).mkdir(parents=True, exist_ok=True)
    for name in ORT_WEB_FILES:
        shutil.copyfile(source / name, site / ORT_DIR / name)
    (site / ORT_DIR / "NOTICE.txt").write_text(
        f"onnxruntime-web {ORT_WEB_VERSION} (MIT licence, (c) Microsoft Corporation), files from dist/ of the npm "
        f"tarball {ORT_WEB_TARBALL}, sha256 {ORT_WEB_TARBALL_SHA256}.\n",
        encoding="utf-8",
    )
    for name in ASSET_FILES:
        shutil.copyfile(ASSETS / name, site / name)
    entry = {"version": ORT_WEB_VERSION, "tarball": ORT_WEB_TARBALL, "tarball_sha256": ORT_WEB_TARBALL_SHA256,
             "files": {f"{ORT_DIR}/{n}": h for n, h in ORT_WEB_FILES.items()}}
    with open(site / WEB_MANIFEST, "w", encoding="utf-8") as handle:
        json.dump({**web, "onnxruntime_web": entry}, handle, indent=2, allow_nan=False)
        handle.write("\n")
    return site


def export_web(
    model,
    path: str | os.PathLike,
    data: np.ndarray | None = None,
    data_name: str | None = None,
    check_data: np.ndarray | None = None,
    card: Mapping[str, Any] | None = None,
    ort_web: str | os.PathLike | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Export ``model`` to ONNX in ``path`` and make it a static latent-explorer site.

    Args:
        model: a built vaezoo model.
        path: the site folder (created if needed).
        data: float32 images in [0, 1] that rank the latents by KL (and calibrate int8).
        data_name: the data set's name, for the model card.
        check_data: parity-check data for the export (default ``data``).
        card: extra model-card fields, e.g. ``card_from_json(evaluation)`` for the NLL.
        ort_web: onnxruntime-web files (:func:`locate_ort_web`); default: the cache,
            filled from the npm registry when empty.
        precision: the ONNX precision (``"fp32"``, ``"fp16"``, ``"int8"``).

    Returns:
        The written ``web.json`` content.

    Example:
        >>> export_web(model, "exports/vae-web", x, "binarized_mnist")["latent"]["dim"]  # doctest: +SKIP
        16
    """
    from vaezoo.export.exporter import export
    from vaezoo.export.parts import model_parts

    source = locate_ort_web(ort_web)
    manifest = export(
        model, path, formats=("onnx",), parts=tuple(model_parts(model)), precision=precision,
        calibration_data=data, check_data=check_data,
    )
    web = describe(model, manifest, data, data_name, card)
    write_site(path, web, source)
    with open(pathlib.Path(path) / WEB_MANIFEST, encoding="utf-8") as handle:
        return json.load(handle)


def main() -> None:
    """``python -m vaezoo.export.web [CACHE]``: fill the onnxruntime-web cache, print its path."""
    import sys

    print(fetch_ort_web(sys.argv[1] if len(sys.argv) > 1 else None, progress=False))


if __name__ == "__main__":
    main()
