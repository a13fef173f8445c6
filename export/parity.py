"""Parity of exported files with Keras: measured at export time and again by :func:`check`.

Every output of every part is compared on every exported format, through the same
runtime that deployments use (:mod:`vaezoo.export.runtime`), at batch 1 and at the
size of the check batch. An output passes when it is finite and
``max|got - ref| <= max(atol, rtol * max|ref|)`` with the tolerance of the export's
precision (:data:`vaezoo.export.manifest.TOLERANCES`); int8 also bounds the mean abs
difference.

Example:
    >>> figures = check("exports/vae")             # doctest: +SKIP
    >>> figures["ok"], figures["results"][0]["max_abs_diff"] < 1e-5  # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from vaezoo.export import runtime
from vaezoo.export.manifest import TOLERANCES, Manifest, Tolerance, verify_files
from vaezoo.export.parts import ExportPart, model_parts, model_samples

from vaezoo import validation

CHECK_BATCH = 64
"""Size of the check batch when no data is given (examples drawn from the model)."""


class ParityError(AssertionError):
    """An exported file disagrees with Keras beyond the tolerance, or returns NaN/Inf."""


def compare(reference: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], tolerance: Tolerance) -> list[dict[str, Any]]:
    """One figure per output: max and mean abs diff (None when the export gave NaN/Inf),
    max abs reference, allowed diff (and allowed mean diff where the tolerance bounds
    it), finite, ok.

    Example:
        >>> r = compare({"m": np.ones(3)}, {"m": np.ones(3) + 1e-6}, Tolerance(1e-5, 1e-6))
        >>> r[0]["ok"], r[0]["max_abs_diff"] < 2e-6
        (True, True)
    """
    if set(reference) != set(got):
        raise ParityError(f"outputs differ: Keras has {sorted(reference)}, the export {sorted(got)}")
    figures = []
    for name in reference:
        ref, out = np.asarray(reference[name], np.float64), np.asarray(got[name], np.float64)
        if ref.shape != out.shape:
            raise ParityError(f"output {name!r} has shape {out.shape}; Keras gives {ref.shape}")
        if not np.isfinite(ref).all():
            raise ParityError(f"the Keras reference of output {name!r} is not finite; use other check data")
        finite = bool(np.isfinite(out).all())
        scale = float(np.abs(ref).max())
        diff = mean = None
        if finite:
            error = np.abs(out - ref)
            diff, mean = float(error.max()), float(error.mean())
        allowed, mean_allowed = tolerance.allowed(scale), tolerance.mean_allowed(scale)
        ok = finite and diff <= allowed and (mean_allowed is None or mean <= mean_allowed)
        figure = {"output": name, "max_abs_diff": diff, "mean_abs_diff": mean, "max_abs_ref": scale, "allowed": allowed}
        if mean_allowed is not None:
            figure["mean_allowed"] = mean_allowed
        figures.append({**figure, "finite": finite, "ok": ok})
    return figures


def measure(
    directory: str,
    manifest: Manifest,
    parts: Mapping[str, ExportPart],
    data: np.ndarray,
    batch_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Parity figures of every part and format of an export directory against ``parts``.

    Args:
        directory: the export directory.
        manifest: its manifest.
        parts: the Keras parts (from :func:`vaezoo.export.parts.model_parts`).
        data: float32 data batch ``(n,) + data_shape``; each part's inputs are made from it.
        batch_sizes: defaults to 1 and ``len(data)``.

    Returns:
        ``{"ok", "tolerance", "batch_sizes", "results"}``; each result names the part,
        format, batch and output.
    """
    tolerance = TOLERANCES[manifest.precision]
    sizes = sorted(set(batch_sizes or (1, len(data))))
    results = []
    for backend in manifest.formats:
        edge = runtime.EdgeModel(directory, manifest, backend)
        for name in manifest.part_names:
            feeds = parts[name].feeds(data)
            for size in sizes:
                batch = {k: v[:size] for k, v in feeds.items()}
                got = edge.run(name, **batch)
                for figure in compare(parts[name].reference(batch), got, tolerance):
                    results.append({"part": name, "format": backend, "batch": size, **figure})
    return {
        "ok": all(r["ok"] for r in results),
        "tolerance": {"precision": manifest.precision, **tolerance.to_json()},
        "batch_sizes": sizes,
        "results": results,
    }


