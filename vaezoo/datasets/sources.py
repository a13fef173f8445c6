"""Finding, verifying and downloading the files of the file-backed data sets.

Each file-backed data set is searched for, in order, in:

1. every directory listed in the environment variable ``VAEZOO_DATA``
   (separated by ``os.pathsep``), in its subfolder ``fashion_mnist/`` or
   ``binarized_mnist/``;
2. the Keras cache, ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``, in its
   subfolder ``fashion-mnist/`` (the folder Keras itself uses) or
   ``binarized_mnist/``;
3. for Fashion-MNIST, :data:`DEBIAN_FASHION_DIR` (Debian's package
   ``dataset-fashion-mnist``).

The first directory that holds all files of a data set is used. If none does,
the missing files are downloaded into the Keras cache, from the canonical URLs
or, when ``VAEZOO_DATA_MIRROR`` is set, from that base URL followed by the
canonical URL's path.

Every file is verified by sha256 before use. Fashion-MNIST files are accepted
when either the gzip file or its decompressed content matches; binarized MNIST
``.npz`` files when either the file or the bytes of its uint8 array match.
Downloads are checked against the content hashes (the gzip bytes of mirrors
differ, the content does not). Larochelle's binarized MNIST ``.amat`` text
files are converted into ``.npz`` files after download.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import io
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from vaezoo.downloads import progress_stream, reason, stream

DATA_ENV = "VAEZOO_DATA"
MIRROR_ENV = "VAEZOO_DATA_MIRROR"
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"

FILE_SHA256: dict[str, dict[str, str]] = {
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
    "binarized_mnist": {
        "train.npz": "aa25735284f4f0f86b35f82338d11e55445964c1138f85c6a188c13040bc26b1",
        "valid.npz": "6a20b5bfe3fc8dc929c2c0c1eee1b0bbac339bdfb9a64e96cf9cbdd7de1c3fb0",
        "test.npz": "e98a7c89d36ff08ff3548ac02b35ceb0e4c68884adf091e1ac40888b3a38224a",
    },
}
"""sha256 of the local files as published in the shared data folder."""

CONTENT_SHA256: dict[str, dict[str, str]] = {
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "binarized_mnist": {
        "train.npz": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
        "valid.npz": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
        "test.npz": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
    },
}
"""sha256 of the content: decompressed IDX bytes, or uint8 array bytes (N, 28, 28)."""

_IDX_UBYTE = 0x08
_MNIST_PIXELS = 28 * 28
_DECODE_ERRORS = (ValueError, EOFError, OSError, KeyError, zlib.error, zipfile.BadZipFile)
_verified: set[tuple[str, int, int, str]] = set()


class DataIntegrityError(ValueError):
    """A data file does not match its expected sha256 or cannot be decoded."""


class DataUnavailableError(OSError):
    """A data set is neither found locally nor could be downloaded."""


@dataclasses.dataclass(frozen=True)
class _Source:
    local_dir: str
    keras_dir: str
    url: str
    files: dict[str, str]  # local file name -> remote file name
    decode_local: Callable[[bytes], bytes]
    decode_remote: Callable[[bytes], bytes]
    save: Callable[[Path, Path, bytes], None]


def parse_idx(data: bytes, ndim: int) -> np.ndarray:
    """Parses the bytes of an uncompressed IDX file of unsigned bytes.

    Args:
        data: the decompressed file content.
        ndim: the expected number of dimensions.

    Returns:
        uint8 array with the dimensions given in the header.

    Raises:
        ValueError: when the magic number, the rank or the size is wrong.

    Example:
        >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]), ndim=1).tolist()
        [7, 9]
    """
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX data of {len(data)} bytes is shorter than its {header}-byte header")
    expected_magic = bytes([0, 0, _IDX_UBYTE, ndim])
    if data[:4] != expected_magic:
        raise ValueError(f"IDX magic number is {data[:4].hex()}, expected {expected_magic.hex()}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(
            f"IDX data has {len(data)} bytes, its header {shape} implies {header + int(np.prod(shape))}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def parse_amat(data: bytes) -> np.ndarray:
    """Parses a binarized MNIST ``.amat`` file: one image a line, 784 digits 0/1.

    Args:
        data: the text file's bytes.

    Returns:
        uint8 array of shape (N, 28, 28) with values 0 or 1.

    Raises:
        ValueError: on characters other than 0, 1 and whitespace, values of more
            than one digit, or lines without exactly 784 values.

    Example:
        >>> parse_amat(b" ".join([b"1"] * 784) + b"\\n").shape
        (1, 28, 28)
    """
    chars = np.frombuffer(data, np.uint8)
    digit = (chars == ord("0")) | (chars == ord("1"))
    if not np.all(digit | np.isin(chars, np.frombuffer(b" \t\r\n", np.uint8))):
        raise ValueError("amat data contains characters other than 0, 1 and whitespace")
    if np.any(digit[1:] & digit[:-1]):
        raise ValueError("amat data contains values other than 0 and 1")
    line_ends = np.flatnonzero(chars == ord("\n"))
    if chars.size and chars[-1] != ord("\n"):
        line_ends = np.append(line_ends, chars.size - 1)
    per_line = np.diff(np.concatenate([[0], np.cumsum(digit)[line_ends]]))
    per_line = per_line[per_line > 0]
    if np.any(per_line != _MNIST_PIXELS):
        raise ValueError(f"amat lines must have {_MNIST_PIXELS} values, found lengths {sorted(set(per_line.tolist()))}")
    return (chars[digit] - ord("0")).reshape(-1, 28, 28)


def keras_cache_dir() -> Path:
    """Returns the Keras data set cache, ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``.

    Example:
        >>> keras_cache_dir().name
        'datasets'
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def search_places(name: str) -> list[tuple[Path, str]]:
    """Lists the local directories searched for a data set, in order.

    Args:
        name: a file-backed data set name.

    Returns:
        (directory, description of where it comes from) pairs.

    Example:
        >>> [why for _, why in search_places("fashion_mnist")][-1]
        'Debian package dataset-fashion-mnist'
    """
    source = _SOURCES[name]
    roots = [r for r in os.environ.get(DATA_ENV, "").split(os.pathsep) if r]
    places = [(Path(root) / source.local_dir, f"${DATA_ENV}") for root in roots]
    places.append((keras_cache_dir() / source.keras_dir, "Keras cache"))
    if name == "fashion_mnist":
        places.append((Path(DEBIAN_FASHION_DIR), "Debian package dataset-fashion-mnist"))
    return places


