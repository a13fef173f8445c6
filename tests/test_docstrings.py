"""Every ``Example:`` block in the installed package's docstrings runs as a test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import vaezoo.export

import vaezoo

MODULES = sorted(
    {info.name for info in pkgutil.walk_packages(vaezoo.__path__, prefix="vaezoo.")}
    | {"vaezoo.export"}
    | {info.name for info in pkgutil.walk_packages(vaezoo.export.__path__, prefix="vaezoo.export.")}
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"


def test_every_public_entry_point_has_an_example():
    from vaezoo import (
        callbacks,
        cli,
        datasets,
        metrics,
        plots,
        presets,
        registry,
        training,
        validation,
    )
    from vaezoo.models import VAE

    entry_points = [
        vaezoo.load_model, registry.create_model, registry.list_models, registry.register,
        datasets.load, plots.save_grid, plots.image_grid, training.train, training.evaluate,
        training.save_model, validation.check_array, cli.main, VAE, VAE.sample, VAE.reconstruct,
        VAE.elbo, VAE.log_likelihood, VAE.check_data, VAE.from_preset, vaezoo.from_preset, vaezoo.list_presets,
        presets.save_preset, metrics.evaluate_metrics, plots.save_traversals, plots.save_reconstructions,
        callbacks.ImageSummaries,
    ]
    missing = [f.__qualname__ for f in entry_points if ">>>" not in (f.__doc__ or "")]
    assert not missing, f"docstrings without a runnable example: {missing}"
