"""``export``: write a model's parts as ONNX and TFLite files with a manifest, the Keras
weights and parity figures measured against Keras.

Example:
    >>> import tempfile, vaezoo
    >>> from vaezoo.export import export
    >>> model = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=2)
    >>> manifest = export(model, tempfile.mkdtemp(), formats=("onnx",), parts=("decoder",))
    >>> manifest.parts["decoder"]["files"]["onnx"]["file"], manifest.data["parity"]["ok"]
    ('decoder.fp32.onnx', True)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from vaezoo.export.converters import CONVERTERS, ONNX_OPSET
from vaezoo.export.lowering import freeze
from vaezoo.export.manifest import (
    FORMAT_VERSION,
    FORMATS,
    PRECISIONS,
    WEIGHTS_NAME,
    Manifest,
    file_entry,
)
from vaezoo.export.parity import ParityError, check_data, failures, measure
from vaezoo.export.parts import PART_NAMES, model_parts

import vaezoo
from vaezoo import validation
from vaezoo._tf import keras

PIXEL_RANGE = (0.0, 1.0)

_POSTPROCESSING = {
    "Bernoulli": "mean = sigmoid(logits); a binary sample is (uniform noise < mean)",
    "ContinuousBernoulli": (
        "mean = 1 / (1 - exp(-logits)) - 1 / logits, which is 0.5 at logits = 0 "
        "(the exported 'mean' output evaluates it stably)"
    ),
    "Gaussian": "mean = loc; a sample is loc + scale * standard-normal noise",
    "Categorical": "mean = sum_k softmax(logits)[..., k] * k / (K - 1) over the last axis of logits (K levels)",
}

_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


def _as_tuple(value: str | Sequence[str], what: str, known: Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    unknown = [v for v in items if v not in known]
    if unknown or not items:
        raise ValueError(f"unknown {what} {unknown or list(items)}; choose from {list(known)}")
    return tuple(dict.fromkeys(items))


def _check_model(model) -> None:
    if not isinstance(model, keras.Model) or not hasattr(model, "likelihood"):
        raise TypeError(f"export needs a vaezoo model (a BaseVAE), got {type(model).__name__}")
    unbuilt = [n for n in ("encoder", "decoder") if not getattr(model, n).built] + ([] if model.built else ["model"])
    if unbuilt:
        raise ValueError(f"the model is not built ({', '.join(unbuilt)}); build it or call it on data before export")
    if keras.saving.get_registered_name(type(model)) == type(model).__name__:
        raise ValueError(
            f"{type(model).__name__} is not registered with keras.saving.register_keras_serializable; "
            "the export could not be rebuilt by vaezoo.export.check"
        )


def _postprocessing(model) -> dict[str, Any]:
    head = model.likelihood
    kind = type(head).__name__
    doc = (type(head).__doc__ or kind).strip().splitlines()[0]
    return {
        "likelihood": kind,
        "params": list(head.param_names),
        "image_output": "mean",
        "image": _POSTPROCESSING.get(kind, doc),
        "clip_for_display": list(PIXEL_RANGE),
    }


def _tools() -> dict[str, str]:
    versions = {}
    for name in _TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {**versions, "onnx_opset": ONNX_OPSET}


def export(
    model,
    path: str | os.PathLike,
    formats: str | Sequence[str] = ("onnx", "tflite"),
    parts: str | Sequence[str] | None = None,
    precision: str = "fp32",
    calibration_data: np.ndarray | None = None,
    check_data: np.ndarray | None = None,
) -> Manifest:
    """Export ``model`` to ``path`` and prove parity with Keras.

    Writes ``{part}.{precision}.{onnx,tflite}`` for each part and format,
    ``model.weights.h5`` and ``manifest.json`` (see :mod:`vaezoo.export.manifest`).
    Each part is frozen (no variables), uses only ONNX opset ops or TFLite built-ins,
    and has a dynamic batch dimension. The files are then run through
    :mod:`vaezoo.export.runtime` at batch 1 and at the check batch size and compared
    with Keras; the figures go into the manifest.

    Args:
        model: a built vaezoo model.
        path: the export directory (created if needed; files of the same names are
            overwritten).
        formats: any of ``"onnx"``, ``"tflite"``.
        parts: any of the model's parts (``"encoder"``, ``"decoder"``, ``"sampler"``, or a
            part of the model's own ``export_parts()``); None: those of encoder, decoder
            and sampler that the model has (a model without an encoder exports two).
        precision: ``"fp32"``, ``"fp16"`` (float16 weights) or ``"int8"`` (TFLite
            integer quantization calibrated on ``calibration_data``; ONNX dynamic int8).
        calibration_data: float32 data ``(n,) + data_shape`` in [0, 1]; required for
            int8 (the encoder is calibrated on it, the decoder on posterior samples of
            it, the sampler on standard-normal noise).
        check_data: float32 data for the parity check; defaults to ``calibration_data``,
            else 64 examples drawn from the model.

    Returns:
        The written :class:`~vaezoo.export.manifest.Manifest`.

    Raises:
        ValueError: unknown format, part or precision; int8 without calibration data;
            an unbuilt model; bad data.
        ParityError: an exported file disagrees with Keras beyond the stated tolerance
            (the manifest is still written, with ``parity.ok = false``, and
            ``runtime.load`` refuses it).

    Example:
        >>> manifest = export(model, "exports/vae", precision="fp16")  # doctest: +SKIP
        >>> manifest.data["parity"]["tolerance"]["atol"]               # doctest: +SKIP
        0.02
    """
    formats = _as_tuple(formats, "format(s)", list(FORMATS))
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
    _check_model(model)
    available = model_parts(model)
    if parts is None:
        parts = [p for p in PART_NAMES if p in available]
    names = _as_tuple(parts, "part(s)", list(available))
    if precision == "int8" and calibration_data is None:
        raise ValueError("precision='int8' needs calibration_data: real examples to calibrate the quantization")
    calibration = None if calibration_data is None else validation.check_array(
        calibration_data, tuple(model.data_shape), "calibration_data"
    )
    data, described = check_data_for(model, check_data, calibration)

    directory = os.fspath(path)
    os.makedirs(directory, exist_ok=True)
    manifest_parts = {}
    for name in names:
        part = available[name]
        graph = freeze(part)
        feeds = None if calibration is None else part.feeds(calibration)
        files = {}
        for fmt in formats:
            filename = f"{name}.{precision}{FORMATS[fmt]}"
            with open(os.path.join(directory, filename), "wb") as handle:
                handle.write(CONVERTERS[fmt](graph, precision, feeds))
            files[fmt] = file_entry(directory, filename, precision=precision)
        manifest_parts[name] = {
            "inputs": [t.to_json() for t in part.inputs],
            "outputs": [t.to_json() for t in graph.output_infos],
            "files": files,
        }

    model.save_weights(os.path.join(directory, WEIGHTS_NAME))
    config = json.loads(json.dumps(model.get_config()))
    manifest = Manifest(
        {
            "format_version": FORMAT_VERSION,
            "vaezoo_version": vaezoo.__version__,
            "tools": _tools(),
            "model": {
                "name": model.name,
                "class": keras.saving.get_registered_name(type(model)),
                "config": config,
                "weights": file_entry(directory, WEIGHTS_NAME),
            },
            "precision": precision,
            "preprocessing": {
                "input": "x",
                "shape": list(model.data_shape),
                "dtype": "float32",
                "range": list(PIXEL_RANGE),
                "description": "float32 images (batch, " + ", ".join(map(str, model.data_shape))
                + ") with pixels scaled to [0, 1] (uint8 / 255; binary data as exactly 0 or 1)",
            },
            "postprocessing": _postprocessing(model),
            "parts": manifest_parts,
        }
    )
    figures = measure(directory, manifest, available, data)
    manifest.data["parity"] = {"data": described, **figures}
    manifest.write(directory)
    if not figures["ok"]:
        raise ParityError(f"export to {directory!r} fails parity with Keras:\n{failures(figures)}")
    return manifest


def check_data_for(model, check: np.ndarray | None, calibration: np.ndarray | None) -> tuple[np.ndarray, str]:
    """The parity data: ``check``, else the calibration data, else model samples."""
    if check is not None:
        return check_data(model, check, "check_data")
    if calibration is not None:
        return calibration, f"calibration_data: {len(calibration)} examples"
    return check_data(model, None, "check_data")