def find_local(name: str) -> str | None:
    """Returns the first searched directory holding every file of a data set.

    Nothing is verified or downloaded here.

    Args:
        name: a file-backed data set name.

    Returns:
        The directory, or None when no searched directory has all files.

    Example:
        >>> directory = find_local("binarized_mnist")
        >>> directory is None or directory in [str(d) for d, _ in search_places("binarized_mnist")]
        True
    """
    for directory, _ in search_places(name):
        if all((directory / file).is_file() for file in _SOURCES[name].files):
            return str(directory)
    return None


def fetch(name: str, *, download: bool = True, progress: bool | None = None) -> tuple[str, dict[str, bytes]]:
    """Finds (or downloads) and verifies the files of a data set.

    Args:
        name: a file-backed data set name.
        download: whether to download missing files into the Keras cache.
        progress: print download progress to stderr; None means only when
            stderr is a terminal.

    Returns:
        The directory used and, for each file name, its verified content
        (decompressed IDX bytes, or uint8 image bytes for binarized MNIST).

    Raises:
        DataIntegrityError: a file exists but does not match its sha256.
        DataUnavailableError: the files are not found and cannot be downloaded.

    Example:
        >>> try:
        ...     files = sorted(fetch("binarized_mnist", download=False)[1])
        ... except DataUnavailableError:  # not found locally
        ...     files = ["test.npz", "train.npz", "valid.npz"]
        >>> files
        ['test.npz', 'train.npz', 'valid.npz']
    """
    local = find_local(name)
    if local is not None:
        return local, {file: _read_verified(name, Path(local) / file) for file in _SOURCES[name].files}
    if not download:
        raise DataUnavailableError(f"{name}: files not found and download=False.\n{_searched(name)}")
    directory = keras_cache_dir() / _SOURCES[name].keras_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataUnavailableError(f"{name}: cannot create the cache {directory}: {err}\n{_searched(name)}") from err
    contents = {}
    for file in _SOURCES[name].files:
        path = directory / file
        if path.is_file():
            contents[file] = _read_verified(name, path)
        else:
            contents[file] = _download_verified(name, file, path, progress_stream(progress))
    return str(directory), contents


def url_for(name: str, file: str) -> str:
    """Returns the URL a data set file is downloaded from.

    The canonical URL, or with ``VAEZOO_DATA_MIRROR`` set, the mirror's base URL
    followed by the canonical URL's path.

    Args:
        name: a file-backed data set name.
        file: a local file name of that data set.

    Returns:
        The URL.

    Example:
        >>> url_for("fashion_mnist", "t10k-labels-idx1-ubyte.gz").rsplit("/", 1)[-1]
        't10k-labels-idx1-ubyte.gz'
    """
    source = _SOURCES[name]
    canonical = source.url + source.files[file]
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return canonical
    return mirror.rstrip("/") + urllib.parse.urlsplit(canonical).path


