"""The ``manifest.json`` of an export directory: what every file is, how to feed it and
how closely it matched Keras when it was written. Pure stdlib; no TensorFlow.

Layout of ``manifest.json`` (``format_version`` 1)::

    {
      "format_version": 1,
      "vaezoo_version": "0.1.0",
      "tools": {"tensorflow": "2.21.0", "tf2onnx": "1.17.0", ...},
      "model": {"name": "vae", "class": "vaezoo>VAE", "config": {...},
                "weights": {"file": "model.weights.h5", "sha256": "...", "bytes": 123}},
      "precision": "fp32",
      "preprocessing": {"input": "x", "shape": [28, 28, 1], "dtype": "float32",
                        "range": [0.0, 1.0], "description": "..."},
      "postprocessing": {"likelihood": "Bernoulli", "params": ["logits"], ...},
      "parts": {"encoder": {"inputs": [{"name": "x", "shape": [null, 28, 28, 1],
                                        "dtype": "float32"}],
                            "outputs": [...],
                            "files": {"onnx": {"file": "encoder.fp32.onnx", ...}}}},
      "parity": {"tolerance": {...}, "data": "...", "results": [...]}
    }

Example:
    >>> info = TensorInfo("x", (None, 2), "float32")
    >>> TensorInfo.from_json(info.to_json()) == info
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.weights.h5"

FORMATS: dict[str, str] = {"onnx": ".onnx", "tflite": ".tflite"}
"""Export formats and their file extensions."""

PRECISIONS = ("fp32", "fp16", "int8")


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far an exported output may be from Keras.

    An output passes when ``max|got - ref| <= max(atol, rtol * max|ref|)`` (an absolute
    bound for outputs of magnitude up to ``atol / rtol``, a relative one above it) and,
    where ``mean_atol`` is set, ``mean|got - ref| <= max(mean_atol, mean_rtol * max|ref|)``.

    The mean bound is for quantized exports, whose worst element is a poor summary: 8-bit
    rounding moves a few elements far (a decoder's logits spanning [-97, 10] are stored in
    steps of 0.42, so a pixel probability near 0.5 moves by up to 0.05 from the output's
    rounding alone) while a broken quantization (a clipped range) moves many.

    Example:
        >>> Tolerance(atol=0.01, rtol=0.01).allowed(50.0)
        0.5
        >>> Tolerance(atol=0.25, rtol=0.1, mean_atol=0.01, mean_rtol=0.01).mean_allowed(1.0)
        0.01
    """

    atol: float
    rtol: float
    mean_atol: float | None = None
    mean_rtol: float = 0.0

    def __post_init__(self) -> None:
        if self.mean_atol is None and self.mean_rtol:
            raise ValueError("mean_rtol needs mean_atol: without it the mean is not bounded")

    def allowed(self, max_abs_ref: float) -> float:
        """The largest permitted max abs difference for a reference of this magnitude."""
        return max(self.atol, self.rtol * max_abs_ref)

    def mean_allowed(self, max_abs_ref: float) -> float | None:
        """The largest permitted mean abs difference, or None where only the max is bounded."""
        return None if self.mean_atol is None else max(self.mean_atol, self.mean_rtol * max_abs_ref)

    def to_json(self) -> dict[str, Any]:
        rule = "max|got - ref| <= max(atol, rtol * max|ref|)"
        if self.mean_atol is None:
            return {"atol": self.atol, "rtol": self.rtol, "rule": rule}
        rule += " and mean|got - ref| <= max(mean_atol, mean_rtol * max|ref|)"
        return {"atol": self.atol, "rtol": self.rtol, "mean_atol": self.mean_atol, "mean_rtol": self.mean_rtol, "rule": rule}


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-5, rtol=5e-6),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2),
    "int8": Tolerance(atol=0.25, rtol=0.1, mean_atol=0.01, mean_rtol=0.01),
}
"""Parity tolerance per precision (asserted at export time, by ``check`` and by tests)."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """Name, shape (``None`` for the dynamic batch dimension) and dtype of a tensor.

    Example:
        >>> TensorInfo("z", (None, 4), "float32").to_json()
        {'name': 'z', 'shape': [None, 4], 'dtype': 'float32'}
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TensorInfo:
        return cls(str(data["name"]), tuple(data["shape"]), str(data["dtype"]))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"abc")
        >>> sha256_file(f.name)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(directory: str | os.PathLike, name: str, **extra: Any) -> dict[str, Any]:
    """The manifest entry of a file in ``directory``: name, sha256 and size in bytes.

    Example:
        >>> import tempfile, pathlib
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "a.bin").write_bytes(b"abc")
        >>> file_entry(d, "a.bin", precision="fp32")["bytes"]
        3
    """
    path = os.path.join(directory, name)
    return {"file": name, "sha256": sha256_file(path), "bytes": os.path.getsize(path), **extra}


