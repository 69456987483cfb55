"""radgate.stats.subgroups against scikit-learn, statsmodels and a bootstrap of the gap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from radgate.stats.subgroups import auc_gap, proportion_gap, subgroup_analysis


def site_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three scanners; the model is weaker on scanner C."""
    rng = np.random.default_rng(seed)
    scanner = rng.choice(np.array(["A", "B", "C"]), size=2400, p=[0.5, 0.35, 0.15])
    y = (rng.random(2400) < 0.3).astype(int)
    shift = np.where(scanner == "C", 0.6, 1.6)
    return y, shift * y + rng.normal(size=2400), scanner


def test_subgroup_metrics_match_sklearn_and_statsmodels() -> None:
    y, s, g = site_data()
    results = {r.level: r for r in subgroup_analysis(y, s, g, threshold=0.8, column="scanner")}
    assert sorted(results) == ["A", "B", "C"]
    for level, r in results.items():
        m = g == level
        ys, ss = y[m], s[m]
        assert r.n == m.sum()
        assert r.auc is not None
        assert r.auc.auc == pytest.approx(roc_auc_score(ys, ss), abs=1e-12)
        tp = int(np.sum((ss >= 0.8) & (ys == 1)))
        assert r.sensitivity is not None
        assert r.sensitivity.ci == pytest.approx(proportion_confint(tp, ys.sum(), method="wilson"), abs=1e-12)


def test_insufficient_below_100_positives_or_negatives() -> None:
    rng = np.random.default_rng(1)
    y = np.concatenate([np.ones(100), np.zeros(100), np.ones(99), np.zeros(300)]).astype(int)
    g = np.array(["enough"] * 200 + ["short"] * 399)
    s = y + rng.normal(size=y.size)
    results = {r.level: r for r in subgroup_analysis(y, s, g, threshold=0.5)}
    assert results["enough"].insufficient is False
    assert results["short"].insufficient is True
    assert any("99 positive and 300 negative" in n for n in results["short"].notes)


def test_proportion_gap_is_scaled_newcombe_difference() -> None:
    # Se_sub - Se_all = (P_rest / P) * (Se_sub - Se_rest) exactly; the interval is Newcombe's method 10
    # (statsmodels confint_proportions_2indep(method="newcomb")) scaled by P_rest / P.
    x_s, n_s, x_r, n_r = 70, 90, 380, 410
    gap = proportion_gap(x_s, n_s, x_r, n_r)
    assert gap.estimate == pytest.approx(x_s / n_s - (x_s + x_r) / (n_s + n_r), rel=1e-12)
    low, high = confint_proportions_2indep(x_s, n_s, x_r, n_r, method="newcomb", compare="diff")
    w = n_r / (n_s + n_r)
    assert gap.ci == pytest.approx((w * low, w * high), rel=1e-10)


def test_auc_gap_standard_error_agrees_with_a_bootstrap() -> None:
    y, s, g = site_data(2)
    member = g == "C"
    gap = auc_gap(y, s, member)
    assert gap.estimate == pytest.approx(roc_auc_score(y[member], s[member]) - roc_auc_score(y, s), abs=1e-12)
    # Independent check: a case bootstrap (stratified by label) of the same difference with scikit-learn.
    rng = np.random.default_rng(3)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    reps = []
    for _ in range(400):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        yi, si, mi = y[idx], s[idx], member[idx]
        reps.append(roc_auc_score(yi[mi], si[mi]) - roc_auc_score(yi, si))
    se_boot = float(np.std(reps, ddof=1))
    se_ours = (gap.ci[1] - gap.ci[0]) / (2 * 1.959963984540054)
    assert se_ours == pytest.approx(se_boot, rel=0.15)  # 400 replicates: bootstrap SE itself is +-7%


def test_whole_population_as_subgroup_has_zero_gap() -> None:
    y, s, _ = site_data(4)
    gap = auc_gap(y, s, np.ones(y.size, dtype=bool))
    assert gap.estimate == pytest.approx(0.0, abs=1e-12)
    assert gap.ci == pytest.approx((0.0, 0.0), abs=1e-9)


def test_tiny_subgroup_reports_notes_instead_of_failing() -> None:
    y, s, g = site_data(5)
    g = g.astype(object)  # room for a longer level name
    g[np.flatnonzero(y == 1)[0]] = "lonely"  # one positive case only
    results = {r.level: r for r in subgroup_analysis(y, s, g, threshold=0.8)}
    lonely = results["lonely"]
    assert lonely.auc is None
    assert lonely.specificity is None
    assert lonely.sensitivity is not None and lonely.sensitivity.trials == 1
    assert any("AUC not computed" in n for n in lonely.notes)
    assert lonely.insufficient
