"""Hostile files and inputs: tampered and corrupt model files, fuzzed data-file parsers
and fuzzed model inputs. Every input must give a result that is right or a clear
exception (an expected type, with a message); never a crash, a hang, a huge
allocation or a silently wrong answer. Each test counts what it tried."""

from __future__ import annotations

import collections
import io
import json
import os
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from helpers import weights_of

import vaezoo
from vaezoo.datasets.sources import parse_amat, parse_idx

CLEAR = (ValueError, TypeError, OSError, MemoryError, KeyError, zipfile.BadZipFile)


def _outcome(fn, *args, **kwargs) -> str:
    """'ok', or the exception's type name after checking it is a clear one."""
    try:
        fn(*args, **kwargs)
    except CLEAR as err:
        assert str(err), f"{type(err).__name__} without a message"
        return type(err).__name__
    return "ok"


def _report(what: str, outcomes: collections.Counter) -> None:
    print(f"{what}: {sum(outcomes.values())} inputs -> {dict(sorted(outcomes.items()))}")


# --------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(bytes of a saved .keras file, its config.json as a dict, bytes of its weights file)."""
    folder = tmp_path_factory.mktemp("saved")
    model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
    model.save(str(folder / "m.keras"))
    model.save_weights(str(folder / "m.weights.h5"))
    raw = (folder / "m.keras").read_bytes()
    config = json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("config.json"))
    return raw, config, (folder / "m.weights.h5").read_bytes()