@dataclasses.dataclass
class Manifest:
    """The parsed ``manifest.json``; see the module docstring for the layout.

    Example:
        >>> m = Manifest.from_json({"format_version": 1, "parts": {}})
        >>> m.part_names
        []
    """

    data: dict[str, Any]

    @property
    def parts(self) -> dict[str, Any]:
        """Part name -> ``{"inputs", "outputs", "files"}``."""
        return self.data["parts"]

    @property
    def part_names(self) -> list[str]:
        """The exported parts, in export order."""
        return list(self.parts)

    @property
    def formats(self) -> list[str]:
        """Formats present for every part."""
        found = [set(part["files"]) for part in self.parts.values()]
        return [f for f in FORMATS if found and all(f in s for s in found)]

    @property
    def precision(self) -> str:
        return self.data["precision"]

    def inputs(self, part: str) -> list[TensorInfo]:
        """The input tensors of ``part``, in feed order."""
        return [TensorInfo.from_json(t) for t in self.parts[part]["inputs"]]

    def outputs(self, part: str) -> list[TensorInfo]:
        """The output tensors of ``part``, in the order of the exported graph's outputs."""
        return [TensorInfo.from_json(t) for t in self.parts[part]["outputs"]]

    def files(self, include_weights: bool = True) -> list[dict[str, Any]]:
        """Every file entry (model files, and the Keras weights unless excluded), for hash checks."""
        entries = [f for part in self.parts.values() for f in part["files"].values()]
        weights = self.data.get("model", {}).get("weights")
        return entries + ([weights] if weights and include_weights else [])

    def write(self, directory: str | os.PathLike) -> str:
        """Write ``manifest.json`` into ``directory``; returns its path."""
        path = os.path.join(directory, MANIFEST_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=False, allow_nan=False)
            handle.write("\n")
        return path

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"manifest format_version is {version!r}; this vaezoo reads version {FORMAT_VERSION}"
            )
        return cls(dict(data))

    @classmethod
    def read(cls, directory: str | os.PathLike) -> Manifest:
        """Read ``directory/manifest.json``; a missing directory or manifest is a
        ``FileNotFoundError``, a malformed one a ``ValueError``."""
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"export directory {os.fspath(directory)!r} does not exist")
        path = os.path.join(directory, MANIFEST_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path!r} not found: {os.fspath(directory)!r} is not a vaezoo export directory")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path!r} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or "parts" not in data:
            raise ValueError(f"{path!r} is not a vaezoo export manifest (no 'parts')")
        return cls.from_json(data)


def verify_files(directory: str | os.PathLike, entries: Sequence[Mapping[str, Any]]) -> None:
    """Check that every file of ``entries`` exists in ``directory`` with its sha256.

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: a file's sha256 differs (names the file and both hashes).
    """
    for entry in entries:
        path = os.path.join(directory, entry["file"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path!r} is listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise ValueError(
                f"{path!r} does not match the manifest: sha256 is {actual}, manifest says "
                f"{entry['sha256']}; the file was modified or corrupted after export"
            )
