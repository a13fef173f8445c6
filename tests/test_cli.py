"""The ``vaezoo`` console script, run as a user would run it (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

COMMANDS = ["list", "presets", "train", "evaluate", "sample", "plot", "quickstart", "export"]


def vaezoo(*args: str, env: dict | None = None, check: bool = True, timeout: int = 600):
    exe = os.path.join(os.path.dirname(sys.executable), "vaezoo")
    result = subprocess.run(
        [exe, *args], check=False, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"vaezoo {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command):
    result = vaezoo(*([command] if command else []), "--help")
    assert "usage: vaezoo" in result.stdout


def test_list_shows_every_registered_model():
    import vaezoo as vz

    out = vaezoo("list").stdout
    for name in vz.list_models():
        assert f"\n{name} " in out


def test_presets_lists_the_catalog():
    import vaezoo as vz

    out = vaezoo("presets").stdout
    for row in vz.list_presets():
        assert row["name"] in out


@pytest.mark.subprocess
def test_train_evaluate_sample(tmp_path):
    from matplotlib.image import imread

    model_file = str(tmp_path / "vae.keras")
    summary = tmp_path / "train.json"
    vaezoo(
        "train", "--model", "vae", "--data", "binarized_mnist", "--limit", "1000", "--epochs", "2",
        "--config", "hidden_units=[64]", "latent_dim=4", "--out", model_file, "--json", str(summary), "--verbose", "0",
    )
    trained = json.loads(summary.read_text())
    assert trained["epochs"] == 2 and trained["final"]["loss"] > 0 and trained["train_samples_per_second"] > 0

    result = json.loads(
        vaezoo("evaluate", model_file, "--k", "20", "--limit", "100", "--verbose", "0").stdout.split("\n}\n")[0] + "}"
    )
    assert result["examples"] == 100 and result["num_samples"] == 20
    assert -result["nll"] >= result["elbo"] - 1e-3
    assert result["bits_per_dim"] == pytest.approx(result["nll"] / (784 * np.log(2)))

    png = str(tmp_path / "grid.png")
    vaezoo("sample", model_file, "--n", "16", "--out", png)
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 28 * 4 and 0 <= image.min() and image.max() <= 1


def test_bad_arguments_fail_cleanly(tmp_path):
    unknown = vaezoo("train", "--model", "nope", "--out", str(tmp_path / "m.keras"), check=False)
    assert unknown.returncode == 2 and "unknown model 'nope'" in unknown.stderr
    missing = vaezoo("evaluate", str(tmp_path / "missing.keras"), check=False)
    assert missing.returncode != 0 and "no model file" in missing.stderr
    bad_config = vaezoo("train", "--model", "vae", "--config", "latent_dim", "--out", "x.keras", check=False)
    assert bad_config.returncode != 0 and "KEY=VALUE" in bad_config.stderr
    wrong_support = vaezoo(
        "train", "--model", "vae", "--data", "fashion_mnist", "--limit", "64", "--epochs", "1",
        "--out", str(tmp_path / "f.keras"), check=False,
    )
    assert wrong_support.returncode == 2 and "outside the support of the Bernoulli" in wrong_support.stderr


@pytest.mark.subprocess
def test_quickstart_falls_back_to_shapes_offline(quickstart_run):
    """With no local data the quickstart says so and trains on the procedural shapes; it
    writes its web page with the onnxruntime-web files of --ort-web, and without them and
    no registry it says in one line how to get them and goes on."""
    out, result, ort_web = quickstart_run
    assert "using the procedural 'shapes' data set" in result.stderr
    if ort_web is None:
        (hint,) = [line for line in result.stderr.splitlines() if "no web page" in line]
        assert "cannot download http://127.0.0.1:9/" in hint and "python -m vaezoo.export.web" in hint
        assert not (out / "web").exists()
    else:
        assert f"serve it with python -m http.server --bind 127.0.0.1 -d {out / 'web'}" in result.stdout
        assert (out / "web" / "index.html").is_file() and (out / "web" / "decoder.fp32.onnx").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"] == "shapes" and np.isfinite(summary["test"]["nll"])
    assert summary["export_parity_ok"] is True and "parity (fp32)" in result.stdout
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert {"encoder", "decoder", "sampler"} <= set(manifest["parts"])
    for name in ("model.keras", "samples.png", "reconstructions.png", "traversals.png", "training_log.csv"):
        assert (out / name).stat().st_size > 0, name