def _rezip(raw: bytes, replace: dict[str, bytes | None]) -> bytes:
    """The .keras archive ``raw`` with some members replaced (None: removed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename in replace:
                if replace[item.filename] is not None:
                    dst.writestr(item, replace[item.filename])
            else:
                dst.writestr(item, src.read(item.filename))
    return out.getvalue()


def _tampered_configs(config, marker: str) -> dict[str, dict]:
    """config.json variants that try to smuggle code or absurd sizes into a model."""
    from vaezoo._tf import keras

    evil = keras.layers.Lambda(lambda z: open(marker, "w").close() or z)  # writes the marker if ever run
    lam = keras.saving.serialize_keras_object(evil)

    def edit(path: list, value, base=None):
        c = json.loads(json.dumps(base or config))
        node = c
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return c

    return {
        "prior is a Lambda layer": edit(["config", "prior"], lam),
        "the model is a Lambda layer": lam,
        "dtype policy is a Lambda layer": edit(["config", "dtype"], lam),
        "unknown class": edit(["registered_name"], "vaezoo>EvilVAE", edit(["class_name"], "EvilVAE")),
        "class from module os": {**config, "module": "os", "class_name": "system", "registered_name": None},
        "class from builtins": {**config, "module": "builtins", "class_name": "eval", "registered_name": "builtins>eval"},
        "prior from subprocess": edit(["config", "prior"], {"module": "subprocess", "class_name": "Popen", "config": {"args": ["touch", marker]}, "registered_name": None}),
        "function object as prior": edit(["config", "prior"], {"class_name": "function", "config": "system", "module": "os", "registered_name": None}),
        "huge latent_dim": edit(["config", "latent_dim"], 10**9),
        "huge hidden layer": edit(["config", "hidden_units"], [10**8]),
        "huge data_shape": edit(["config", "data_shape"], [10**6, 10**6, 1]),
        "negative width": edit(["config", "hidden_units"], [-8]),
        "unknown network": edit(["config", "network"], "../../etc/passwd"),
        "activation 'eval'": edit(["config", "activation"], "eval"),
        "unknown likelihood": edit(["config", "likelihood"], "__import__"),
        "likelihood option is a Lambda": edit(["config", "likelihood_options"], {"sigma": lam}),
        "string latent_dim": edit(["config", "latent_dim"], "2; import os"),
        "no config": edit(["config"], None),
    }


def test_tampered_model_files_are_refused_under_safe_mode(saved, tmp_path):
    raw, config, _ = saved
    marker = str(tmp_path / "code-ran")
    outcomes = collections.Counter()
    for case, tampered in _tampered_configs(config, marker).items():
        path = tmp_path / "tampered.keras"
        path.write_bytes(_rezip(raw, {"config.json": json.dumps(tampered).encode()}))
        started = time.perf_counter()
        with pytest.raises(CLEAR) as info:
            vaezoo.load_model(str(path))
        assert time.perf_counter() - started < 60, case
        outcomes[type(info.value).__name__] += 1
        if case in ("prior is a Lambda layer", "the model is a Lambda layer"):
            assert "safe_mode" in str(info.value), (case, str(info.value)[:300])
        if "unknown class" in case or "module" in case:
            assert "Could not locate" in str(info.value) or "safe_mode" in str(info.value), (case, str(info.value)[:300])
        assert not os.path.exists(marker), f"code ran while loading a file with {case}"
    _report("tampered .keras configs", outcomes)


def test_corrupt_model_and_weights_files_give_clear_errors(saved, tmp_path):
    raw, _config, weights = saved
    rng = np.random.default_rng(0)
    keras_files = {
        "empty": b"",
        "random bytes": rng.bytes(4096),
        "first half": raw[: len(raw) // 2],
        "last 10 bytes cut": raw[:-10],
        "config.json not JSON": _rezip(raw, {"config.json": b"{not json"}),
        "config.json missing": _rezip(raw, {"config.json": None}),
        "weights missing": _rezip(raw, {"model.weights.h5": None}),
        "weights truncated": _rezip(raw, {"model.weights.h5": zipfile.ZipFile(io.BytesIO(raw)).read("model.weights.h5")[:500]}),
        "weights random": _rezip(raw, {"model.weights.h5": rng.bytes(2000)}),
    }
    for flips in range(8):  # bit rot in random places of the archive
        damaged = bytearray(raw)
        for i in rng.integers(0, len(raw), 16):
            damaged[i] ^= 0xFF
        keras_files[f"16 flipped bytes #{flips}"] = bytes(damaged)
    outcomes = collections.Counter()
    reference = vaezoo.load_model(_write(tmp_path / "ok.keras", raw))
    for case, data in keras_files.items():
        path = _write(tmp_path / "bad.keras", data)
        try:
            model = vaezoo.load_model(path)
        except CLEAR as err:
            assert str(err), case
            outcomes[type(err).__name__] += 1
            continue
        # Damage the loader did not notice must not have changed the weights.
        for a, b in zip(weights_of(model), weights_of(reference)):
            np.testing.assert_array_equal(a, b, err_msg=case)
        outcomes["ok, identical weights"] += 1
    _report(".keras files", outcomes)

    model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
    before = weights_of(model)
    other = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=2)
    other.save_weights(str(tmp_path / "other.weights.h5"))
    weight_files = {
        "empty": b"",
        "random bytes": rng.bytes(4096),
        "first half": weights[: len(weights) // 2],
        "header only": weights[:512],
        "another architecture": (tmp_path / "other.weights.h5").read_bytes(),
    }
    outcomes = collections.Counter()
    for case, data in weight_files.items():
        path = _write(tmp_path / "bad.weights.h5", data)
        with pytest.raises(CLEAR) as info:
            model.load_weights(path)
        assert str(info.value), case
        outcomes[type(info.value).__name__] += 1
    for a, b in zip(weights_of(model), before):
        np.testing.assert_array_equal(a, b)
    _report("weights files", outcomes)


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# --------------------------------------------------------------------------- data-file parsers


def _reference_idx(data: bytes, ndim: int):
    """A plain re-implementation: the array, or None where the file is invalid."""
    if not 0 <= ndim <= 255 or len(data) < 4 + 4 * ndim or data[:4] != bytes([0, 0, 8, ndim]):
        return None
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = 1
    for d in shape:
        size *= d
    if len(data) != 4 + 4 * ndim + size:
        return None
    return np.frombuffer(data[4 + 4 * ndim :], np.uint8).reshape(shape)


def _idx(shape, rng) -> bytes:
    header = bytes([0, 0, 8, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)
    return header + rng.integers(0, 256, int(np.prod(shape)), dtype=np.uint8).tobytes()


def test_parse_idx_fuzz(tmp_path):
    rng = np.random.default_rng(1)
    cases: list[tuple[bytes, int]] = []
    for _ in range(150):  # random bytes, random rank
        cases.append((rng.bytes(int(rng.integers(0, 64))), int(rng.integers(0, 5))))
    for _ in range(150):  # valid files, then truncated, extended or with a flipped header byte
        shape = tuple(int(d) for d in rng.integers(0, 6, int(rng.integers(1, 4))))
        data = _idx(shape, rng)
        cases.append((data, len(shape)))
        cut = int(rng.integers(0, len(data) + 1))
        cases += [(data[:cut], len(shape)), (data + b"\0", len(shape)), (data, len(shape) + 1)]
        flipped = bytearray(data)
        flipped[int(rng.integers(0, 4 + 4 * len(shape)))] ^= 1 << int(rng.integers(0, 8))
        cases.append((bytes(flipped), len(shape)))
    # headers whose sizes overflow 64-bit products, or that promise gigabytes
    for dims in [(2**31, 2**31, 4), (2**32 - 1,) * 3, (2**16, 2**16), (2**32 - 1, 0, 7)]:
        header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
        cases += [(header, len(dims)), (header + b"\0" * 8, len(dims))]
    cases += [(b"\0\0\x08\x01\0\0\0\x02ab", -1), (b"\0\0\x08\x01\0\0\0\x02ab", 300)]
    outcomes = collections.Counter()
    for data, ndim in cases:
        expected = _reference_idx(data, ndim)
        try:
            got = parse_idx(data, ndim)
        except ValueError as err:
            assert expected is None, (data[:40], ndim, err)
            assert str(err)
            outcomes["ValueError"] += 1
            continue
        assert expected is not None, (data[:40], ndim)
        assert got.dtype == np.uint8 and got.shape == expected.shape and np.array_equal(got, expected)
        outcomes["ok, verified"] += 1
    _report("parse_idx", outcomes)
    assert outcomes["ok, verified"] > 100 and outcomes["ValueError"] > 300


def _reference_amat(data: bytes):
    if any(b not in b"01 \t\r\n" for b in data):
        return None
    rows = []
    for line in data.split(b"\n"):
        tokens = [t for t in re.split(rb"[ \t\r]+", line) if t]
        if not tokens:
            continue
        if any(t not in (b"0", b"1") for t in tokens) or len(tokens) != 784:
            return None
        rows.append([int(t) for t in tokens])
    return np.array(rows, np.uint8).reshape(-1, 28, 28)


def test_parse_amat_fuzz():
    rng = np.random.default_rng(2)
    alphabet = [b"0", b"1", b" ", b"\n", b"\t", b"\r", b"2", b"x", b"\x00", b"\xff", b"-", b"01"]
    cases: list[bytes] = []
    for _ in range(150):  # random text from an alphabet of good and bad tokens
        cases.append(b"".join(rng.choice(alphabet, int(rng.integers(0, 200)), p=[0.3, 0.3, 0.2, 0.05, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01])))
    for _ in range(150):  # valid files, then mutated
        lines = rng.integers(0, 2, (int(rng.integers(1, 4)), 784))
        sep = [b" ", b"\t", b"  "][int(rng.integers(0, 3))]
        end = [b"\n", b"\r\n"][int(rng.integers(0, 2))]
        data = b"".join(sep.join(str(v).encode() for v in row) + end for row in lines)
        if rng.random() < 0.3:
            data = data.rstrip(b"\r\n")  # no final newline
        cases.append(data)
        mutated = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            mutated[int(rng.integers(0, len(mutated)))] = alphabet[int(rng.integers(0, len(alphabet)))][0]
        cases += [bytes(mutated), data[: int(rng.integers(0, len(data)))], data + b"1", b"\n\n" + data + b"\n \n"]
    cases += [b"", b"\n", b" " * 1000, rng.bytes(1000), rng.bytes(0)]
    outcomes = collections.Counter()
    for data in cases:
        expected = _reference_amat(data)
        try:
            got = parse_amat(data)
        except ValueError as err:
            assert expected is None, (data[:80], err)
            outcomes["ValueError"] += 1
            continue
        assert expected is not None, data[:80]
        assert got.dtype == np.uint8 and got.shape == expected.shape and np.array_equal(got, expected), data[:80]
        outcomes["ok, verified"] += 1
    _report("parse_amat", outcomes)
    assert outcomes["ok, verified"] > 100 and outcomes["ValueError"] > 200


# --------------------------------------------------------------------------- model inputs


@pytest.fixture(scope="module")
def model():
    from vaezoo.training import compile_model

    return compile_model(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2), jit_compile=False)


def _random_inputs(rng) -> list:
    """Arrays of random bytes in every dtype and many shapes, and non-array objects."""
    inputs: list = []
    dtypes = ["bool", "int8", "uint8", "int32", "int64", "uint64", "float16", "float32", "float64",
              "complex64", "datetime64[s]", "timedelta64[s]", "U1", "S3", "V4", "O"]
    for _ in range(300):
        dtype = np.dtype(dtypes[int(rng.integers(0, len(dtypes)))])
        shape = [(int(rng.integers(0, 4)), 28, 28, 1), (int(rng.integers(1, 4)), 28, 28), (2, 27, 28, 1), (784,), (),
                 (1, 28, 28, 1, 1), (3, 1, 28, 28)][int(rng.integers(0, 7))]
        count = int(np.prod(shape))
        if dtype.kind == "O":
            arr = np.full(shape, [None, "x", 1.5, 1][int(rng.integers(0, 4))], dtype=object)
        else:
            arr = np.frombuffer(rng.bytes(count * dtype.itemsize), dtype).reshape(shape)
            if dtype.kind in "biu" and rng.random() < 0.5:
                arr = (arr % 2).astype(dtype)  # in the Bernoulli support
        inputs.append(arr)
    good = (rng.random((4, 28, 28, 1)) > 0.5).astype("float32")
    inputs += [
        None, "x", b"bytes", 3.5, {"x": good}, [[1, 2], [3]], [good[0], good[1][:, :5]], iter([good]),
        good.tolist(), good.astype("float16"), good.astype(bool), np.asfortranarray(good), good[::-1, ::2, ::2][:, :28],
        np.lib.stride_tricks.as_strided(good, (4, 28, 28, 1), (0,) + good.strides[1:]),
        np.ma.masked_array(good, mask=good > 0), np.broadcast_to(np.float32(0.5), (2, 28, 28, 1)),
    ]
    return inputs


def _verify_check(model, x) -> str:
    """check_data's outcome; when it accepts, the result must be the input as float32,
    in the likelihood's support."""
    try:
        got = model.check_data(x)
    except (ValueError, TypeError, MemoryError) as err:
        assert str(err)
        return type(err).__name__
    expected = np.asarray(x).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == expected.shape and np.array_equal(got, expected)
    assert expected.shape[1:] == model.data_shape and len(expected) > 0
    assert np.isin(got, (0.0, 1.0)).all()
    return "ok, verified"


