"""Small numpy classifiers that stand in for the scikit-learn models of disentanglement_lib.

vaezoo does not depend on scikit-learn, so the metrics fit these instead:

- :class:`LogisticRegression`: multinomial logistic regression with the L2 penalty of
  scikit-learn's default (``0.5 ||W||^2 + C * sum of cross-entropies``), fitted by
  L-BFGS (scipy) on standardised features.
- :class:`RandomForest`: bagged classification trees grown level by level on
  binned features (at most ``max_bins`` bins per feature; a feature with fewer
  distinct values is split exactly between them), with Gini impurity-decrease
  feature importances normalised per tree, as scikit-learn computes them.
- :class:`ThresholdClassifier`: one feature cut into bins, each bin voting for its
  class-balanced majority class (SAP's classifier for discrete factors).
"""

from __future__ import annotations

import numpy as np


def _labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {y.shape}")
    classes, index = np.unique(y, return_inverse=True)
    return classes, index.reshape(-1)


def _features(x: np.ndarray, n: int | None = None) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {x.shape}")
    if n is not None and len(x) != n:
        raise ValueError(f"features have {len(x)} rows but labels have {n}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or Inf")
    return x


class LogisticRegression:
    """Multinomial logistic regression, L2-penalised like scikit-learn's default.

    Args:
        c: inverse penalty strength C (scikit-learn's default is 1).
        balanced: weight each example by ``n / (num_classes * count(class))``.
        max_iter: L-BFGS iterations.

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> LogisticRegression().fit(x, np.array([0, 0, 1, 1])).predict(np.array([[0.2], [2.9]])).tolist()
        [0, 1]
    """

    def __init__(self, c: float = 1.0, balanced: bool = False, max_iter: int = 500) -> None:
        if not c > 0:
            raise ValueError(f"c must be > 0, got {c!r}")
        self.c = float(c)
        self.balanced = bool(balanced)
        self.max_iter = int(max_iter)

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
        """Fit on features ``x`` (N, D) and labels ``y`` (N,); returns self."""
        from scipy.optimize import minimize

        self.classes_, target = _labels(y)
        x = _features(x, len(target))
        self._mean = x.mean(0)
        self._scale = np.where(x.std(0) > 0, x.std(0), 1.0)
        xs = (x - self._mean) / self._scale
        n, d = xs.shape
        k = len(self.classes_)
        counts = np.bincount(target, minlength=k)
        weights = n / (k * counts[target]) if self.balanced else np.ones(n)
        onehot = np.eye(k)[target]

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[: d * k].reshape(d, k), theta[d * k :]
            logits = xs @ w + b
            logits -= logits.max(1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
            loss = 0.5 * np.sum(w * w) - self.c * np.sum(weights * log_p[np.arange(n), target])
            residual = (np.exp(log_p) - onehot) * (self.c * weights[:, None])
            return loss, np.concatenate([(w + xs.T @ residual).ravel(), residual.sum(0)])

        theta = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter}).x
        self._w, self._b = theta[: d * k].reshape(d, k), theta[d * k :]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each row of ``x``."""
        logits = (_features(x) - self._mean) / self._scale @ self._w + self._b
        return self.classes_[np.argmax(logits, 1)]


def _bin_edges(column: np.ndarray, max_bins: int) -> np.ndarray:
    """Split points of one feature: midpoints between distinct values when there are at
    most ``max_bins`` of them, else interior quantiles."""
    values = np.unique(column)
    if len(values) <= max_bins:
        return (values[1:] + values[:-1]) / 2
    return np.unique(np.quantile(column, np.linspace(0, 1, max_bins + 1)[1:-1]))


def _impurity(counts: np.ndarray) -> np.ndarray:
    """n * Gini impurity = n - sum_c count_c^2 / n over the last axis (0 for empty nodes)."""
    n = counts.sum(-1)
    return n - np.sum(counts * counts, -1) / np.maximum(n, 1)


class RandomForest:
    """Bagged classification trees on binned features, with Gini importances.

    Args:
        num_trees: trees in the forest.
        max_depth: depth of each tree.
        max_bins: most bins per feature (split candidates are bin boundaries).
        seed: seed of the bootstrap draws.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 2))
        >>> forest = RandomForest(num_trees=3, max_depth=2).fit(x, (x[:, 1] > 0).astype(int))
        >>> bool(forest.feature_importances_[1] > 0.9), float((forest.predict(x) == (x[:, 1] > 0)).mean())
        (True, 1.0)
    """

    def __init__(self, num_trees: int = 10, max_depth: int = 8, max_bins: int = 64, seed: int = 0) -> None:
        if min(num_trees, max_depth) < 1 or not 2 <= max_bins <= 255:
            raise ValueError("num_trees and max_depth must be >= 1 and max_bins in [2, 255]")
        self.num_trees, self.max_depth, self.max_bins, self.seed = int(num_trees), int(max_depth), int(max_bins), seed

    def _binned(self, x: np.ndarray) -> np.ndarray:
        return np.stack([np.searchsorted(e, col, side="left") for e, col in zip(self._edges, x.T)], 1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> RandomForest:
        """Fit on features ``x`` (N, D) and labels ``y`` (N,); returns self."""
        self.classes_, target = _labels(y)
        x = _features(x, len(target))
        self._edges = [_bin_edges(col, self.max_bins) for col in x.T]
        bins = self._binned(x)
        rng = np.random.default_rng(self.seed)
        self._trees = []
        importances = np.zeros(x.shape[1])
        for _ in range(self.num_trees):
            rows = rng.integers(0, len(x), len(x))
            tree, importance = self._grow(bins[rows], target[rows], rng)
            self._trees.append(tree)
            if importance.sum() > 0:
                importances += importance / importance.sum()
        self.feature_importances_ = importances / self.num_trees
        return self

    def _grow(self, bins: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> tuple[tuple, np.ndarray]:
        """One tree, level by level. A node that does not split sends all its rows to
        its left child, so every row ends in a node of the last level. Features are
        tried in a random order per level, so ties do not favour the first feature."""
        n, d = bins.shape
        k, width = len(self.classes_), self.max_bins
        node = np.zeros(n, np.int64)
        levels, importance = [], np.zeros(d)
        for _ in range(self.max_depth):
            m = int(node.max()) + 1
            parent = _impurity(np.bincount(node * k + target, minlength=m * k).reshape(m, k))
            gain, feature, threshold = np.zeros(m), np.zeros(m, np.int64), np.full(m, width)
            for f in rng.permutation(d):
                counts = np.bincount((node * width + bins[:, f]) * k + target, minlength=m * width * k)
                cumulative = counts.reshape(m, width, k).cumsum(1)
                left, right = cumulative[:, :-1], cumulative[:, -1:] - cumulative[:, :-1]
                f_gain = parent[:, None] - _impurity(left) - _impurity(right)
                best = f_gain.argmax(1)
                better = f_gain[np.arange(m), best] > gain + 1e-9
                gain[better], feature[better], threshold[better] = f_gain[better, best[better]], f, best[better]
            importance += np.bincount(feature, weights=gain, minlength=d)
            child = 2 * node + (bins[np.arange(n), feature[node]] > threshold[node])
            ids, node = np.unique(child, return_inverse=True)
            levels.append((feature, threshold, ids))
            if not (threshold < width).any():
                break
        leaves = np.bincount(node * k + target, minlength=len(levels[-1][2]) * k).reshape(-1, k)
        return (levels, leaves / leaves.sum(1, keepdims=True)), importance

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class with the highest mean leaf frequency over the trees."""
        bins = self._binned(_features(x))
        rows = np.arange(len(bins))
        probabilities = np.zeros((len(bins), len(self.classes_)))
        for levels, leaves in self._trees:
            node = np.zeros(len(bins), np.int64)
            for feature, threshold, ids in levels:
                node = np.searchsorted(ids, 2 * node + (bins[rows, feature[node]] > threshold[node]))
            probabilities += leaves[node]
        return self.classes_[np.argmax(probabilities, 1)]


