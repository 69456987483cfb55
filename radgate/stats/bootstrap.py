r"""Stratified bootstrap: an interval for any metric, and a fast path for the AUC.

Cases are resampled with replacement *within each stratum* (by default the label), so every replicate
keeps the observed numbers of positives and negatives — the design of a validation set, where those
numbers are fixed by sampling, and the replicate AUC is always defined. The interval is the percentile
interval :math:`[\hat\theta^*_{(\alpha/2)}, \hat\theta^*_{(1-\alpha/2)}]` of the replicates (Efron &
Tibshirani 1993, ch. 13), the scheme of pROC's stratified bootstrap (Robin et al. 2011).

References
----------
- Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall 1993.
- Carpenter J, Bithell J. Bootstrap confidence intervals: when, which, what? Stat Med 2000;19:1141–1164.
- Robin X, et al. pROC: an open-source package for R and S+ to analyze and compare ROC curves.
  BMC Bioinformatics 2011;12:77.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radgate.stats.checks import (
    StatisticsInputError,
    as_labels,
    as_scores,
    check_confidence,
    require_both_classes,
    require_varying,
)

__all__ = ["BootstrapResult", "bootstrap_auc", "stratified_bootstrap", "weighted_auc"]


@dataclass(frozen=True)
class BootstrapResult:
    """The statistic on the data, its percentile interval, the bootstrap SE and the replicates."""

    estimate: float
    ci: tuple[float, float]
    se: float
    replicates: NDArray[np.float64]
    n_resamples: int
    confidence: float
    seed: int | None


def _summarise(
    estimate: float, reps: NDArray[np.float64], confidence: float, seed: int | None
) -> BootstrapResult:
    alpha = 1.0 - confidence
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapResult(
        float(estimate), (float(low), float(high)), float(reps.std(ddof=1)), reps, reps.size, confidence, seed
    )


def _check_resamples(n_resamples: int) -> int:
    if int(n_resamples) != n_resamples or n_resamples < 2:
        raise StatisticsInputError(
            f"the number of bootstrap resamples must be a whole number >= 2, got {n_resamples!r}"
        )
    return int(n_resamples)


def stratified_bootstrap(
    statistic: Callable[[NDArray[np.intp]], float],
    strata: ArrayLike,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Percentile interval for ``statistic(indices)`` under resampling within ``strata``.

    ``statistic`` receives an integer array of case indices (with repeats) and returns a number; it is
    called once with ``arange(N)`` for the estimate and ``n_resamples`` times on resamples. ``strata`` is any
    per-case key, usually the 0/1 labels. ``seed`` makes the replicates reproducible (``None``: fresh).
    """
    check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    keys = np.asarray(strata)
    if keys.ndim != 1 or keys.size == 0:
        raise StatisticsInputError(f"strata must be a non-empty 1-D array, got shape {keys.shape}")
    groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]
    rng = np.random.default_rng(seed)
    estimate = float(statistic(np.arange(keys.size)))
    reps = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        reps[r] = statistic(idx)
    if not np.all(np.isfinite(reps)):
        raise StatisticsInputError(
            f"the statistic was not finite on {int((~np.isfinite(reps)).sum())} of {n_resamples} resamples"
        )
    return _summarise(estimate, reps, confidence, seed)


def weighted_auc(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike) -> float:
    r"""AUC with case weights: :math:`\sum_{i,j} w_i w_j \psi(X_i, Y_j) / (\sum_i w_i \sum_j w_j)`.

    With integer weights this is the AUC of the data with case :math:`i` repeated :math:`w_i` times,
    which is how a bootstrap resample is represented.
    """
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != y.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise StatisticsInputError(f"weights must be {y.size} finite non-negative numbers")
    uniq, gid = np.unique(s, return_inverse=True)
    pos_w = np.bincount(gid, weights=np.where(y, w, 0.0), minlength=uniq.size)
    neg_w = np.bincount(gid, weights=np.where(y, 0.0, w), minlength=uniq.size)
    total_pos, total_neg = pos_w.sum(), neg_w.sum()
    if total_pos <= 0 or total_neg <= 0:
        raise StatisticsInputError("weighted AUC needs positive weight on both classes")
    below = np.cumsum(neg_w) - neg_w
    return float(np.sum(pos_w * (below + 0.5 * neg_w)) / (total_pos * total_neg))


def bootstrap_auc(
    labels: ArrayLike,
    scores: ArrayLike,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Stratified (by label) percentile bootstrap interval of the AUC, in O(N) per replicate.

    The scores are sorted once and grouped into runs of equal value. A replicate counts its resampled
    negatives per run (``bincount``), turns the counts into each run's credit (negatives below plus half
    the ties, one cumulative sum) and sums the credit over its resampled positives — the
    :func:`weighted_auc` sum without a sort per replicate.
    """
    check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    m, n = require_both_classes(y, "Bootstrap AUC")
    require_varying(s, "Bootstrap AUC")
    uniq, gid = np.unique(s, return_inverse=True)
    g = uniq.size
    gid_pos, gid_neg = gid[y], gid[~y]
    rng = np.random.default_rng(seed)

    def credit(neg_w: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per run of equal scores: negatives strictly below it plus half of those tied with it."""
        return np.cumsum(neg_w) - 0.5 * neg_w

    estimate = float(np.sum(credit(np.bincount(gid_neg, minlength=g).astype(np.float64))[gid_pos])) / (m * n)
    reps = np.empty(n_resamples)
    for r in range(n_resamples):
        neg_w = np.bincount(gid_neg[rng.integers(0, n, n)], minlength=g).astype(np.float64)
        reps[r] = float(np.sum(credit(neg_w)[gid_pos[rng.integers(0, m, m)]])) / (m * n)
    return _summarise(estimate, reps, confidence, seed)
