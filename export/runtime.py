"""Run an exported vaezoo model without TensorFlow: ONNX Runtime or LiteRT.

This module imports only numpy and the standard library at import time;
``onnxruntime`` or ``ai_edge_litert`` is imported when a model is loaded with that
backend. It never imports TensorFlow, Keras or TFP.

Inputs are checked before they reach a backend, and every problem is a ``ValueError``
that names the part, the input and what was expected:

- dtype: floating inputs accept float16/float32/float64 and are cast to float32
  (float64 values beyond the float32 range become Inf and are then rejected);
  integer, bool, string, object or complex arrays are rejected for float inputs
  (images must be float in [0, 1], not uint8 in [0, 255]); integer inputs (for
  example class labels) accept integer arrays only;
- shape: ``(batch,) + shape`` exactly (a single example needs ``x[None]``);
- empty batch, NaN or Inf, values outside the manifest's pixel range for the data input;
- unknown, missing, or batch-size-mismatched inputs.

Example:
    >>> import vaezoo.export.runtime as rt                    # doctest: +SKIP
    >>> edge = rt.load("exports/vae", backend="onnx")          # doctest: +SKIP
    >>> edge.reconstruct(x).shape                              # doctest: +SKIP
    (64, 28, 28, 1)
"""

from __future__ import annotations

import math
import os
from typing import Any, Protocol

import numpy as np
from vaezoo.export.manifest import WEIGHTS_NAME, Manifest, TensorInfo, verify_files

BACKENDS = ("onnx", "tflite")
_BACKEND_MODULES = {"onnx": "onnxruntime", "tflite": "ai_edge_litert.interpreter"}


class _Session(Protocol):
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OnnxSession:
    """One ONNX file on ONNX Runtime's CPU provider.

    Example:
        >>> s = OnnxSession("encoder.fp32.onnx", inputs, outputs)  # doctest: +SKIP
        >>> s.run({"x": x})["loc"].shape                           # doctest: +SKIP
        (1, 32)
    """

    def __init__(self, path: str, inputs: list[TensorInfo], outputs: list[TensorInfo], threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        _match(path, "inputs", [i.name for i in self.session.get_inputs()], [t.name for t in inputs])
        self.output_names = [o.name for o in self.session.get_outputs()]
        _match(path, "outputs", sorted(self.output_names), sorted(t.name for t in outputs))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, feeds)))


