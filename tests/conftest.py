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
