"""Tests of vaezoo.datasets on the real data of ../shared/data and a loopback HTTP server."""

from __future__ import annotations

import ast
import filecmp
import gzip
import itertools
import os
import shutil
import struct
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from helpers import loopback_server

from vaezoo import datasets
from vaezoo.datasets import DataIntegrityError, DataUnavailableError, shapes, sources

SHARED = Path(os.environ.get("VAEZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data").resolve()
FASHION_FILES = tuple(sources.FILE_SHA256["fashion_mnist"])
BINARIZED_FILES = ("train.npz", "valid.npz", "test.npz")
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Hides every real data location and points downloads at a closed local port."""
    monkeypatch.delenv("VAEZOO_DATA", raising=False)
    monkeypatch.setenv("VAEZOO_DATA_MIRROR", UNREACHABLE)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_DIR", str(tmp_path / "debian"))
    monkeypatch.setattr(sources, "_verified", set())
    return tmp_path


@pytest.fixture
def shared_dir():
    """The shared data folder, without setting VAEZOO_DATA."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not present")
    return SHARED


@pytest.fixture
def shared(shared_dir, monkeypatch):
    """Points VAEZOO_DATA at the shared data folder."""
    monkeypatch.setenv("VAEZOO_DATA", str(shared_dir))
    return shared_dir


def keras_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / "keras" / "datasets" / name


def link_files(source: Path, target: Path, files) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for file in files:
        (target / file).symlink_to(source / file)
    return target


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


# Real data ---------------------------------------------------------------------------


def test_available_and_unknown_name():
    assert datasets.available() == ["binarized_mnist", "fashion_mnist", "shapes"]
    assert issubclass(DataIntegrityError, ValueError) and issubclass(DataUnavailableError, OSError)
    with pytest.raises(ValueError, match="binarized_mnist, fashion_mnist, shapes"):
        datasets.load("mnist")
    with pytest.raises(ValueError, match="known data sets"):
        datasets.find_local("cifar10")


def test_binarized_mnist(shared):
    ds = datasets.load("binarized_mnist")
    assert (ds.name, ds.binary, ds.num_classes, ds.factor_names) == ("binarized_mnist", True, None, None)
    assert ds.source == str(shared / "binarized_mnist")
    sizes = {"train": 50000, "valid": 10000, "test": 10000}
    means = {"train": 0.13056, "valid": 0.13113, "test": 0.13251}
    for split_name, size in sizes.items():
        split = getattr(ds, split_name)
        assert split.x.shape == (size, 28, 28, 1)
        assert split.x.dtype == np.float32
        assert split.y is None and split.factors is None
        assert np.all((split.x == 0) | (split.x == 1))
        assert abs(split.x.mean() - means[split_name]) < 1e-4


def test_fashion_mnist(shared):
    ds = datasets.load("fashion_mnist")
    assert (ds.num_classes, ds.binary, ds.source) == (10, False, str(shared / "fashion_mnist"))
    for split, size in ((ds.train, 50000), (ds.valid, 10000), (ds.test, 10000)):
        assert split.x.shape == (size, 28, 28, 1) and split.x.dtype == np.float32
        assert split.y.shape == (size,) and split.y.dtype == np.int64
        assert split.x.min() == 0.0 and split.x.max() == 1.0
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert np.bincount(np.concatenate([ds.train.y, ds.valid.y])).tolist() == [6000] * 10
    assert np.all(np.abs(np.bincount(ds.valid.y) - 1000) < 60)
    assert abs(ds.train.x.mean() - 0.285499) < 1e-5
    assert abs(ds.test.x.mean() - 0.286849) < 1e-5
    assert ds.train.y[:5].tolist() == [9, 0, 0, 3, 0]


def test_fashion_binarize_and_limit(shared):
    ds = datasets.load("fashion_mnist", binarize=True, limit=300)
    assert ds.binary
    for split in (ds.train, ds.valid, ds.test):
        assert split.x.shape == (300, 28, 28, 1) and len(split.y) == 300
        assert np.all((split.x == 0) | (split.x == 1)) and 0 < split.x.mean() < 1
    grey = datasets.load("fashion_mnist", limit=300)
    np.testing.assert_array_equal(ds.train.x, (grey.train.x >= 0.5).astype(np.float32))
    np.testing.assert_array_equal(ds.valid.y, grey.valid.y)


