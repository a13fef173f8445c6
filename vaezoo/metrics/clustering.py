"""Label-based metrics: classification accuracy, clustering accuracy with the Hungarian
matching of clusters to classes, k-means on latent codes and a linear probe."""

from __future__ import annotations

import numpy as np

from vaezoo.metrics._estimators import LogisticRegression


def _label_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError(f"need two non-empty label arrays of one length, got {len(y_true)} and {len(y_pred)}")
    return y_true, y_pred


def classification_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of predictions equal to the labels.

    Example:
        >>> classification_accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
        0.75
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def clustering_accuracy(y_true: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one map of clusters to classes (Hungarian algorithm).

    With more clusters than classes, the unmatched clusters count as errors.

    Example:
        >>> clustering_accuracy(np.array([0, 0, 1, 1, 2]), np.array([2, 2, 0, 0, 1]))
        1.0
    """
    from scipy.optimize import linear_sum_assignment

    y_true, clusters = _label_pair(y_true, clusters)
    classes, true_index = np.unique(y_true, return_inverse=True)
    groups, cluster_index = np.unique(clusters, return_inverse=True)
    counts = np.zeros((len(groups), len(classes)))
    np.add.at(counts, (cluster_index, true_index), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def kmeans(x: np.ndarray, num_clusters: int, seed: int = 0, num_iter: int = 100, num_init: int = 5) -> np.ndarray:
    """Cluster the rows of ``x`` with Lloyd's k-means (k-means++ seeding, best of
    ``num_init`` runs by inertia); returns the cluster index of every row.

    Example:
        >>> x = np.array([[0.0], [0.1], [5.0], [5.1]])
        >>> clustering_accuracy(np.array([0, 0, 1, 1]), kmeans(x, 2))
        1.0
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not 1 <= num_clusters <= len(x):
        raise ValueError(f"need x of shape (N, D) with N >= num_clusters >= 1, got {x.shape} and {num_clusters}")
    rng = np.random.default_rng(seed)
    best, best_inertia = np.zeros(len(x), np.int64), np.inf
    for _ in range(num_init):
        centers = x[rng.integers(len(x))][None]
        for _ in range(num_clusters - 1):
            distance = np.min(((x[:, None] - centers[None]) ** 2).sum(-1), 1)
            probabilities = distance / distance.sum() if distance.sum() > 0 else None
            centers = np.concatenate([centers, x[rng.choice(len(x), p=probabilities)][None]])
        assignment = np.full(len(x), -1)
        for _ in range(num_iter):
            distances = ((x[:, None] - centers[None]) ** 2).sum(-1)
            new = np.argmin(distances, 1)
            if np.array_equal(new, assignment):
                break
            assignment = new
            for c in range(num_clusters):
                if np.any(assignment == c):
                    centers[c] = x[assignment == c].mean(0)
        inertia = distances[np.arange(len(x)), assignment].sum()
        if inertia < best_inertia:
            best, best_inertia = assignment, inertia
    return best


def latent_clustering_accuracy(codes: np.ndarray, labels: np.ndarray, num_clusters: int | None = None, seed: int = 0) -> float:
    """k-means on latent codes (one cluster per class by default), scored by
    :func:`clustering_accuracy`.

    Example:
        >>> codes = np.array([[0.0, 1.0], [0.1, 1.0], [3.0, 0.0], [3.1, 0.0]])
        >>> latent_clustering_accuracy(codes, np.array([1, 1, 0, 0]))
        1.0
    """
    k = num_clusters or len(np.unique(labels))
    return clustering_accuracy(labels, kmeans(codes, k, seed))


def linear_probe_accuracy(codes: np.ndarray, labels: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray) -> float:
    """Test accuracy of a multinomial logistic regression fitted on (codes, labels).

    Example:
        >>> codes = np.array([[0.0], [0.2], [1.0], [1.2]])
        >>> linear_probe_accuracy(codes, np.array([0, 0, 1, 1]), codes[::-1], np.array([1, 1, 0, 0]))
        1.0
    """
    return classification_accuracy(labels_test, LogisticRegression().fit(codes, labels).predict(codes_test))
