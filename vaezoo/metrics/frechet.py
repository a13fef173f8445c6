"""Frechet distance between feature sets (the FID formula of Heusel et al., 2017), with a
small classifier per data set as the feature extractor instead of Inception.

The classifiers ship with vaezoo (``vaezoo/metrics/classifiers/<data>.weights.h5`` plus a
``<data>.json`` record of their sha256, training run and test accuracy). They are
trained by ``benchmarks/train_feature_classifiers.py`` with :func:`train_feature_classifier`:

- ``fashion_mnist``: the 10 clothing classes.
- ``binarized_mnist``: no labels ship with it, so the task is self-supervised rotation
  prediction (Gidaris et al., 2018): which of 0/90/180/270 degrees was an image turned by.
- ``shapes``: one head per generative factor (shape, scale, orientation, pos_x, pos_y).

The features are the 64 ReLU units before the heads. Distances computed with these
classifiers are comparable only with each other (not with published FIDs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

#: Where the shipped classifiers live.
CLASSIFIER_DIR = pathlib.Path(__file__).resolve().parent / "classifiers"
FEATURE_UNITS = 64
_CONV_FILTERS = (32, 64, 64, 64)
_SAMPLE_CHUNK = 500


def frechet_distance_from_moments(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||m_a - m_b||^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)), the Frechet distance of two Gaussians.

    The trace of the matrix square root is the sum of the square roots of the
    eigenvalues of C_a^(1/2) C_b C_a^(1/2) (symmetric, so ``eigh`` is exact and stable).

    Example:
        >>> frechet_distance_from_moments(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1))  # 1 + (2 - 1)^2
        2.0
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    diff = mean_a - mean_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 3))
        >>> frechet_distance(x, x) < 1e-9, round(frechet_distance(x, x + 2.0), 6)
        (True, 12.0)
    """
    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"need feature sets (N, D) and (M, D), got {features_a.shape} and {features_b.shape}")
    if min(len(features_a), len(features_b)) < 2:
        raise ValueError("each feature set needs at least two rows for a covariance")
    return frechet_distance_from_moments(
        features_a.mean(0), np.cov(features_a, rowvar=False), features_b.mean(0), np.cov(features_b, rowvar=False)
    )


@dataclasses.dataclass(frozen=True)
class ClassifierTask:
    """What the feature classifier of one data set predicts.

    Attributes:
        data: the data set name (``vaezoo.datasets``).
        image_shape: (H, W, C) of its images.
        heads: (name, number of classes) of each output.
        description: one line for the record.

    Example:
        >>> TASKS["shapes"].heads[0]
        ('shape', 3)
    """

    data: str
    image_shape: tuple[int, int, int]
    heads: tuple[tuple[str, int], ...]
    description: str


TASKS = {
    "fashion_mnist": ClassifierTask("fashion_mnist", (28, 28, 1), (("label", 10),), "the 10 Fashion-MNIST classes"),
    "binarized_mnist": ClassifierTask(
        "binarized_mnist", (28, 28, 1), (("rotation", 4),), "rotation by 0/90/180/270 degrees (self-supervised)"
    ),
    "shapes": ClassifierTask(
        "shapes",
        (64, 64, 1),
        (("shape", 3), ("scale", 6), ("orientation", 40), ("pos_x", 32), ("pos_y", 32)),
        "the five generative factors",
    ),
}


def _task(data_name: str) -> ClassifierTask:
    if data_name not in TASKS:
        raise ValueError(f"no feature classifier for data set {data_name!r}; available: {sorted(TASKS)}")
    return TASKS[data_name]


def build_feature_classifier(data_name: str):
    """The (untrained) classifier of ``data_name``: stride-2 3x3 convolutions down to at
    most 4x4, Dense(64, relu) named ``features``, one logits head per task output.

    Example:
        >>> build_feature_classifier("fashion_mnist").get_layer("features").units
        64
    """
    from vaezoo._tf import keras

    task = _task(data_name)
    inputs = keras.Input(task.image_shape)
    h, side = inputs, task.image_shape[0]
    for filters in _CONV_FILTERS:
        if side <= 4:
            break
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(h)
        side = (side + 1) // 2
    features = keras.layers.Dense(FEATURE_UNITS, activation="relu", name="features")(keras.layers.Flatten()(h))
    outputs = {name: keras.layers.Dense(k, name=name)(features) for name, k in task.heads}
    return keras.Model(inputs, outputs, name=f"{data_name}_classifier")


