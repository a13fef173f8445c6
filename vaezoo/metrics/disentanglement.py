"""Disentanglement metrics as disentanglement_lib defines them (Locatello et al., 2019).

Codes are arrays of shape (N, num_codes), factors integer arrays of shape (N,
num_factors) (the transposes of disentanglement_lib's layout). Every metric comes in
two forms: one that takes a ``representation_fn(x) -> codes`` and a
:class:`GroundTruth` (which samples factors and renders them) and draws its own
examples, and a lower-level ``*_from_codes`` form that takes arrays, so the metrics
can be checked on synthetic codes. The metrics and their defaults:

- beta-VAE score (Higgins et al., 2017): a linear classifier predicts which factor a
  batch of pairs shares from the mean |z_a - z_b| over the batch (batch 64, 10000
  train / 5000 eval points); the score is the eval accuracy.
- FactorVAE score (Kim & Mnih, 2018): for batches sharing one factor, the code
  dimension with the least variance (relative to its global variance; dimensions
  with a global std below 0.05 are pruned) votes for the factor; the score is the
  eval accuracy of the majority-vote classifier.
- MIG (Chen et al., 2018): codes discretised into 20 equal-width bins; the mean
  over factors of the gap between the two largest mutual informations with a code
  dimension, divided by the factor's entropy.
- SAP (Kumar et al., 2018): for each factor, the gap between the two code dimensions
  that predict it best, averaged over factors.
- DCI (Eastwood & Williams, 2018): an importance matrix from one classifier per
  factor; disentanglement and completeness are 1 - entropy of its rows and columns,
  informativeness the classifiers' accuracy.

Deviations from disentanglement_lib (which uses scikit-learn; vaezoo does not):

- beta-VAE score: the multinomial logistic regression is fitted by L-BFGS on
  standardised features (the same L2 penalty, C = 1, as scikit-learn's default).
- SAP with discrete factors: instead of ``LinearSVC(C=0.01, class_weight="balanced")``
  on each code dimension, a threshold classifier as Kumar et al. describe it: the
  dimension cut into at most 64 bins (exactly between distinct values when there are
  fewer), each bin predicting its class-balanced majority class.
- DCI: instead of scikit-learn's ``GradientBoostingClassifier``, a numpy random forest
  (10 bagged trees of depth 8, Gini impurity-decrease importances; Eastwood & Williams
  used random forests too). Informativeness is the accuracy, as in disentanglement_lib.
- MIG leaves out factors that take a single value in the sample (their entropy is 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vaezoo.metrics._estimators import (
    LogisticRegression,
    RandomForest,
    ThresholdClassifier,
)
from vaezoo.metrics.likelihood import encoder_means

#: Examples rendered and encoded at once.
_CHUNK = 2048

#: Names :func:`disentanglement_scores` accepts.
METRICS = ("beta_vae", "factor_vae", "mig", "sap", "dci")

RepresentationFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """A generative process with independent, uniformly drawn discrete factors.

    Attributes:
        factor_sizes: number of values of each factor.
        render: factor indices (N, num_factors) -> observations (N, ...).

    Example:
        >>> truth = GroundTruth((2, 3), lambda f: f.astype("float32"))
        >>> truth.sample_factors(4, np.random.default_rng(0)).shape
        (4, 2)
    """

    factor_sizes: tuple[int, ...]
    render: Callable[[np.ndarray], np.ndarray]

    @property
    def num_factors(self) -> int:
        """Number of factors."""
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor combinations, each factor uniform and independent (int64, (n, F))."""
        return rng.integers(0, self.factor_sizes, size=(int(n), self.num_factors), dtype=np.int64)


def shapes_ground_truth() -> GroundTruth:
    """The procedural shapes data set (:mod:`vaezoo.datasets.shapes`) as a ground truth.

    Example:
        >>> truth = shapes_ground_truth()
        >>> truth.factor_sizes, truth.render(truth.sample_factors(2, np.random.default_rng(0))).shape
        ((3, 6, 40, 32, 32), (2, 64, 64, 1))
    """
    from vaezoo.datasets import shapes

    return GroundTruth(tuple(shapes.FACTOR_SIZES), shapes.render)


