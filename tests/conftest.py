"""Shared fixtures: real data subsets and the small model overrides every registry test uses."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
REPO = TESTS.parent
# Test modules import shared helpers with `import helpers`; the repo root itself is kept
# off sys.path so that the installed vaezoo (with vaezoo.export) is the one tested.
sys.path.insert(0, str(TESTS))
# .ci/run sets VAEZOO_DATA; this default only helps a developer running pytest by hand.
os.environ.setdefault("VAEZOO_DATA", str(REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def load_small():
    """``load_small(name)`` -> a data set with at most 1024 examples per split (cached)."""
    from vaezoo import datasets

    cache: dict[str, object] = {}

    def load(name: str):
        if name not in cache:
            kwargs = {"num_train": 1024, "num_valid": 256, "num_test": 256} if name == "shapes" else {}
            cache[name] = datasets.load(name, limit=1024, download=False, **kwargs)
        return cache[name]

    return load


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory):
    """One ``vaezoo quickstart`` at its smallest settings in a fresh process, offline: no
    local data (it trains on the procedural shapes) and no reachable npm registry; the
    onnxruntime-web files are given with ``--ort-web`` where this machine has them (then
    it writes its web page). Shared by tests/test_cli.py and tests/test_web.py.

    Returns ``(out folder, CompletedProcess, the --ort-web folder or None)``.
    """
    import subprocess

    from vaezoo.export.web import find_ort_web

    ort_web = find_ort_web()
    empty = tmp_path_factory.mktemp("offline")
    out = tmp_path_factory.mktemp("quickstart") / "qs"
    dead = "http://127.0.0.1:9/"
    env = {**os.environ, "VAEZOO_DATA": str(empty), "KERAS_HOME": str(empty), "VAEZOO_DATA_MIRROR": dead,
           "npm_config_registry": dead}
    env.pop("VAEZOO_HOME", None)
    env.pop("VAEZOO_ORT_WEB", None)
    argv = ["quickstart", "--out", str(out), "--epochs", "1", "--limit", "256", "--eval-examples", "32", "--k", "5",
            "--verbose", "0", *(["--ort-web", str(ort_web)] if ort_web else [])]
    exe = os.path.join(os.path.dirname(sys.executable), "vaezoo")
    result = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=600, env=env, check=False)
    if result.returncode != 0:
        raise AssertionError(f"vaezoo {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return out, result, ort_web
