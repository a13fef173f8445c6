"""Metrics of trained models, each with one home:

- :mod:`~vaezoo.metrics.likelihood`: importance-sampled NLL, bits/dim, ELBO, KL per
  latent dimension, active units.
- :mod:`~vaezoo.metrics.disentanglement`: beta-VAE score, FactorVAE score, MIG, SAP and
  DCI as disentanglement_lib defines them (deviations listed there).
- :mod:`~vaezoo.metrics.frechet`: Frechet distance of classifier features.
- :mod:`~vaezoo.metrics.clustering`: Hungarian clustering accuracy, classification accuracy.

Importing this package needs numpy only; TensorFlow comes in through the model.
:func:`evaluate_metrics` computes any of :data:`METRICS` for a model and a data set.

Example:
    >>> from vaezoo import metrics
    >>> metrics.clustering_accuracy([0, 0, 1], [1, 1, 0])
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaezoo.metrics import clustering, disentanglement, frechet, likelihood
from vaezoo.metrics.clustering import (
    classification_accuracy,
    clustering_accuracy,
    kmeans,
    latent_clustering_accuracy,
    linear_probe_accuracy,
)
from vaezoo.metrics.disentanglement import (
    GroundTruth,
    beta_vae_score,
    dci,
    disentanglement_scores,
    factor_vae_score,
    mig,
    sap,
    shapes_ground_truth,
)
from vaezoo.metrics.frechet import (
    frechet_distance,
    frechet_score,
    load_feature_extractor,
)
from vaezoo.metrics.likelihood import (
    active_units,
    bits_per_dim,
    encoder_means,
    kl_per_dim,
    likelihood_metrics,
    posterior_moments,
)

#: Names :func:`evaluate_metrics` accepts.
METRICS = ("nll", "active_units", "kl_per_dim", *disentanglement.METRICS, "frechet", "clustering")


def parse_metric_names(text: str) -> list[str]:
    """Split a comma-separated list of metric names and check each one.

    Example:
        >>> parse_metric_names("nll, mig")
        ['nll', 'mig']
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    _check_names(names)
    return names


def _check_names(names: Sequence[str]) -> None:
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")


def _check_data(data, split: str, names: Sequence[str]) -> None:
    """Fail before any work when the data set cannot give a requested metric."""
    if set(names) & set(disentanglement.METRICS) and data.name != "shapes":
        raise ValueError(f"disentanglement metrics need ground-truth factors to render (the shapes data set), not {data.name!r}")
    if "clustering" in names and getattr(data, split).y is None:
        raise ValueError(f"metric 'clustering' needs class labels; {data.name!r} has none")
    if "frechet" in names and data.name not in frechet.TASKS:
        raise ValueError(f"metric 'frechet' has no feature classifier for {data.name!r}")


def evaluate_metrics(
    model,
    data,
    names: Sequence[str],
    split: str = "test",
    num_samples: int = 1000,
    num_points: int = 10000,
    seed: int = 0,
    batch_size: int = 100,
) -> dict[str, Any]:
    """Compute the metrics ``names`` (from :data:`METRICS`) of ``model`` on ``data``.

    Args:
        model: a vaezoo model.
        data: a :class:`vaezoo.datasets.Dataset`.
        names: which metrics.
        split: the split to score (``clustering``'s linear probe trains on ``train``).
        num_samples: importance samples per example for ``nll``.
        num_points: training points of the disentanglement metrics (held-out: half).
        seed: seed of every random draw.
        batch_size: examples per batch of the NLL estimate.

    Returns:
        A flat, JSON-ready dict.

    Example:
        >>> import vaezoo
        >>> from vaezoo.datasets import load
        >>> data = load("shapes", num_train=16, num_valid=4, num_test=16)
        >>> model = vaezoo.create_model("vae", data_shape=(64, 64, 1), hidden_units=(8,), latent_dim=2)
        >>> sorted(evaluate_metrics(model, data, ["active_units", "kl_per_dim"]))
        ['active_units', 'kl_per_dim', 'latent_dim']
    """
    _check_names(names)
    _check_data(data, split, names)
    x = getattr(data, split).x
    result: dict[str, Any] = {}
    if "nll" in names:
        result.update(likelihood_metrics(model, x, num_samples, batch_size, seed))
    if "active_units" in names:
        result["active_units"] = active_units(model, x)[0]
        result["latent_dim"] = int(model.latent_dim)
    if "kl_per_dim" in names:
        result["kl_per_dim"] = [round(float(v), 5) for v in kl_per_dim(model, x)]
    wanted = [name for name in disentanglement.METRICS if name in names]
    if wanted:
        result.update(
            disentanglement_scores(
                disentanglement.representation(model), shapes_ground_truth(), wanted, seed, num_points, num_points // 2
            )
        )
    if "frechet" in names:
        result["frechet"] = frechet_score(model, x, data.name, seed=seed)
    if "clustering" in names:
        labels = getattr(data, split).y
        codes = encoder_means(model, x)
        result["clustering_accuracy"] = latent_clustering_accuracy(codes, labels, seed=seed)
        train = data.train
        result["linear_probe_accuracy"] = linear_probe_accuracy(
            encoder_means(model, train.x[:num_points]), train.y[:num_points], codes, labels
        )
    return result


__all__ = [
    "METRICS",
    "GroundTruth",
    "active_units",
    "beta_vae_score",
    "bits_per_dim",
    "classification_accuracy",
    "clustering",
    "clustering_accuracy",
    "dci",
    "disentanglement",
    "disentanglement_scores",
    "encoder_means",
    "evaluate_metrics",
    "factor_vae_score",
    "frechet",
    "frechet_distance",
    "frechet_score",
    "kl_per_dim",
    "kmeans",
    "latent_clustering_accuracy",
    "likelihood",
    "likelihood_metrics",
    "linear_probe_accuracy",
    "load_feature_extractor",
    "mig",
    "parse_metric_names",
    "posterior_moments",
    "sap",
    "shapes_ground_truth",
]