def identity_ground_truth(factor_sizes: Sequence[int]) -> GroundTruth:
    """A synthetic ground truth whose observations are the factors themselves (float32),
    for checking metrics with hand-made representation functions.

    Example:
        >>> identity_ground_truth((2, 3)).render(np.array([[1, 2]]))
        array([[1., 2.]], dtype=float32)
    """
    return GroundTruth(tuple(int(s) for s in factor_sizes), lambda factors: np.asarray(factors, np.float32))


def representation(model, batch_size: int = 256) -> RepresentationFn:
    """The representation disentanglement_lib scores: the mean of q(z|x).

    Example:
        >>> import vaezoo
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=3)
        >>> representation(model)(np.zeros((2, 28, 28, 1), "float32")).shape
        (2, 3)
    """
    return lambda x: encoder_means(model, x, batch_size)


def _codes(representation_fn: RepresentationFn, truth: GroundTruth, factors: np.ndarray) -> np.ndarray:
    """Codes of the observations of ``factors`` (..., F), rendered in chunks; shape (..., D)."""
    flat = factors.reshape(-1, factors.shape[-1])
    codes = np.concatenate(
        [np.asarray(representation_fn(truth.render(flat[i : i + _CHUNK])), np.float64) for i in range(0, len(flat), _CHUNK)]
    )
    if codes.ndim != 2 or len(codes) != len(flat):
        raise ValueError(f"representation_fn must return (N, num_codes) codes, got {codes.shape} for N={len(flat)}")
    return codes.reshape(factors.shape[:-1] + codes.shape[1:])