def test_bad_arguments():
    with pytest.raises(ValueError, match="limit"):
        datasets.load("shapes", limit=-1)
    with pytest.raises(ValueError, match="limit"):
        datasets.load("binarized_mnist", limit=2.5)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['binarize'\].*progress"):
        datasets.load("binarized_mnist", binarize=True)
    with pytest.raises(TypeError, match="num_train"):
        datasets.load("shapes", num_trian=5)
    with pytest.raises(ValueError, match="num_valid"):
        datasets.load("shapes", num_valid=-3)
    with pytest.raises(TypeError, match="binarize"):
        datasets.load("fashion_mnist", binarize="yes")


def test_verified_hashes_are_cached(shared, monkeypatch):
    calls = []
    real = sources.sha256
    monkeypatch.setattr(sources, "sha256", lambda data: calls.append(len(data)) or real(data))
    first = datasets.load("binarized_mnist", limit=2)
    hashed = len(calls)
    second = datasets.load("binarized_mnist", limit=2)
    assert hashed >= 3 and len(calls) == hashed
    np.testing.assert_array_equal(first.test.x, second.test.x)


# Search order ------------------------------------------------------------------------


def test_env_var_wins_over_keras_cache(shared, isolated):
    link_files(shared / "binarized_mnist", keras_dir(isolated, "binarized_mnist"), BINARIZED_FILES)
    assert datasets.find_local("binarized_mnist") == str(shared / "binarized_mnist")
    assert datasets.load("binarized_mnist", limit=1).source == str(shared / "binarized_mnist")


def test_keras_cache_used_without_env_var(shared_dir, isolated):
    cache = link_files(shared_dir / "binarized_mnist", keras_dir(isolated, "binarized_mnist"), BINARIZED_FILES)
    assert datasets.find_local("binarized_mnist") == str(cache)
    ds = datasets.load("binarized_mnist", limit=4, download=False)
    assert ds.source == str(cache) and ds.train.x.shape == (4, 28, 28, 1)


def test_fashion_keras_folder_then_debian(shared_dir, isolated):
    debian = link_files(shared_dir / "fashion_mnist", isolated / "debian", FASHION_FILES)
    assert datasets.find_local("fashion_mnist") == str(debian)
    assert datasets.load("fashion_mnist", limit=2, download=False).source == str(debian)
    cache = link_files(shared_dir / "fashion_mnist", keras_dir(isolated, "fashion-mnist"), FASHION_FILES)
    assert datasets.find_local("fashion_mnist") == str(cache)


def test_several_roots_and_incomplete_folders(shared_dir, isolated, monkeypatch):
    partial = link_files(shared_dir / "binarized_mnist", isolated / "a" / "binarized_mnist", BINARIZED_FILES[:2])
    full = link_files(shared_dir / "binarized_mnist", isolated / "b" / "binarized_mnist", BINARIZED_FILES)
    monkeypatch.setenv("VAEZOO_DATA", os.pathsep.join([str(partial.parent), str(full.parent)]))
    assert datasets.find_local("binarized_mnist") == str(full)


def test_nothing_local_without_download(isolated):
    assert datasets.find_local("fashion_mnist") is None
    assert datasets.find_local("shapes") is None
    with pytest.raises(DataUnavailableError) as info:
        datasets.load("fashion_mnist", download=False)
    message = str(info.value)
    assert "VAEZOO_DATA is not set" in message
    assert str(keras_dir(isolated, "fashion-mnist")) in message
    assert str(isolated / "debian") in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert not (isolated / "keras").exists()