def classifier_targets(data_name: str, x: np.ndarray, labels: np.ndarray | None, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Inputs and per-head labels of the classifier task for one split.

    Args:
        data_name: the data set.
        x: the split's images.
        labels: the split's ``y`` (fashion_mnist) or ``factors`` (shapes); unused for
            binarized_mnist, whose images are rotated by a random multiple of 90 degrees.
        seed: seed of the rotations.

    Example:
        >>> x, targets = classifier_targets("binarized_mnist", np.zeros((4, 28, 28, 1)), None)
        >>> x.shape, sorted(targets)
        ((4, 28, 28, 1), ['rotation'])
    """
    task = _task(data_name)
    if data_name == "binarized_mnist":
        turns = np.random.default_rng(seed).integers(0, 4, len(x))
        rotated = np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(x, turns)]) if len(x) else x
        return rotated, {"rotation": turns}
    columns = np.asarray(labels).reshape(len(x), -1)
    return x, {name: columns[:, i] for i, (name, _) in enumerate(task.heads)}


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_feature_classifier(
    data_name: str,
    out_dir: str | pathlib.Path = CLASSIFIER_DIR,
    epochs: int = 5,
    limit: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    verbose: int = 0,
    **load_options: Any,
) -> dict:
    """Train the feature classifier of ``data_name``, write ``<data>.weights.h5`` and
    ``<data>.json`` (sha256, test accuracy per head) to ``out_dir``, return the record.
    ``load_options`` go to :func:`vaezoo.datasets.load` (e.g. ``num_train`` for shapes).

    Example:
        >>> import tempfile
        >>> record = train_feature_classifier("shapes", tempfile.mkdtemp(), epochs=1, limit=64)
        >>> sorted(record["test_accuracy"])
        ['orientation', 'pos_x', 'pos_y', 'scale', 'shape']
    """
    from vaezoo import datasets
    from vaezoo._tf import keras

    keras.utils.set_random_seed(seed)
    data = datasets.load(data_name, limit=limit, **load_options)
    splits = {}
    for offset, name in enumerate(("train", "valid", "test")):
        split = getattr(data, name)
        splits[name] = classifier_targets(data_name, split.x, split.factors if split.y is None else split.y, seed + offset)
    model = build_feature_classifier(data_name)
    heads = [name for name, _ in _task(data_name).heads]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={h: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for h in heads},
        metrics={h: ["accuracy"] for h in heads},
    )
    model.fit(*splits["train"], validation_data=splits["valid"], epochs=epochs, batch_size=batch_size, verbose=verbose)
    x_test, y_test = splits["test"]
    logits = model.predict(x_test, batch_size=512, verbose=0)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{data_name}.weights.h5"
    shipped = build_feature_classifier(data_name)  # uncompiled: the file holds no optimizer state
    shipped.set_weights(model.get_weights())
    shipped.save_weights(weights)
    record = {
        "data": data_name,
        "task": _task(data_name).description,
        "weights": weights.name,
        "sha256": _digest(weights),
        "parameters": int(model.count_params()),
        "epochs": int(epochs),
        "train_examples": len(splits["train"][0]),
        "load_options": load_options,
        "test_examples": len(x_test),
        "test_accuracy": {h: round(float(np.mean(np.argmax(logits[h], 1) == y_test[h])), 4) for h in heads},
        "seed": int(seed),
    }
    (out_dir / f"{data_name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _load_classifier(data_name: str, directory: str | pathlib.Path = CLASSIFIER_DIR):
    """The shipped classifier of ``data_name``, its weights checked against their sha256."""
    directory = pathlib.Path(directory)
    record_path = directory / f"{data_name}.json"
    _task(data_name)
    if not record_path.exists():
        raise FileNotFoundError(f"no trained feature classifier for {data_name!r} in {directory}")
    record = json.loads(record_path.read_text())
    weights = directory / record["weights"]
    if _digest(weights) != record["sha256"]:
        raise ValueError(f"{weights} does not match the sha256 in {record_path}")
    classifier = build_feature_classifier(data_name)
    classifier.load_weights(weights)
    return classifier


def load_feature_extractor(data_name: str, directory: str | pathlib.Path = CLASSIFIER_DIR, batch_size: int = 512) -> Callable[[np.ndarray], np.ndarray]:
    """The trained classifier of ``data_name`` as a function images -> features (N, 64).

    The weights file must match the sha256 in its record.

    Example:
        >>> load_feature_extractor("fashion_mnist")(np.zeros((3, 28, 28, 1), "float32")).shape
        (3, 64)
    """
    from vaezoo._tf import keras

    classifier = _load_classifier(data_name, directory)
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output)
    return lambda x: np.asarray(extractor.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0), np.float64)


def classify(x: np.ndarray, data_name: str, directory: str | pathlib.Path = CLASSIFIER_DIR, batch_size: int = 512) -> np.ndarray:
    """The shipped classifier's prediction of its first task head for each image, e.g.
    the Fashion-MNIST class of generated samples (for conditional models).

    Example:
        >>> classify(np.zeros((2, 28, 28, 1), "float32"), "fashion_mnist").shape
        (2,)
    """
    classifier = _load_classifier(data_name, directory)
    logits = classifier.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0)
    return np.argmax(logits[_task(data_name).heads[0][0]], axis=-1)


def model_samples(model, n: int, seed: int = 0, mean: bool = True) -> np.ndarray:
    """``n`` samples of ``model`` drawn in chunks of 500 (chunk i uses seed ``seed * 10007 + i``).

    Example:
        >>> import vaezoo
        >>> model_samples(vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2), 3).shape
        (3, 28, 28, 1)
    """
    return np.concatenate(
        [
            model.sample(min(_SAMPLE_CHUNK, n - start), seed=seed * 10007 + i, mean=mean)
            for i, start in enumerate(range(0, n, _SAMPLE_CHUNK))
        ]
    )


def frechet_score(model, x_real: np.ndarray, data_name: str, num_samples: int | None = None, seed: int = 0, mean: bool = True) -> float:
    """Frechet distance between the classifier features of ``x_real`` and of model samples.

    Args:
        model: a vaezoo model trained on ``data_name``.
        x_real: real images (e.g. the test split).
        data_name: which shipped classifier to use.
        num_samples: model samples to draw (default: as many as ``x_real``).
        seed: sampling seed.
        mean: score the likelihood's mean (True) or samples of p(x|z).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> frechet_score(model, np.zeros((4, 28, 28, 1)), "fashion_mnist") > 0
        True
    """
    features = load_feature_extractor(data_name)
    samples = model_samples(model, num_samples or len(x_real), seed, mean)
    return frechet_distance(features(x_real), features(samples))