def test_model_input_checks_fuzz(model):
    rng = np.random.default_rng(3)
    outcomes = collections.Counter(_verify_check(model, x) for x in _random_inputs(rng))
    _report("check_data", outcomes)
    assert outcomes["ok, verified"] >= 10 and outcomes["ValueError"] >= 100 and outcomes["TypeError"] >= 30

    before = weights_of(model)
    fit_outcomes = collections.Counter()
    for x in _random_inputs(np.random.default_rng(4))[::10]:
        if x is None or _verify_check(model, x) == "ok, verified":  # fit(None) is Keras's own error
            continue
        with pytest.raises((ValueError, TypeError, MemoryError)) as info:
            model.fit(x, epochs=1, batch_size=2, verbose=0)
        fit_outcomes[type(info.value).__name__] += 1
    for a, b in zip(weights_of(model), before):
        np.testing.assert_array_equal(a, b)  # refused before any step
    _report("fit with refused inputs", fit_outcomes)


def test_huge_broadcast_inputs_do_not_allocate(model):
    """A 0-stride view of shape (10**7, 28, 28, 1) is 31 GB as float32: checks must
    look at its distinct values only; whatever would copy it must refuse first."""
    zeros = np.broadcast_to(np.zeros((1, 28, 28, 1), np.float32), (10**7, 28, 28, 1))
    halves = np.broadcast_to(np.float64(0.5), (10**7, 28, 28, 1))
    nans = np.broadcast_to(np.full((1, 28, 28, 1), np.nan), (10**7, 28, 28, 1))
    ints = np.broadcast_to(np.ones((1, 28, 1, 1), np.uint8), (10**7, 28, 28, 1))
    beyond = np.broadcast_to(np.zeros((1, 28, 28, 1), np.float32), (10**9, 28, 28, 1))  # 3 TB
    outcomes = collections.Counter()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        checked = model.check_data(zeros)
        assert checked.shape == zeros.shape and not checked.any()
        assert model.check_data(ints).shape == ints.shape
        outcomes["ok (view)"] += 2
        with pytest.raises(ValueError, match="outside the support"):
            model.check_data(halves)
        with pytest.raises(ValueError, match="non-finite"):
            model.check_data(nans)
        outcomes["ValueError"] += 2
        for call in (
            lambda: model.fit(beyond, epochs=1, batch_size=64, verbose=0),
            lambda: model.evaluate(beyond, verbose=0),
            lambda: model.reconstruct(beyond),
            lambda: model.sample(10**12),
        ):
            with pytest.raises(MemoryError, match="GiB"):
                call()
            outcomes["MemoryError"] += 1
        for call in (lambda: model.reconstruct(zeros[:4], batch_size=0), lambda: model.elbo(zeros[:4], batch_size=-1)):
            with pytest.raises(ValueError, match="batch_size"):
                call()
            outcomes["ValueError"] += 1
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _report("huge and broadcast inputs", outcomes)
    print(f"  {seconds:.2f} s, peak traced allocation {peak / 2**20:.1f} MiB")
    assert peak < 256 * 2**20 and seconds < 60


def test_big_arrays_are_checked_in_chunks_with_exact_positions(model):
    from vaezoo.models.base import _CHECK_CHUNK

    rows = _CHECK_CHUNK // 784
    x = np.zeros((rows + 3000, 28, 28, 1), np.uint8)  # more than one chunk
    x[rows + 2000, 3, 4, 0] = 7
    where = rf"x\[{rows}:{rows + 3000}\]"
    with pytest.raises(ValueError, match=rf"{where} has 1 value\(s\) outside the support .*first: {where}\[2000, 3, 4, 0\] = np\.float32\(7\.0\)"):
        model.check_data(x)
    x[rows + 2000, 3, 4, 0] = 1
    checked = model.check_data(x)
    assert checked.dtype == np.float32 and checked[rows + 2000, 3, 4, 0] == 1.0 and checked.sum() == 1.0