def test_corrupt_local_files(shared_dir, isolated, monkeypatch):
    root = isolated / "data"
    fashion = link_files(shared_dir / "fashion_mnist", root / "fashion_mnist", FASHION_FILES[:3])
    truncated = fashion / FASHION_FILES[3]
    truncated.write_bytes((shared_dir / "fashion_mnist" / FASHION_FILES[3]).read_bytes()[:-100])
    monkeypatch.setenv("VAEZOO_DATA", str(root))
    with pytest.raises(DataIntegrityError) as info:
        datasets.load("fashion_mnist")
    message = str(info.value)
    assert str(truncated) in message
    assert sources.FILE_SHA256["fashion_mnist"][FASHION_FILES[3]] in message
    assert sources.CONTENT_SHA256["fashion_mnist"][FASHION_FILES[3]] in message
    assert sources.sha256(truncated.read_bytes()) in message

    binarized = root / "binarized_mnist"
    binarized.mkdir()
    for file in BINARIZED_FILES:
        shutil.copy(shared_dir / "binarized_mnist" / file, binarized / file)
    assert datasets.load("binarized_mnist", limit=1).source == str(binarized)
    (binarized / "valid.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataIntegrityError, match=r"valid\.npz is corrupt.*undecodable"):
        datasets.load("binarized_mnist", limit=1)


# Parsing -----------------------------------------------------------------------------


def test_parse_idx():
    labels = bytes([0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 6])
    assert sources.parse_idx(labels, ndim=1).tolist() == [4, 5, 6]
    images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 2, 3) + bytes(range(12))
    assert sources.parse_idx(images, ndim=3).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="magic number is 00000803, expected 00000801"):
        sources.parse_idx(images, ndim=1)
    with pytest.raises(ValueError, match="magic number"):
        sources.parse_idx(bytes([0, 0, 13, 1]) + labels[4:], ndim=1)
    with pytest.raises(ValueError, match="has 10 bytes, its header"):
        sources.parse_idx(labels[:-1], ndim=1)
    with pytest.raises(ValueError, match="shorter than its 16-byte header"):
        sources.parse_idx(images[:10], ndim=3)


def test_parse_amat():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(sources.parse_amat(amat(x)), x)
    np.testing.assert_array_equal(sources.parse_amat(amat(x).rstrip(b"\n").replace(b"\n", b"\r\n")), x)
    with pytest.raises(ValueError, match="784 values"):
        sources.parse_amat(amat(x)[:-3])
    with pytest.raises(ValueError, match="other than 0 and 1"):
        sources.parse_amat(b"10 " + amat(x)[2:])
    with pytest.raises(ValueError, match="characters"):
        sources.parse_amat(b"2" + amat(x)[1:])


# Shapes ------------------------------------------------------------------------------


def test_shapes_splits():
    ds = datasets.load("shapes", num_train=600, num_valid=200, num_test=100)
    assert (ds.source, ds.binary, ds.num_classes) == ("procedural", True, None)
    assert ds.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    for split, size in ((ds.train, 600), (ds.valid, 200), (ds.test, 100)):
        assert split.x.shape == (size, 64, 64, 1) and split.x.dtype == np.float32
        assert split.factors.shape == (size, 5) and split.factors.dtype == np.int64
        assert split.y is None
        assert set(np.unique(split.x).tolist()) == {0.0, 1.0}
        assert split.x.sum(axis=(1, 2, 3)).min() > 0
        assert np.all(split.factors.min(axis=0) >= 0)
        assert np.all(split.factors.max(axis=0) < np.array(ds.factor_sizes))
        np.testing.assert_array_equal(shapes.render(split.factors), split.x)
    assert np.all(ds.train.factors.min(axis=0) == 0)
    assert ds.train.factors.max(axis=0).tolist() == [2, 5, 39, 31, 31]
    assert not np.array_equal(ds.train.factors[:100], ds.test.factors)


def test_shapes_determinism_and_limit():
    a = datasets.load("shapes", num_train=50, num_valid=10, num_test=10, seed=3)
    b = datasets.load("shapes", num_train=50, num_valid=10, num_test=10, seed=3)
    c = datasets.load("shapes", num_train=50, num_valid=10, num_test=10, seed=4)
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, name).x, getattr(b, name).x)
        np.testing.assert_array_equal(getattr(a, name).factors, getattr(b, name).factors)
        assert not np.array_equal(getattr(a, name).factors, getattr(c, name).factors)
    default = datasets.load("shapes", limit=7)
    assert [len(s) for s in (default.train, default.valid, default.test)] == [7, 7, 7]


def test_every_shape_visible_and_inside_frame():
    smallest = np.array(list(itertools.product(range(3), [0], range(40), range(32), range(32))))
    for start in range(0, len(smallest), 8192):
        assert shapes.render(smallest[start : start + 8192]).sum(axis=(1, 2, 3)).min() > 0
    corners = np.array(list(itertools.product(range(3), [5], range(40), [0, 31], [0, 31])))
    images = shapes.render(corners)[..., 0]
    border = images[:, 0].sum() + images[:, -1].sum() + images[:, :, 0].sum() + images[:, :, -1].sum()
    assert border == 0
    assert images[:, 1].sum() > 0 and images[:, :, 1].sum() > 0