def sample_codes(
    representation_fn: RepresentationFn, truth: GroundTruth, num_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``num_points`` factor combinations and return (codes, factors).

    Example:
        >>> codes, factors = sample_codes(lambda x: 2 * x, identity_ground_truth((2, 3)), 5, np.random.default_rng(0))
        >>> codes.shape, bool((codes == 2 * factors).all())
        ((5, 2), True)
    """
    factors = truth.sample_factors(num_points, rng)
    return _codes(representation_fn, truth, factors), factors


def _check_pair(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, np.float64), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes (N, D) and factors (N, F) must have N rows each, got {codes.shape} and {factors.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or Inf")
    return codes, factors


# --------------------------------------------------------------------------- beta-VAE score


def beta_vae_score_from_codes(
    train_pairs: np.ndarray, train_labels: np.ndarray, eval_pairs: np.ndarray, eval_labels: np.ndarray
) -> dict[str, float]:
    """The beta-VAE score from codes of pairs sharing one factor.

    Args:
        train_pairs: (P, 2, B, D): for each point, B pairs (a, b) of codes whose
            factor ``train_labels[p]`` has the same value.
        train_labels: (P,) the shared factor of each point.
        eval_pairs: like ``train_pairs``, for the accuracy that is reported.
        eval_labels: like ``train_labels``.

    Returns:
        ``train_accuracy`` and ``eval_accuracy`` of the linear classifier.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> pairs = rng.normal(size=(40, 2, 8, 2)); labels = np.arange(40) % 2
        >>> pairs[np.arange(40), 1, :, labels] = pairs[np.arange(40), 0, :, labels]  # the shared dim is equal
        >>> beta_vae_score_from_codes(pairs[:20], labels[:20], pairs[20:], labels[20:])["eval_accuracy"]
        1.0
    """

    def features(pairs: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs, np.float64)
        if pairs.ndim != 4 or pairs.shape[1] != 2:
            raise ValueError(f"pairs must have shape (P, 2, B, D), got {pairs.shape}")
        return np.abs(pairs[:, 0] - pairs[:, 1]).mean(1)

    classifier = LogisticRegression().fit(features(train_pairs), train_labels)
    return {
        "train_accuracy": float(np.mean(classifier.predict(features(train_pairs)) == train_labels)),
        "eval_accuracy": float(np.mean(classifier.predict(features(eval_pairs)) == eval_labels)),
    }


def _pair_codes(representation_fn, truth, num_points, batch_size, rng) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, truth.num_factors, num_points)
    factors = truth.sample_factors(num_points * 2 * batch_size, rng).reshape(num_points, 2, batch_size, -1)
    points = np.arange(num_points)
    factors[points, 1, :, labels] = factors[points, 0, :, labels]
    return _codes(representation_fn, truth, factors), labels


def beta_vae_score(
    representation_fn: RepresentationFn,
    truth: GroundTruth,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
) -> dict[str, float]:
    """The beta-VAE score (Higgins et al., 2017) of ``representation_fn``.

    Args:
        representation_fn: observations -> codes (N, D).
        truth: the ground truth that renders factors.
        seed: seed of the factor draws.
        batch_size: pairs averaged into one feature vector.
        num_train: feature vectors to train the classifier on.
        num_eval: feature vectors to evaluate it on.

    Returns:
        ``train_accuracy`` and ``eval_accuracy`` (the score).

    Example:
        >>> truth = identity_ground_truth((4, 4, 4))
        >>> beta_vae_score(lambda x: x, truth, batch_size=4, num_train=60, num_eval=30)["eval_accuracy"]
        1.0
    """
    rng = np.random.default_rng(seed)
    train = _pair_codes(representation_fn, truth, num_train, batch_size, rng)
    evaluation = _pair_codes(representation_fn, truth, num_eval, batch_size, rng)
    return beta_vae_score_from_codes(*train, *evaluation)


# --------------------------------------------------------------------------- FactorVAE score


def factor_vae_score_from_codes(
    train_groups: np.ndarray,
    train_labels: np.ndarray,
    eval_groups: np.ndarray,
    eval_labels: np.ndarray,
    global_variances: np.ndarray,
    num_factors: int,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """The FactorVAE score from codes of batches that share one factor's value.

    Args:
        train_groups: (P, B, D): for each point, the codes of a batch whose factor
            ``train_labels[p]`` takes one value.
        train_labels: (P,) the fixed factor of each batch.
        eval_groups: like ``train_groups``, for the accuracy that is reported.
        eval_labels: like ``train_labels``.
        global_variances: (D,) variance of each code dimension over the data.
        num_factors: number of factors.
        prune_threshold: dimensions whose global std is below this do not vote.

    Returns:
        ``train_accuracy``, ``eval_accuracy`` (the score) and ``num_active_dims``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> groups = rng.normal(size=(20, 8, 2)); labels = np.arange(20) % 2
        >>> groups[np.arange(20), :, labels] = 0.0  # the fixed factor's code does not vary
        >>> factor_vae_score_from_codes(groups[:10], labels[:10], groups[10:], labels[10:], np.ones(2), 2)
        {'train_accuracy': 1.0, 'eval_accuracy': 1.0, 'num_active_dims': 2}
    """
    global_variances = np.asarray(global_variances, np.float64)
    active = np.flatnonzero(np.sqrt(global_variances) >= prune_threshold)
    if not len(active):
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}

    def votes(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
        groups = np.asarray(groups, np.float64)
        if groups.ndim != 3 or groups.shape[-1] != len(global_variances):
            raise ValueError(f"groups must have shape (P, B, {len(global_variances)}), got {groups.shape}")
        local = groups.var(1, ddof=1)[:, active] / global_variances[active]
        table = np.zeros((num_factors, len(global_variances)))
        np.add.at(table, (labels, active[np.argmin(local, 1)]), 1)
        return table

    train_votes, eval_votes = votes(train_groups, train_labels), votes(eval_groups, eval_labels)
    classifier = np.argmax(train_votes, 0)
    dims = np.arange(len(global_variances))
    return {
        "train_accuracy": float(train_votes[classifier, dims].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, dims].sum() / eval_votes.sum()),
        "num_active_dims": len(active),
    }


def _group_codes(representation_fn, truth, num_points, batch_size, rng) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, truth.num_factors, num_points)
    factors = truth.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, -1)
    points = np.arange(num_points)
    factors[points, :, labels] = factors[points, :1, labels]
    return _codes(representation_fn, truth, factors), labels


def factor_vae_score(
    representation_fn: RepresentationFn,
    truth: GroundTruth,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
) -> dict[str, float]:
    """The FactorVAE score (Kim & Mnih, 2018) of ``representation_fn``.

    Args:
        representation_fn: observations -> codes (N, D).
        truth: the ground truth that renders factors.
        seed: seed of the factor draws.
        batch_size: examples per batch with one fixed factor.
        num_train: batches (votes) to build the classifier from.
        num_eval: batches to evaluate it on.
        num_variance_estimate: examples for the global variance of each dimension.

    Returns:
        ``train_accuracy``, ``eval_accuracy`` (the score) and ``num_active_dims``.

    Example:
        >>> truth = identity_ground_truth((4, 4, 4))
        >>> factor_vae_score(lambda x: x, truth, batch_size=8, num_train=30, num_eval=30,
        ...                  num_variance_estimate=100)["eval_accuracy"]
        1.0
    """
    rng = np.random.default_rng(seed)
    codes, _ = sample_codes(representation_fn, truth, num_variance_estimate, rng)
    global_variances = codes.var(0, ddof=1)
    train = _group_codes(representation_fn, truth, num_train, batch_size, rng)
    evaluation = _group_codes(representation_fn, truth, num_eval, batch_size, rng)
    return factor_vae_score_from_codes(*train, *evaluation, global_variances, truth.num_factors)


# --------------------------------------------------------------------------- MIG


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column of ``codes`` cut into ``num_bins`` equal-width bins (values 1..num_bins),
    as disentanglement_lib's histogram discretizer does.

    Example:
        >>> discretize(np.array([[0.0], [0.5], [1.0]]), num_bins=2).ravel().tolist()
        [1, 2, 2]
    """
    codes = np.asarray(codes, np.float64)
    return np.stack([np.digitize(col, np.histogram(col, num_bins)[1][:-1]) for col in codes.T], 1)


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information (nats) of two discrete variables from paired samples.

    Example:
        >>> round(mutual_information(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])), 4)  # = H = log 2
        0.6931
    """
    a_values, a = np.unique(a, return_inverse=True)
    b_values, b = np.unique(b, return_inverse=True)
    size = len(a_values) * len(b_values)
    joint = np.bincount(a.ravel() * len(b_values) + b.ravel(), minlength=size).reshape(len(a_values), -1)
    joint = joint / joint.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])))


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    """The mutual information gap (Chen et al., 2018) of codes (N, D) for factors (N, F).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> factors = rng.integers(0, 4, (500, 2))
        >>> round(mig_from_codes(factors[:, ::-1].astype(float), factors)["mig"], 2)  # 1 minus estimation bias
        0.99
    """
    codes, factors = _check_pair(codes, factors)
    binned = discretize(codes, num_bins)
    entropy = np.array([mutual_information(f, f) for f in factors.T])
    informative = entropy > 0
    if not informative.any():
        raise ValueError("every factor takes a single value in the sample; MIG is undefined")
    info = np.array([[mutual_information(c, f) for f in factors.T[informative]] for c in binned.T])
    top = -np.sort(-info, 0)
    second = top[1] if len(top) > 1 else np.zeros(info.shape[1])
    return {"mig": float(np.mean((top[0] - second) / entropy[informative]))}


def mig(
    representation_fn: RepresentationFn, truth: GroundTruth, seed: int = 0, num_train: int = 10000, num_bins: int = 20
) -> dict[str, float]:
    """MIG (Chen et al., 2018) of ``representation_fn`` on ``num_train`` examples.

    Example:
        >>> round(mig(lambda x: x, identity_ground_truth((4, 5)), num_train=2000)["mig"], 2)
        1.0
    """
    return mig_from_codes(*sample_codes(representation_fn, truth, num_train, np.random.default_rng(seed)), num_bins)


# --------------------------------------------------------------------------- SAP


def _sap_matrix(codes, factors, codes_test, factors_test, continuous_factors: bool) -> np.ndarray:
    """Score of code dimension i for factor j, shape (D, F)."""
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    for i, code in enumerate(codes.T):
        for j, factor in enumerate(factors.T):
            if continuous_factors:
                cov = np.cov(code, factor, ddof=1)
                matrix[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 else 0.0
            else:
                predicted = ThresholdClassifier().fit(code[:, None], factor).predict(codes_test[:, i : i + 1])
                matrix[i, j] = np.mean(predicted == factors_test[:, j])
    return matrix


def sap_from_codes(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous_factors: bool = False,
) -> dict[str, float]:
    """The separated attribute predictability (Kumar et al., 2018).

    Args:
        codes: (N, D) training codes.
        factors: (N, F) their factors.
        codes_test: (M, D) codes the discrete classifiers are scored on
            (default: the training codes).
        factors_test: (M, F) their factors.
        continuous_factors: score each pair by the R^2 of a linear fit instead of a
            threshold classifier's test accuracy.

    Returns:
        ``sap``: the mean over factors of the gap between the two best dimensions.

    Example:
        >>> factors = np.random.default_rng(0).integers(0, 5, (500, 2))
        >>> round(sap_from_codes(factors.astype(float), factors, continuous_factors=True)["sap"], 2)
        1.0
    """
    codes, factors = _check_pair(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("SAP needs at least two code dimensions")
    codes_test, factors_test = _check_pair(
        codes if codes_test is None else codes_test, factors if factors_test is None else factors_test
    )
    top = np.sort(_sap_matrix(codes, factors, codes_test, factors_test, continuous_factors), 0)
    return {"sap": float(np.mean(top[-1] - top[-2]))}


def sap(
    representation_fn: RepresentationFn,
    truth: GroundTruth,
    seed: int = 0,
    num_train: int = 10000,
    num_test: int = 5000,
    continuous_factors: bool = False,
) -> dict[str, float]:
    """SAP (Kumar et al., 2018) of ``representation_fn``.

    Example:
        >>> sap(lambda x: x, identity_ground_truth((3, 4)), num_train=300, num_test=300)["sap"] > 0.6  # 1 - chance
        True
    """
    rng = np.random.default_rng(seed)
    train = sample_codes(representation_fn, truth, num_train, rng)
    test = sample_codes(representation_fn, truth, num_test, rng)
    return sap_from_codes(*train, *test, continuous_factors=continuous_factors)


# --------------------------------------------------------------------------- DCI


def _entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (log base ``base``) of each column of ``p`` after normalising it."""
    p = p / p.sum(0, keepdims=True)
    return -np.sum(p * np.log(p), 0) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix (num_codes, num_factors).

    Example:
        >>> {k: round(v, 6) for k, v in dci_from_importance(np.eye(3)).items()}
        {'disentanglement': 1.0, 'completeness': 1.0}
        >>> {k: round(v, 6) for k, v in dci_from_importance(np.ones((3, 3))).items()}
        {'disentanglement': 0.0, 'completeness': 0.0}
    """
    importance = np.abs(np.asarray(importance, np.float64))
    num_codes, num_factors = importance.shape
    if num_codes < 2 or num_factors < 2:
        raise ValueError(f"DCI needs at least two codes and two factors, got {importance.shape}")
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    per_code = 1.0 - _entropy(importance.T + 1e-11, num_factors)
    per_factor = 1.0 - _entropy(importance + 1e-11, num_codes)
    total = importance.sum()
    return {
        "disentanglement": float(np.sum(per_code * importance.sum(1) / total)),
        "completeness": float(np.sum(per_factor * importance.sum(0) / total)),
    }


def dci_from_codes(
    codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """DCI (Eastwood & Williams, 2018) with random-forest importances.

    Args:
        codes: (N, D) training codes.
        factors: (N, F) their factors.
        codes_test: (M, D) held-out codes.
        factors_test: (M, F) their factors.
        seed: seed of the forests' bootstrap.

    Returns:
        ``disentanglement``, ``completeness``, ``informativeness_train`` and
        ``informativeness_test`` (mean accuracy over factors).

    Example:
        >>> factors = np.random.default_rng(0).integers(0, 4, (400, 2))
        >>> scores = dci_from_codes(factors.astype(float), factors, factors.astype(float), factors)
        >>> [round(scores[k], 3) for k in ("disentanglement", "completeness", "informativeness_test")]
        [1.0, 1.0, 1.0]
    """
    codes, factors = _check_pair(codes, factors)
    codes_test, factors_test = _check_pair(codes_test, factors_test)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train_accuracy, test_accuracy = [], []
    for j in range(factors.shape[1]):
        forest = RandomForest(seed=seed).fit(codes, factors[:, j])
        importance[:, j] = forest.feature_importances_
        train_accuracy.append(np.mean(forest.predict(codes) == factors[:, j]))
        test_accuracy.append(np.mean(forest.predict(codes_test) == factors_test[:, j]))
    return {
        **dci_from_importance(importance),
        "informativeness_train": float(np.mean(train_accuracy)),
        "informativeness_test": float(np.mean(test_accuracy)),
    }


def dci(
    representation_fn: RepresentationFn, truth: GroundTruth, seed: int = 0, num_train: int = 10000, num_test: int = 5000
) -> dict[str, float]:
    """DCI (Eastwood & Williams, 2018) of ``representation_fn``.

    Example:
        >>> round(dci(lambda x: x, identity_ground_truth((3, 4)), num_train=300, num_test=100)["disentanglement"], 6)
        1.0
    """
    rng = np.random.default_rng(seed)
    train = sample_codes(representation_fn, truth, num_train, rng)
    test = sample_codes(representation_fn, truth, num_test, rng)
    return dci_from_codes(*train, *test, seed=seed)


# --------------------------------------------------------------------------- all at once


def disentanglement_scores(
    representation_fn: RepresentationFn,
    truth: GroundTruth,
    names: Sequence[str] = METRICS,
    seed: int = 0,
    num_train: int = 10000,
    num_eval: int = 5000,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The headline number of each metric in ``names`` (see :data:`METRICS`), flat.

    ``num_train`` and ``num_eval`` set every metric's training and held-out sizes
    (disentanglement_lib's defaults: 10000 and 5000).

    Returns:
        ``beta_vae``, ``factor_vae``, ``mig``, ``sap``, ``dci_disentanglement``,
        ``dci_completeness``, ``dci_informativeness`` for the metrics asked for.

    Example:
        >>> scores = disentanglement_scores(lambda x: x, identity_ground_truth((3, 4)), ("mig", "dci"),
        ...                                 num_train=300, num_eval=100)
        >>> sorted(scores)
        ['dci_completeness', 'dci_disentanglement', 'dci_informativeness', 'mig']
    """
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown disentanglement metric(s) {unknown}; known: {list(METRICS)}")
    scores: dict[str, Any] = {}
    if "beta_vae" in names:
        result = beta_vae_score(representation_fn, truth, seed, batch_size, num_train, num_eval)
        scores["beta_vae"] = result["eval_accuracy"]
    if "factor_vae" in names:
        result = factor_vae_score(representation_fn, truth, seed, batch_size, num_train, num_eval, num_train)
        scores["factor_vae"] = result["eval_accuracy"]
    if "mig" in names:
        scores.update(mig(representation_fn, truth, seed, num_train))
    if "sap" in names:
        scores.update(sap(representation_fn, truth, seed, num_train, num_eval))
    if "dci" in names:
        result = dci(representation_fn, truth, seed, num_train, num_eval)
        scores.update(
            dci_disentanglement=result["disentanglement"],
            dci_completeness=result["completeness"],
            dci_informativeness=result["informativeness_test"],
        )
    return scores