class TFLiteSession:
    """One TFLite file on the LiteRT interpreter (XNNPACK where it applies).

    The batch dimension is dynamic: an input of a new batch size resizes the input
    tensors and re-allocates before the call. Outputs are matched to names by position
    (the exporter verified the order against Keras).

    Example:
        >>> s = TFLiteSession("decoder.fp32.tflite", inputs, outputs)  # doctest: +SKIP
        >>> s.run({"z": z})["mean"].shape                              # doctest: +SKIP
        (64, 28, 28, 1)
    """

    def __init__(self, path: str, inputs: list[TensorInfo], outputs: list[TensorInfo], threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        details = self.interpreter.get_input_details()
        _match(path, "inputs", [d["name"] for d in details], [t.name for t in inputs])
        self.input_index = {t.name: d["index"] for t, d in zip(inputs, details)}
        out = self.interpreter.get_output_details()
        if len(out) != len(outputs):
            raise ValueError(f"{path!r} has {len(out)} outputs; the manifest lists {len(outputs)}")
        self.output_index = {t.name: d["index"] for t, d in zip(outputs, out)}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
        shapes = {name: value.shape for name, value in feeds.items()}
        if shapes != self.shapes:
            for name, shape in shapes.items():
                it.resize_tensor_input(self.input_index[name], shape, strict=True)
            it.allocate_tensors()
            self.shapes = shapes
        for name, value in feeds.items():
            it.set_tensor(self.input_index[name], value)
        it.invoke()
        return {name: it.get_tensor(index) for name, index in self.output_index.items()}


_SESSIONS = {"onnx": OnnxSession, "tflite": TFLiteSession}


def _match(path: str, what: str, found: list[str], expected: list[str]) -> None:
    if found != expected:
        raise ValueError(f"{path!r} has {what} {found}; the manifest lists {expected}")


def available_backends() -> list[str]:
    """Backends whose runtime package is importable, in ``auto`` preference order.

    Example:
        >>> set(available_backends()) <= {"onnx", "tflite"}
        True
    """
    import importlib.util

    return [b for b in BACKENDS if importlib.util.find_spec(_BACKEND_MODULES[b].split(".")[0]) is not None]


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_input(part: str, info: TensorInfo, value: Any, value_range: tuple[float, float] | None) -> np.ndarray:
    arr = np.asarray(value)
    want_float = info.dtype.startswith("float")
    kind = arr.dtype.kind
    if want_float and kind != "f":
        hint = " (images are float32 in [0, 1]: divide uint8 pixels by 255)" if kind in "biu" else ""
        raise ValueError(f"{_label(part, info)} has dtype {arr.dtype}; expected a floating array, cast to {info.dtype}{hint}")
    if not want_float and kind not in "iu":
        raise ValueError(f"{_label(part, info)} has dtype {arr.dtype}; expected an integer array, cast to {info.dtype}")
    if arr.ndim != len(info.shape) or arr.shape[1:] != tuple(info.shape[1:]):
        raise ValueError(f"{_label(part, info)} has shape {arr.shape}; expected {_expected(info)}")
    if arr.shape[0] == 0:
        raise ValueError(
            f"{_label(part, info)} is an empty batch (shape {arr.shape}); expected {_expected(info)} with batch >= 1"
        )
    if arr.dtype != info.dtype or not arr.flags.c_contiguous:
        with np.errstate(over="ignore"):
            arr = np.ascontiguousarray(arr, dtype=info.dtype)
    if want_float:
        low, high = float(arr.min()), float(arr.max())  # NaN propagates through min and max
        if not (math.isfinite(low) and math.isfinite(high)):
            bad = ~np.isfinite(arr)
            raise ValueError(
                f"{_label(part, info)} has {int(bad.sum())} NaN or Inf value(s) (after casting to {info.dtype}); "
                f"first at index {_first(bad)}: {arr[_first(bad)]!r}"
            )
        if value_range is not None and (low < value_range[0] or high > value_range[1]):
            outside = (arr < value_range[0]) | (arr > value_range[1])
            raise ValueError(
                f"{_label(part, info)} has {int(outside.sum())} value(s) outside [{value_range[0]}, {value_range[1]}]; "
                f"first at index {_first(outside)}: {arr[_first(outside)]!r}. Scale pixels to [{value_range[0]}, "
                f"{value_range[1]}] (e.g. uint8 / 255)"
            )
    return arr


def _label(part: str, info: TensorInfo) -> str:
    return f"{part} input {info.name!r}"


def _expected(info: TensorInfo) -> str:
    return "(batch, " + ", ".join(map(str, info.shape[1:])) + ")"


class EdgeModel:
    """An export directory loaded on one backend.

    Attributes:
        manifest: the parsed ``manifest.json``.
        backend: ``"onnx"`` or ``"tflite"``.
        parts: the loaded part names.

    Example:
        >>> edge = load("exports/vae")                    # doctest: +SKIP
        >>> edge.sample(np.zeros((4, 32), "float32"))["mean"].shape  # doctest: +SKIP
        (4, 28, 28, 1)
    """

    def __init__(self, directory: str, manifest: Manifest, backend: str, threads: int | None = None) -> None:
        self.directory = directory
        self.manifest = manifest
        self.backend = backend
        pre = manifest.data.get("preprocessing", {})
        self._range_input = pre.get("input")
        self._range = tuple(pre["range"]) if pre.get("range") else None
        self._sessions: dict[str, _Session] = {}
        self._inputs = {part: manifest.inputs(part) for part in manifest.part_names}
        for part in manifest.part_names:
            entry = manifest.parts[part]["files"].get(backend)
            if entry is None:
                continue
            path = os.path.join(directory, entry["file"])
            self._sessions[part] = _SESSIONS[backend](path, manifest.inputs(part), manifest.outputs(part), threads)

    @property
    def parts(self) -> list[str]:
        return list(self._sessions)

    def run(self, part: str, **inputs: Any) -> dict[str, np.ndarray]:
        """Run one part on named inputs; returns ``{output name: array}``.

        Example:
            >>> edge.run("decoder", z=np.zeros((1, 32), "float32"))["mean"].shape  # doctest: +SKIP
            (1, 28, 28, 1)
        """
        if part not in self._sessions:
            raise ValueError(
                f"part {part!r} is not in this export on backend {self.backend!r}; available: {self.parts}"
            )
        infos = self._inputs[part]
        if len(inputs) != len(infos) or any(t.name not in inputs for t in infos):
            names = [t.name for t in infos]
            unknown, missing = sorted(set(inputs) - set(names)), [n for n in names if n not in inputs]
            raise ValueError(f"{part} takes inputs {names}; missing {missing}, unknown {unknown}")
        feeds = {
            t.name: _check_input(part, t, inputs[t.name], self._range if t.name == self._range_input else None)
            for t in infos
        }
        if len(feeds) > 1 and len({len(value) for value in feeds.values()}) > 1:
            raise ValueError(f"{part} inputs have different batch sizes: { {k: len(v) for k, v in feeds.items()} }")
        return self._sessions[part].run(feeds)

    def encode(self, x: Any, **extra: Any) -> dict[str, np.ndarray]:
        """Posterior parameters of ``x`` (float, ``(batch,) + data_shape``, in [0, 1])."""
        return self.run("encoder", x=x, **extra)

    def decode(self, z: Any, **extra: Any) -> dict[str, np.ndarray]:
        """Likelihood parameters and ``mean`` (the image) for latents ``z``."""
        return self.run("decoder", z=z, **extra)

    def sample(self, eps: Any, **extra: Any) -> dict[str, np.ndarray]:
        """``z`` and the decoder's outputs for standard-normal noise ``eps``
        (``(batch,) + noise_shape``, e.g. ``np.random.default_rng(0).standard_normal((n, d))``)."""
        return self.run("sampler", eps=eps, **extra)

    def reconstruct(self, x: Any, **extra: Any) -> np.ndarray:
        """The image decoded at the posterior mean: ``decode(encode(x)["loc"])["mean"]``.

        ``extra`` inputs (e.g. a label of a conditional model) go to both parts that take them.
        """
        for part in ("encoder", "decoder"):
            if part not in self._sessions:
                raise ValueError(f"reconstruct needs the encoder and decoder; this export lacks the {part}")

        def extras(part: str) -> dict[str, Any]:
            return {k: v for k, v in extra.items() if k in {t.name for t in self.manifest.inputs(part)}}

        loc = self.encode(x, **extras("encoder"))["loc"]
        return self.decode(loc, **extras("decoder"))["mean"]


def load(
    path: str | os.PathLike, backend: str = "auto", threads: int | None = None, verify: bool = True
) -> EdgeModel:
    """Load an export directory made by ``vaezoo.export.export``.

    Args:
        path: the export directory (holding ``manifest.json``).
        backend: ``"onnx"``, ``"tflite"`` or ``"auto"`` (ONNX Runtime if installed and
            exported, else LiteRT).
        threads: intra-op threads of the backend (None: the backend's default; 1 is
            usually fastest for batch-1 latency on small CPUs).
        verify: check the sha256 of every file listed in the manifest first (all model
            files of every format; the Keras weights only if present, since only
            ``vaezoo.export.check`` needs them and a deployment may leave them out).

    Raises:
        FileNotFoundError: the directory, the manifest or a listed file is missing.
        ValueError: a hash mismatch (naming the file and both hashes), an unknown
            backend, or a backend that this export or this machine lacks.

    Example:
        >>> edge = load("exports/vae", backend="tflite")   # doctest: +SKIP
        >>> edge.encode(np.zeros((1, 28, 28, 1), "float32"))["loc"].shape  # doctest: +SKIP
        (1, 32)
    """
    directory = os.fspath(path)
    manifest = Manifest.read(directory)
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown backend {backend!r}; choose one of {[*BACKENDS, 'auto']}")
    installed = available_backends()
    exported = manifest.formats
    if backend == "auto":
        usable = [b for b in BACKENDS if b in exported and b in installed]
        if not usable:
            raise ValueError(f"no usable backend: the export has {exported}, this machine has runtimes for {installed}")
        backend = usable[0]
    elif backend not in exported:
        raise ValueError(f"this export has no {backend!r} files for every part; formats: {exported}")
    elif backend not in installed:
        raise ValueError(f"backend {backend!r} needs the package {_BACKEND_MODULES[backend].split('.')[0]!r}")
    if manifest.data.get("parity", {}).get("ok") is False:
        raise ValueError(f"{directory!r} failed its parity check against Keras at export time; see its manifest")
    if verify:
        verify_files(directory, manifest.files(include_weights=os.path.exists(os.path.join(directory, WEIGHTS_NAME))))
    return EdgeModel(directory, manifest, backend, threads)


__all__ = ["BACKENDS", "EdgeModel", "OnnxSession", "TFLiteSession", "available_backends", "load"]