def test_render_factors():
    base = np.array([[0, 5, 0, 16, 16], [1, 5, 0, 16, 16], [2, 5, 0, 16, 16]])
    square, ellipse, heart = shapes.render(base)[..., 0]
    assert [square.sum(), ellipse.sum(), heart.sum()] == [196, 157, 228]
    assert not np.array_equal(ellipse, ellipse.T)
    moved = shapes.render(np.array([[0, 5, 0, 31, 16]]))[0, ..., 0]
    assert np.argwhere(moved)[:, 1].mean() > np.argwhere(square)[:, 1].mean() + 10
    assert shapes.render(np.array([[0, 0, 0, 16, 16]])).sum() == 49
    with pytest.raises(ValueError, match="out of range"):
        shapes.render(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        shapes.render(np.zeros((2, 4), np.int64))
    assert shapes.render(np.zeros((0, 5), np.int64)).shape == (0, 64, 64, 1)


def test_render_is_fast():
    factors = shapes.sample_factors(10000, np.random.default_rng(0))
    start = time.perf_counter()
    images = shapes.render(factors)
    assert time.perf_counter() - start < 5.0
    assert images.shape == (10000, 64, 64, 1)


# Downloads from a loopback server ----------------------------------------------------


@pytest.fixture
def server(monkeypatch):
    """A loopback HTTP server set as VAEZOO_DATA_MIRROR; fill ``server.routes``."""
    with loopback_server() as httpd:
        monkeypatch.setenv("VAEZOO_DATA_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}/")
        yield httpd


def amat(x: np.ndarray) -> bytes:
    return b"".join(b" ".join(b"%d" % v for v in row) + b"\n" for row in x.reshape(len(x), -1))


@pytest.fixture
def tiny_binarized(server, monkeypatch):
    """Serves tiny synthetic binarized MNIST .amat files whose hashes replace the real ones."""
    rng = np.random.default_rng(0)
    arrays = {}
    for file, n in zip(BINARIZED_FILES, (5, 3, 2)):
        x = rng.integers(0, 2, size=(n, 28, 28), dtype=np.uint8)
        arrays[file] = x
        monkeypatch.setitem(sources.CONTENT_SHA256["binarized_mnist"], file, sources.sha256(x.tobytes()))
        server.routes[route("binarized_mnist", file)] = (amat(x), "ok")
    return arrays


def route(name: str, file: str) -> str:
    return urllib.parse.urlsplit(sources.url_for(name, file)).path


def test_urls(monkeypatch):
    monkeypatch.delenv("VAEZOO_DATA_MIRROR")
    assert sources.url_for("fashion_mnist", "t10k-images-idx3-ubyte.gz") == (
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/t10k-images-idx3-ubyte.gz"
    )
    assert sources.url_for("binarized_mnist", "valid.npz") == (
        "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_valid.amat"
    )
    monkeypatch.setenv("VAEZOO_DATA_MIRROR", "https://mirror.example/data/")
    assert sources.url_for("fashion_mnist", "train-labels-idx1-ubyte.gz") == (
        "https://mirror.example/data/tensorflow/tf-keras-datasets/train-labels-idx1-ubyte.gz"
    )


def test_download_then_cache(tiny_binarized, server, isolated, capsys):
    cache = keras_dir(isolated, "binarized_mnist")
    ds = datasets.load("binarized_mnist", progress=True)
    assert ds.source == str(cache)
    np.testing.assert_array_equal(ds.train.x[..., 0], tiny_binarized["train.npz"])
    np.testing.assert_array_equal(ds.test.x[..., 0], tiny_binarized["test.npz"])
    assert listing(cache) == sorted(BINARIZED_FILES)
    assert f"{server.server_address[1]}/~larocheh/public/datasets/binarized_mnist/" in capsys.readouterr().err
    server.routes.clear()
    again = datasets.load("binarized_mnist", download=False)
    assert again.source == str(cache)
    np.testing.assert_array_equal(again.valid.x, ds.valid.x)


def test_download_fills_missing_files(tiny_binarized, server, isolated):
    cache = keras_dir(isolated, "binarized_mnist")
    datasets.load("binarized_mnist")
    (cache / "valid.npz").unlink()
    server.routes.pop(route("binarized_mnist", "train.npz"))
    ds = datasets.load("binarized_mnist")
    np.testing.assert_array_equal(ds.valid.x[..., 0], tiny_binarized["valid.npz"])


def test_download_wrong_hash(tiny_binarized, isolated, monkeypatch):
    monkeypatch.setitem(sources.CONTENT_SHA256["binarized_mnist"], "train.npz", "0" * 64)
    with pytest.raises(DataIntegrityError) as info:
        datasets.load("binarized_mnist")
    message = str(info.value)
    assert "train.npz" in message and "binarized_mnist_train.amat" in message
    assert "0" * 64 in message and sources.sha256(tiny_binarized["train.npz"].tobytes()) in message
    assert listing(keras_dir(isolated, "binarized_mnist")) == []


@pytest.mark.parametrize("mode", ["short", "reset"])
def test_download_truncated_transfer(tiny_binarized, server, isolated, mode):
    path = route("binarized_mnist", "train.npz")
    server.routes[path] = (server.routes[path][0], mode)
    with pytest.raises(DataUnavailableError, match=r"binarized_mnist_train\.amat"):
        datasets.load("binarized_mnist")
    assert listing(keras_dir(isolated, "binarized_mnist")) == []


def test_download_truncated_body_without_length(tiny_binarized, server, isolated):
    path = route("binarized_mnist", "valid.npz")
    server.routes[path] = (server.routes[path][0], "no_length")
    with pytest.raises(DataIntegrityError, match=r"valid\.npz downloaded from .* undecodable"):
        datasets.load("binarized_mnist")
    assert listing(keras_dir(isolated, "binarized_mnist")) == ["train.npz"]


def test_download_http_error(tiny_binarized, server, isolated):
    path = route("binarized_mnist", "train.npz")
    server.routes[path] = (b"", "error500")
    with pytest.raises(DataUnavailableError) as info:
        datasets.load("binarized_mnist")
    message = str(info.value)
    assert f"http://127.0.0.1:{server.server_address[1]}{path}" in message and "HTTP 500" in message
    assert str(keras_dir(isolated, "binarized_mnist")) in message
    assert listing(keras_dir(isolated, "binarized_mnist")) == []


def test_download_connection_refused(isolated):
    with pytest.raises(DataUnavailableError, match=r"cannot download http://127\.0\.0\.1:9/tensorflow/"):
        datasets.load("fashion_mnist")
    assert listing(keras_dir(isolated, "fashion-mnist")) == []


def test_download_real_fashion_test_files(shared_dir, server, isolated):
    """Downloads the real t10k files: images as shared, labels recompressed as upstream's differ."""
    cache = link_files(shared_dir / "fashion_mnist", keras_dir(isolated, "fashion-mnist"), FASHION_FILES[:2])
    images, labels = FASHION_FILES[2:]
    server.routes[route("fashion_mnist", images)] = ((shared_dir / "fashion_mnist" / images).read_bytes(), "ok")
    recompressed = gzip.compress(gzip.decompress((shared_dir / "fashion_mnist" / labels).read_bytes()), 1, mtime=0)
    assert sources.sha256(recompressed) != sources.FILE_SHA256["fashion_mnist"][labels]
    server.routes[route("fashion_mnist", labels)] = (recompressed, "ok")
    ds = datasets.load("fashion_mnist")
    assert ds.source == str(cache)
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert abs(ds.test.x.mean() - 0.286849) < 1e-5
    assert listing(cache) == sorted(FASHION_FILES)
    assert not (cache / images).is_symlink()
    assert filecmp.cmp(cache / images, shared_dir / "fashion_mnist" / images, shallow=False)
    assert (cache / labels).read_bytes() == recompressed
    sources._verified.clear()
    assert datasets.load("fashion_mnist", download=False, limit=1).source == str(cache)


def test_modules_import_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    package = Path(datasets.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            own = {name for name in names if name.startswith("vaezoo.")}
            assert own <= {"vaezoo.downloads"} | {f"vaezoo.datasets.{m.stem}" for m in package.glob("*.py")}, own
            assert {name.split(".")[0] for name in set(names) - own} <= allowed, f"{module.name} imports {names}"