class ThresholdClassifier:
    """A one-feature classifier: the feature cut into bins (see :class:`RandomForest`),
    each bin predicting the class with the most class-balanced votes in it.

    Args:
        max_bins: most bins (thresholds + 1).

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
        >>> ThresholdClassifier().fit(x, np.array([0, 0, 2, 2, 1, 1])).predict(np.array([[0.4], [4.6]])).tolist()
        [0, 1]
    """

    def __init__(self, max_bins: int = 64) -> None:
        self.max_bins = int(max_bins)

    def fit(self, x: np.ndarray, y: np.ndarray) -> ThresholdClassifier:
        """Fit on one feature ``x`` (N, 1) and labels ``y`` (N,); returns self."""
        self.classes_, target = _labels(y)
        x = _features(x, len(target))
        if x.shape[1] != 1:
            raise ValueError(f"ThresholdClassifier takes one feature, got {x.shape[1]}")
        self._edges = _bin_edges(x[:, 0], self.max_bins)
        k = len(self.classes_)
        bins = np.searchsorted(self._edges, x[:, 0])
        votes = np.bincount(bins * k + target, minlength=(len(self._edges) + 1) * k).reshape(-1, k)
        self._choice = np.argmax(votes / np.bincount(target, minlength=k), 1)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class of the bin each row of ``x`` falls in."""
        return self.classes_[self._choice[np.searchsorted(self._edges, _features(x)[:, 0])]]
