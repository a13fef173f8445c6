"""Presets: shipped weights reproduce their cards; resolution order; verified, atomic,
concurrent downloads from a loopback server; tampered files are refused."""

from __future__ import annotations

import json
import shutil
import threading
import zipfile

import numpy as np
import pytest
from helpers import loopback_server

import vaezoo
from vaezoo import presets
from vaezoo.presets import catalog, loading

SHIPPED = [p["name"] for p in vaezoo.list_presets() if p["shipped"]]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEZOO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A small trained-shape model written as a preset folder: (folder, files, model)."""
    folder = tmp_path_factory.mktemp("presets") / "tiny"
    model = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=3, seed=3)
    files = presets.save_preset(model, folder, {"name": "tiny", "data": "binarized_mnist"})
    return folder, files, model


def _add(monkeypatch, name, files, url=None):
    entry = catalog.Preset(
        name=name, model="vae", description="test", data="binarized_mnist", metric="m", value=0.0,
        check=None, files=files, url=url,
    )
    monkeypatch.setitem(presets.PRESETS, name, entry)
    return entry


def _outputs(model):
    x = (np.random.default_rng(0).random((4, 28, 28, 1)) > 0.5).astype("float32")
    return model.reconstruct(x)


def test_catalog_lists_shipped_presets_without_tensorflow():
    import subprocess
    import sys

    code = "import sys, vaezoo; rows = vaezoo.list_presets(); assert rows; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    for row in vaezoo.list_presets():
        assert row["model"] in vaezoo.list_models() and row["metric"] and np.isfinite(row["value"])
    assert SHIPPED, "no preset is shipped inside the package"
    assert sum(p["size_bytes"] for p in vaezoo.list_presets() if p["shipped"]) < 12 * 2**20


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_preset_reproduces_its_card(name, load_small):
    """The card's check figure (NLL, k=100, first 500 test examples, seed 0) within 0.1 nats."""
    from vaezoo import datasets, training

    entry = presets.PRESETS[name]
    model = vaezoo.from_preset(name)
    assert model.name == entry.model
    card = json.loads((loading.SHIPPED / name / loading.CARD).read_text())
    assert card["files"] == {k: v for k, v in entry.files.items() if k != loading.CARD}
    test = datasets.load(entry.data, download=False).test
    x = (test.x[:500], test.y[:500]) if getattr(model, "conditional", False) else test.x[:500]
    measured = training.evaluate(model, x, num_samples=100, seed=0)["nll"]
    assert abs(measured - entry.check) < 0.1, (measured, entry.check)


def test_folder_and_file_url_handles_load_the_same_weights(tiny_preset):
    folder, _, model = tiny_preset
    by_path, by_url = vaezoo.from_preset(str(folder)), vaezoo.from_preset(folder.as_uri())
    np.testing.assert_array_equal(_outputs(by_path), _outputs(by_url))
    np.testing.assert_allclose(_outputs(by_path), _outputs(model), atol=2e-3)  # float16 storage


def test_model_class_from_preset(tiny_preset):
    from vaezoo.models import VAE

    assert isinstance(VAE.from_preset(str(tiny_preset[0])), VAE)


def test_resolution_order_shipped_then_cache_then_download(tiny_preset, tmp_path, monkeypatch):
    folder, files, _ = tiny_preset
    with loopback_server() as httpd:
        for name in files:
            httpd.routes[f"/p/{name}"] = ((folder / name).read_bytes(), "ok")
        url = f"http://127.0.0.1:{httpd.server_address[1]}/p/"
        _add(monkeypatch, "tiny", files, url)
        assert presets.resolve("tiny") == loading.cache_dir() / "tiny"  # downloaded
        httpd.routes.clear()
        assert presets.resolve("tiny") == loading.cache_dir() / "tiny"  # cached: no server needed
    shipped = tmp_path / "shipped"
    shutil.copytree(folder, shipped / "tiny")
    monkeypatch.setattr(loading, "SHIPPED", shipped)
    assert presets.resolve("tiny") == shipped / "tiny"


