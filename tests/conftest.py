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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--model-shard",
        default=None,
        metavar="I/N",
        help="run the tests parametrized by a registered model only for the I-th of N groups of models "
        "(round robin over vaezoo.list_models()), and every other test only in group 1; "
        "tests/run.sh uses it to keep each process's compiled functions small",
    )


def _shard(config: pytest.Config) -> tuple[int, int] | None:
    value = config.getoption("--model-shard")
    if value is None:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--model-shard wants I/N with integers 1 <= I <= N, got {value!r}") from None
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--model-shard wants I/N with integers 1 <= I <= N, got {value!r}")
    return index, count


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = _shard(config)
    if shard is None:
        return
    import vaezoo

    index, count = shard
    groups = {name: position % count + 1 for position, name in enumerate(vaezoo.list_models())}
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        models = [value for value in params.values() if isinstance(value, str) and value in groups]
        group = groups[models[0]] if models else 1
        (keep if group == index else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
