"""Packaging facts: a light import, the registry, the console script."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vaezoo


def test_import_vaezoo_does_not_import_tensorflow():
    code = (
        "import sys, vaezoo, vaezoo.registry, vaezoo.datasets, vaezoo.validation\n"
        "vaezoo.list_models()\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tensorflow_probability') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_registry_rejects_duplicates_and_lists_known_names():
    with pytest.raises(ValueError, match="already registered"):
        vaezoo.register("vae", "vaezoo.models.vae:VAE", data="shapes", summary="", paper="")
    with pytest.raises(ValueError, match="registered models: .*vae"):
        vaezoo.create_model("no_such_model")


def test_every_registered_model_names_its_paper_and_data():
    from vaezoo import datasets

    for name in vaezoo.list_models():
        spec = vaezoo.get_spec(name)
        assert spec.paper and spec.summary
        assert spec.data in datasets.available()
        cls = spec.load_class()
        assert cls.__doc__ and ("20" in cls.__doc__), f"{cls.__name__} docstring must cite its paper"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = vaezoo.no_such_thing


def test_readme_model_table_has_a_measured_row_for_every_registered_model():
    """The README's model table (made by benchmarks/zoo.py) lists each registered model
    once, with its test NLL measured (a number, not a failure)."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        found = re.match(r"\| `(\w+)` \| (\w+) \|", line)
        if found and found.group(1) not in rows:
            rows[found.group(1)] = line
    assert sorted(rows) == vaezoo.list_models()
    for name, line in rows.items():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        assert cells[1] == vaezoo.get_spec(name).data, line
        assert re.fullmatch(r"-?\d+\.\d\d", cells[-4]), f"{name}: no measured test NLL in {line}"