@pytest.mark.parametrize("mode", ["error500", "short", "reset", "wrong_hash"])
def test_failed_downloads_leave_nothing_behind(mode, tiny_preset, monkeypatch):
    folder, files, _ = tiny_preset
    with loopback_server() as httpd:
        for name in files:
            body = (folder / name).read_bytes()
            bad = name == loading.WEIGHTS
            if bad and mode == "wrong_hash":
                body = body[:-1] + bytes([body[-1] ^ 1])
            httpd.routes[f"/p/{name}"] = (body, mode if bad and mode != "wrong_hash" else "ok")
        _add(monkeypatch, "tiny", files, f"http://127.0.0.1:{httpd.server_address[1]}/p/")
        with pytest.raises(presets.PresetError) as err:
            vaezoo.from_preset("tiny")
    message = str(err.value)
    if mode == "wrong_hash":
        assert files[loading.WEIGHTS] in message and "expected sha256" in message
    else:
        assert "cannot download" in message
    cached = loading.cache_dir() / "tiny"
    assert not (cached / loading.WEIGHTS).exists()
    assert not list(cached.glob("*.part")), list(cached.iterdir())


def test_concurrent_downloads_of_one_preset(tiny_preset, monkeypatch):
    folder, files, _model = tiny_preset
    with loopback_server() as httpd:
        for name in files:
            httpd.routes[f"/p/{name}"] = ((folder / name).read_bytes(), "ok")
        _add(monkeypatch, "tiny", files, f"http://127.0.0.1:{httpd.server_address[1]}/p/")
        errors: list[Exception] = []

        def fetch():
            try:
                presets.resolve("tiny")
            except Exception as err:  # noqa: BLE001 (every error is collected and asserted below)
                errors.append(err)

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    cached = loading.cache_dir() / "tiny"
    assert sorted(p.name for p in cached.iterdir()) == sorted(files)
    np.testing.assert_array_equal(_outputs(vaezoo.from_preset("tiny")), _outputs(vaezoo.from_preset(str(folder))))


def test_http_url_handle(tiny_preset):
    folder, files, _ = tiny_preset
    with loopback_server() as httpd:
        for name in files:
            httpd.routes[f"/presets/tiny/{name}"] = ((folder / name).read_bytes(), "ok")
        model = vaezoo.from_preset(f"http://127.0.0.1:{httpd.server_address[1]}/presets/tiny")
    np.testing.assert_array_equal(_outputs(model), _outputs(vaezoo.from_preset(str(folder))))


def test_corrupt_cached_file_is_reported(tiny_preset, monkeypatch):
    folder, files, _ = tiny_preset
    _add(monkeypatch, "tiny", files)
    cached = loading.cache_dir() / "tiny"
    shutil.copytree(folder, cached)
    (cached / loading.WEIGHTS).write_bytes((cached / loading.WEIGHTS).read_bytes()[:1000])
    with pytest.raises(presets.PresetError, match="model.weights.h5 is corrupt or was modified"):
        vaezoo.from_preset("tiny")


def test_unknown_handle_lists_the_catalog():
    with pytest.raises(presets.PresetError, match="unknown preset 'nope'.*catalog"):
        vaezoo.from_preset("nope")


_LAMBDA = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "evil",
        "function": {
            "class_name": "__lambda__",
            "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMEAAAAfABTACkBTqkAKQHaAXhyAQAAAHIBAAAA+gc8c3RkaW4+2gg8bGFtYmRhPgEAAADzAAAAAA==", "defaults": None, "closure": None},
        },
        "arguments": {},
    },
    "registered_name": None,
}


def test_tampered_preset_with_a_lambda_layer_is_refused(tiny_preset, tmp_path):
    folder, _, _ = tiny_preset
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    config = json.loads((tampered / loading.CONFIG).read_text())
    config["config"]["prior"] = _LAMBDA
    (tampered / loading.CONFIG).write_text(json.dumps(config))
    card = json.loads((tampered / loading.CARD).read_text())
    card["files"][loading.CONFIG] = loading._sha256(tampered / loading.CONFIG)  # an attacker fixes the hash
    (tampered / loading.CARD).write_text(json.dumps(card))
    with pytest.raises(presets.PresetError, match="cannot be loaded safely.*[Ll]ambda"):
        vaezoo.from_preset(str(tampered))


def test_tampered_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    path = tmp_path / "m.keras"
    vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2).save(str(path))
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["prior"] = _LAMBDA
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="[Ll]ambda"):
        vaezoo.load_model(str(path))
