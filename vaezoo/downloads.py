"""Streaming, sha256-verified, atomic downloads (standard library only).

A download is written to a temp file in the destination folder, checked, then renamed
over the destination with ``os.replace``; a failure of any kind removes the temp file.
Concurrent downloads of the same file each use their own temp file, so the destination
is always either absent or a complete, verified copy.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20


class IntegrityError(ValueError):
    """A file's sha256 is not the expected one."""


class DownloadError(OSError):
    """A URL could not be fetched completely."""


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     file_sha256(f.name)[:8]
        'e3b0c442'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def stream(url: str, out: io.BufferedIOBase, progress: TextIO | None = None) -> int:
    """Copy ``url`` into ``out`` chunk by chunk and return the byte count; with
    ``progress``, write a ``received/total bytes`` line there. A body shorter than its
    Content-Length raises ``ConnectionError``.

    Example:
        >>> import pathlib, tempfile
        >>> src = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = src.write_bytes(b"abc")
        >>> stream(src.as_uri(), io.BytesIO())
        3
    """
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        received = 0
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            received += len(chunk)
            if progress is not None:
                progress.write(f"\r{url}: {received}/{'?' if total is None else total} bytes")
        if progress is not None:
            progress.write("\n")
    if total is not None and received != total:
        raise ConnectionError(f"transfer truncated after {received} of {total} bytes")
    return received


def reason(err: BaseException) -> str:
    """A short human reason for a download failure."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def progress_stream(progress: bool | None) -> TextIO | None:
    """stderr when ``progress`` is True, or None (the default) and stderr is a terminal."""
    if progress is None:
        progress = sys.stderr.isatty()
    return sys.stderr if progress else None


def download_verified(url: str, dest: str | os.PathLike, sha256: str, progress: bool | None = None) -> Path:
    """Download ``url`` to ``dest`` if its sha256 is ``sha256``; atomic.

    Raises:
        DownloadError: HTTP error, connection failure or truncated transfer.
        IntegrityError: the bytes arrived but their hash differs (nothing is kept).

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "src").write_bytes(b"")
        >>> empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        >>> download_verified((folder / "src").as_uri(), folder / "dst", empty).name
        'dst'
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-", suffix=".part")
    tmp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                stream(url, out, progress_stream(progress))
        except (OSError, http.client.HTTPException) as err:
            if isinstance(err, urllib.error.HTTPError):
                err.close()
            raise DownloadError(f"cannot download {url}: {reason(err)}") from err
        actual = file_sha256(tmp)
        if actual != sha256:
            raise IntegrityError(
                f"{url} is corrupt: expected sha256 {sha256}, got {actual}. Nothing was saved to {dest}."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
