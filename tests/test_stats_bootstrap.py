"""radgate.stats.bootstrap against scikit-learn (weighted AUC) and DeLong's standard error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radgate.stats import StatisticsInputError
from radgate.stats.bootstrap import bootstrap_auc, stratified_bootstrap, weighted_auc
from radgate.stats.roc import delong


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    return y, np.round(y + rng.normal(size=n), 2)  # rounded: ties


def test_weighted_auc_matches_sklearn_sample_weight() -> None:
    y, s = data(1500, 0)
    w = np.random.default_rng(1).integers(0, 4, size=y.size)
    # scikit-learn roc_auc_score(sample_weight=...) is the independent implementation.
    assert weighted_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)


def test_bootstrap_auc_se_agrees_with_delong() -> None:
    y, s = data(4000, 2)
    boot = bootstrap_auc(y, s, n_resamples=1000, seed=3)
    dl = delong(y, s)
    assert boot.estimate == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # DeLong's SE and the stratified bootstrap SE estimate the same quantity; with 1000 replicates the
    # bootstrap SE carries about 2% Monte Carlo error, so 10% is a fair tolerance.
    assert boot.se == pytest.approx(dl.se, rel=0.10)
    assert boot.ci[0] < dl.auc < boot.ci[1]


def test_generic_stratified_bootstrap_keeps_strata_and_agrees_with_fast_auc() -> None:
    y, s = data(1200, 4)
    counts: list[int] = []

    def stat(idx: np.ndarray) -> float:
        counts.append(int(y[idx].sum()))
        return float(roc_auc_score(y[idx], s[idx]))

    generic = stratified_bootstrap(stat, y, n_resamples=300, seed=5)
    fast = bootstrap_auc(y, s, n_resamples=2000, seed=6)
    assert set(counts) == {int(y.sum())}  # every resample keeps the number of positives
    assert generic.estimate == pytest.approx(fast.estimate, abs=1e-12)
    assert generic.se == pytest.approx(fast.se, rel=0.15)


def test_seed_makes_replicates_reproducible() -> None:
    y, s = data(500, 7)
    a = bootstrap_auc(y, s, n_resamples=50, seed=11)
    b = bootstrap_auc(y, s, n_resamples=50, seed=11)
    np.testing.assert_array_equal(a.replicates, b.replicates)


def test_bad_arguments_are_refused() -> None:
    y, s = data(100, 8)
    with pytest.raises(StatisticsInputError, match="resamples must be a whole number >= 2, got 1"):
        bootstrap_auc(y, s, n_resamples=1)
    with pytest.raises(StatisticsInputError, match="constant"):
        bootstrap_auc(y, np.zeros(y.size))