def sha256(data: bytes) -> str:
    """Returns the hex sha256 of some bytes.

    Example:
        >>> sha256(b"")[:8]
        'e3b0c442'
    """
    return hashlib.sha256(data).hexdigest()


def _read_verified(name: str, path: Path) -> bytes:
    expected_file = FILE_SHA256[name].get(path.name)
    expected = CONTENT_SHA256[name][path.name]
    raw = path.read_bytes()
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, expected)
    if key in _verified:
        return _SOURCES[name].decode_local(raw)
    actual_file = sha256(raw)
    content, actual = _decode(_SOURCES[name].decode_local, raw)
    if content is None or (actual_file != expected_file and actual != expected):
        raise DataIntegrityError(
            f"{path} is corrupt or truncated: expected sha256 {expected_file} (file) or {expected} (content), "
            f"got {actual_file} (file) and {actual} (content). Delete or replace it."
        )
    _verified.add(key)
    return content


def _download_verified(name: str, file: str, path: Path, progress: TextIO | None) -> bytes:
    url = url_for(name, file)
    fd, name_tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{file}-", suffix=".part")
    tmp = Path(name_tmp)
    try:
        _stream_to(fd, url, progress, name)
        content, actual = _decode(_SOURCES[name].decode_remote, tmp.read_bytes())
        expected = CONTENT_SHA256[name][file]
        if actual != expected:
            raise DataIntegrityError(
                f"{file} downloaded from {url} is corrupt: expected content sha256 {expected}, got {actual}. "
                "Nothing was saved."
            )
        _SOURCES[name].save(tmp, path, content)
    finally:
        tmp.unlink(missing_ok=True)
    return content


def _stream_to(fd: int, url: str, progress: TextIO | None, name: str) -> None:
    """Streams a URL into an open file descriptor, which it closes."""
    try:
        with os.fdopen(fd, "wb") as out:
            stream(url, out, progress)
    except (OSError, http.client.HTTPException) as err:
        if isinstance(err, urllib.error.HTTPError):
            err.close()  # it holds the open response
        raise DataUnavailableError(f"cannot download {url}: {reason(err)}\n{_searched(name)}") from err


def _decode(decode: Callable[[bytes], bytes], raw: bytes) -> tuple[bytes | None, str]:
    """Returns the decoded content and its sha256, or None and why decoding failed."""
    try:
        content = decode(raw)
    except _DECODE_ERRORS as err:
        return None, f"undecodable content ({type(err).__name__}: {err})"
    return content, sha256(content)


def _searched(name: str) -> str:
    lines = [f"  {directory}  ({why})" for directory, why in search_places(name)]
    if not os.environ.get(DATA_ENV):
        lines.insert(0, f"  ${DATA_ENV} is not set")
    files = ", ".join(_SOURCES[name].files)
    return f"Searched for {files} in:\n" + "\n".join(lines)


def _npz_content(raw: bytes) -> bytes:
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        x = archive["x"]
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"array x must be uint8 (N, 28, 28), got {x.dtype} {x.shape}")
    return x.tobytes()


def _amat_content(raw: bytes) -> bytes:
    return parse_amat(raw).tobytes()


def _save_npz(download: Path, path: Path, content: bytes) -> None:
    """Stores parsed images as ``.npz`` next to the download, then renames it atomically."""
    converted = download.with_name(download.name + ".npz")
    try:
        np.savez_compressed(converted, x=np.frombuffer(content, np.uint8).reshape(-1, 28, 28))
        os.replace(converted, path)
    finally:
        converted.unlink(missing_ok=True)


def _move(download: Path, path: Path, content: bytes) -> None:
    os.replace(download, path)


_SOURCES = {
    "fashion_mnist": _Source(
        local_dir="fashion_mnist",
        keras_dir="fashion-mnist",
        url=FASHION_URL,
        files={file: file for file in FILE_SHA256["fashion_mnist"]},
        decode_local=gzip.decompress,
        decode_remote=gzip.decompress,
        save=_move,
    ),
    "binarized_mnist": _Source(
        local_dir="binarized_mnist",
        keras_dir="binarized_mnist",
        url=BINARIZED_MNIST_URL,
        files={f"{split}.npz": f"binarized_mnist_{split}.amat" for split in ("train", "valid", "test")},
        decode_local=_npz_content,
        decode_remote=_amat_content,
        save=_save_npz,
    ),
}