def failures(figures: Mapping[str, Any]) -> str:
    """A readable list of the failing results of ``figures`` (empty when all pass)."""
    return "\n".join(
        f"  {r['part']}/{r['format']} batch {r['batch']} output {r['output']!r}: " + _failure(r)
        for r in figures["results"]
        if not r["ok"]
    )


def _failure(r: Mapping[str, Any]) -> str:
    if not r["finite"]:
        return "NaN/Inf"
    if r["max_abs_diff"] > r["allowed"]:
        return f"max abs diff {r['max_abs_diff']:.3g} > allowed {r['allowed']:.3g}"
    return f"mean abs diff {r['mean_abs_diff']:.3g} > allowed {r['mean_allowed']:.3g}"


def check_data(model, data: np.ndarray | None, name: str) -> tuple[np.ndarray, str]:
    """Validate ``data`` for ``model`` (dtype, shape, finite), or draw :data:`CHECK_BATCH`
    examples from the model; returns the array and a description for the manifest."""
    if data is None:
        return model_samples(model, CHECK_BATCH), f"{CHECK_BATCH} examples drawn from the model (no data given)"
    arr = validation.check_array(data, tuple(model.data_shape), name)
    return arr, f"{name}: {len(arr)} examples"


def rebuild(directory: str, manifest: Manifest):
    """The Keras model of an export: class and config from the manifest, weights from
    ``model.weights.h5`` (hash-checked)."""
    import vaezoo.models  # noqa: F401  (registers the model classes with Keras)
    from vaezoo._tf import keras

    info = manifest.data["model"]
    cls = keras.saving.get_registered_object(info["class"])
    if cls is None:
        raise ValueError(f"model class {info['class']!r} of the manifest is not a registered Keras class")
    if not info.get("weights"):
        raise ValueError(f"the manifest of {directory!r} lists no weights file; pass model= to check()")
    verify_files(directory, [info["weights"]])
    model = cls.from_config(info["config"])
    model.load_weights(os.path.join(directory, info["weights"]["file"]))
    return model


def check(path: str | os.PathLike, model=None, data: np.ndarray | None = None) -> dict[str, Any]:
    """Re-measure the parity of an export directory against Keras.

    Args:
        path: the export directory.
        model: the Keras model to compare with; by default it is rebuilt from the
            manifest's config and the exported ``model.weights.h5``.
        data: float32 data ``(n,) + data_shape``; by default 64 examples drawn from
            the model.

    Returns:
        ``{"ok": True, "tolerance": ..., "batch_sizes": [...], "results": [...]}``.

    Raises:
        ParityError: an output is beyond the tolerance or not finite.
        ValueError / FileNotFoundError: a bad or incomplete export directory.

    Example:
        >>> check("exports/vae")["ok"]   # doctest: +SKIP
        True
    """
    directory = os.fspath(path)
    manifest = Manifest.read(directory)
    verify_files(directory, manifest.files(include_weights=model is None))
    if model is None:
        model = rebuild(directory, manifest)
    parts = model_parts(model)
    missing = [p for p in manifest.part_names if p not in parts]
    if missing:
        raise ValueError(f"the model has no parts {missing} that the export holds")
    arr, _ = check_data(model, data, "data")
    figures = measure(directory, manifest, parts, arr)
    if not figures["ok"]:
        raise ParityError(f"export {directory!r} fails parity with Keras:\n{failures(figures)}")
    return figures
