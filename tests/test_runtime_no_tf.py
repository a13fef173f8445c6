"""The edge runtime works in a process where TensorFlow, Keras and TFP cannot be imported.

The parent test trains and exports a small model and saves Keras's outputs; a child
Python process, whose ``sys.meta_path`` refuses ``tensorflow``, ``keras`` and
``tensorflow_probability``, loads the export on both backends, compares, and checks that
bad inputs raise clear errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vaezoo

CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = ("tensorflow", "keras", "tensorflow_probability", "tf_keras", "tf2onnx")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())

    import numpy as np
    import vaezoo
    import vaezoo.export
    import vaezoo.export.runtime as rt

    export_dir, expected_path = sys.argv[1], sys.argv[2]
    expected = np.load(expected_path)
    x, eps = expected["x"], expected["eps"]
    report = {}
    for backend in ("onnx", "tflite"):
        edge = rt.load(export_dir, backend=backend)
        got = {
            "loc": edge.encode(x)["loc"],
            "decoded": edge.decode(expected["loc"])["mean"],
            "sampled": edge.sample(eps)["mean"],
            "reconstructed": edge.reconstruct(x),
        }
        report[backend] = {k: float(np.abs(v - expected[k]).max()) for k, v in got.items()}
        errors = {}
        for label, bad in [
            ("shape", x[:, :, :27]),
            ("dtype", (x * 255).astype(np.uint8)),
            ("string", x.astype(str)),
            ("nan", np.full_like(x, np.nan)),
            ("empty", x[:0]),
            ("range", x * 255.0),
        ]:
            try:
                edge.encode(bad)
            except ValueError as err:
                errors[label] = str(err)
        report[backend]["errors"] = errors
    report["auto"] = rt.load(export_dir).backend
    report["tensorflow_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    try:
        vaezoo.export.export
    except ImportError as err:
        report["export_needs_tf"] = str(err)
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from vaezoo.export import export

    root = os.environ.get("VAEZOO_DATA", "/work/shared/data").split(os.pathsep)
    files = [os.path.join(r, "binarized_mnist", "test.npz") for r in root]
    found = [f for f in files if os.path.isfile(f)]
    if not found:
        pytest.fail(f"test data binarized_mnist/test.npz not found under VAEZOO_DATA={root}")
    with np.load(found[0]) as data:
        x = data["x"][:576, ..., None].astype(np.float32)
    model = vaezoo.create_model("vae", hidden_units=(32,), latent_dim=4)
    model.compile(optimizer="adam")
    model.fit(x[:512], epochs=1, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("edge")
    export(model, path / "export", check_data=x[512:])
    check_x = x[512:520]
    loc = np.asarray(model.encode(check_x).mean())
    eps = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.savez(
        path / "expected.npz",
        x=check_x,
        eps=eps,
        loc=loc,
        decoded=np.asarray(model.likelihood.mean(model.decoder_params(loc))),
        sampled=np.asarray(model.likelihood.mean(model.decoder_params(model.prior.from_noise(eps)))),
        reconstructed=np.asarray(model(check_x)),
    )
    return path


@pytest.mark.subprocess
def test_runtime_runs_without_tensorflow(export_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(export_dir / "export"), str(export_dir / "expected.npz")],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow_loaded"] == []
    assert report["auto"] == "onnx"
    assert "blocked" in report["export_needs_tf"]
    for backend in ("onnx", "tflite"):
        figures = report[backend]
        for key in ("loc", "decoded", "sampled", "reconstructed"):
            assert figures[key] <= 1e-5, (backend, key, figures[key])
        errors = figures["errors"]
        assert set(errors) == {"shape", "dtype", "string", "nan", "empty", "range"}, errors
        assert "expected (batch, 28, 28, 1)" in errors["shape"]
        assert "divide uint8 pixels by 255" in errors["dtype"]
        assert "NaN or Inf" in errors["nan"] and "empty batch" in errors["empty"]
        assert "outside [0.0, 1.0]" in errors["range"]
