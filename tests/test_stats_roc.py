"""radgate.stats.roc against Hanley & McNeil's published example, scikit-learn, scipy and an O(mn) DeLong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from radgate.stats import StatisticsInputError
from radgate.stats.roc import (
    auc,
    compare_unpaired,
    delong,
    delong_paired,
    hanley_mcneil_se,
    midranks,
    operating_point,
    roc_curve,
    structural_components,
    threshold_for_sensitivity,
    youden_threshold,
)

# Hanley JA, McNeil BJ. Radiology 1982;143:29-36, Table 1: CT images rated on a 5-point scale
# (1 definitely normal ... 5 definitely abnormal) for 58 truly normal and 51 truly abnormal patients.
HM_NORMAL = [33, 6, 6, 11, 2]
HM_ABNORMAL = [3, 2, 2, 11, 33]


def hanley_mcneil_ct() -> tuple[np.ndarray, np.ndarray]:
    ratings = np.arange(1, 6)
    scores = np.concatenate([np.repeat(ratings, HM_NORMAL), np.repeat(ratings, HM_ABNORMAL)])
    labels = np.concatenate([np.zeros(sum(HM_NORMAL), int), np.ones(sum(HM_ABNORMAL), int)])
    return labels, scores.astype(float)


def direct_delong(labels: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) written out literally: the psi kernel over all m*n pairs, then S10/m + S01/n.

    An independent formulation (no ranks, no sorting) of what radgate.stats.roc computes in O(N log N).
    """
    y = labels.astype(bool)
    v10, v01 = [], []
    for s in scores:
        x, w = s[y], s[~y]
        psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    a10, a01 = np.array(v10), np.array(v01)
    m, n = a10.shape[1], a01.shape[1]
    aucs = a10.mean(axis=1)
    c10 = (a10 - aucs[:, None]) @ (a10 - aucs[:, None]).T / (m - 1)
    c01 = (a01 - aucs[:, None]) @ (a01 - aucs[:, None]).T / (n - 1)
    return aucs, c10 / m + c01 / n


def correlated_scores(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    common = rng.normal(size=n)
    a = 1.2 * y + common + 0.6 * rng.normal(size=n)
    b = 0.8 * y + common + 0.9 * rng.normal(size=n)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def test_hanley_mcneil_ct_example_auc_and_se() -> None:
    y, s = hanley_mcneil_ct()
    res = delong(y, s)
    # Hanley & McNeil 1982, Table 1 / text: area 0.893 (trapezoidal, ties count 1/2).
    assert res.auc == pytest.approx(0.893, abs=5e-4)
    # Same paper: SE 0.032 from their exponential approximation; DeLong's nonparametric SE on the same
    # data is 0.0307, so the two agree loosely (within 0.002), not exactly.
    assert res.se == pytest.approx(0.032, abs=0.002)
    assert (res.n_positive, res.n_negative) == (51, 58)
    # Their closed-form approximation (eq. 2 with Q1, Q2) at A = 0.893 gives 0.0325, within 0.001 of the
    # published 0.032 (which the paper computed from the rating table itself).
    assert hanley_mcneil_se(0.893, 51, 58) == pytest.approx(0.032, abs=1e-3)


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties: bool) -> None:
    y, a, _ = correlated_scores(3000, seed=1, ties=ties)
    # scikit-learn roc_auc_score (trapezoidal ROC area) as the independent implementation; 1e-12 tolerance.
    assert auc(y, a) == pytest.approx(skm.roc_auc_score(y, a), abs=1e-12)
    assert delong(y, a).auc == pytest.approx(skm.roc_auc_score(y, a), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_delong_variance_matches_direct_quadratic_implementation(ties: bool) -> None:
    y, a, _ = correlated_scores(400, seed=2, ties=ties)
    aucs, cov = direct_delong(y, a)
    res = delong(y, a)
    assert res.auc == pytest.approx(aucs[0], abs=1e-12)
    assert res.variance == pytest.approx(cov[0, 0], rel=1e-10)
    z = sps.norm.ppf(0.975)
    assert res.ci == pytest.approx((aucs[0] - z * math.sqrt(cov[0, 0]), aucs[0] + z * math.sqrt(cov[0, 0])))


def test_structural_components_keep_case_order() -> None:
    y, a, b = correlated_scores(300, seed=3, ties=True)
    comps = structural_components(y, a, b)
    yb = y.astype(bool)
    for k, s in enumerate((a, b)):
        x, w = s[yb], s[~yb]
        psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        np.testing.assert_allclose(comps.v10[k], psi.mean(axis=1), atol=1e-12)
        np.testing.assert_allclose(comps.v01[k], psi.mean(axis=0), atol=1e-12)


def test_paired_delong_matches_direct_quadratic_implementation() -> None:
    y, a, b = correlated_scores(500, seed=4, ties=True)
    aucs, cov = direct_delong(y, a, b)
    res = delong_paired(y, a, b)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    assert res.difference == pytest.approx(aucs[0] - aucs[1], abs=1e-12)
    assert res.se == pytest.approx(math.sqrt(var), rel=1e-10)
    assert res.z == pytest.approx(z, rel=1e-10)
    # Two-sided p from scipy's normal survival function.
    assert res.p == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-10)
    assert res.correlation == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), rel=1e-10)
    assert res.paired


def test_paired_delong_identical_scores_is_no_difference() -> None:
    y, a, _ = correlated_scores(200, seed=5)
    res = delong_paired(y, a, 3 * a + 1)  # a monotone transform ranks identically
    assert (res.difference, res.z, res.p) == (0.0, 0.0, 1.0)


def test_unpaired_comparison_uses_summed_variances() -> None:
    y1, a, _ = correlated_scores(300, seed=6)
    y2, _, b = correlated_scores(350, seed=7)
    (auc_a,), cov_a = direct_delong(y1, a)
    (auc_b,), cov_b = direct_delong(y2, b)
    res = compare_unpaired(delong(y1, a), delong(y2, b))
    # Hanley & McNeil 1982: z = (A1 - A2) / sqrt(SE1^2 + SE2^2) for independent samples.
    z = (auc_a - auc_b) / math.sqrt(cov_a[0, 0] + cov_b[0, 0])
    assert res.z == pytest.approx(z, rel=1e-9)
    assert res.p == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert not res.paired


def test_midranks_match_scipy_rankdata() -> None:
    v = np.round(np.random.default_rng(8).normal(size=1000), 1)
    np.testing.assert_allclose(midranks(v), sps.rankdata(v, method="average"))


def test_roc_curve_matches_sklearn() -> None:
    y, a, _ = correlated_scores(500, seed=9, ties=True)
    fpr, tpr, thr = skm.roc_curve(y, a, drop_intermediate=False)
    curve = roc_curve(y, a)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_array_equal(curve.thresholds, thr)


def test_youden_matches_sklearn_argmax() -> None:
    y, a, _ = correlated_scores(800, seed=10, ties=True)
    fpr, tpr, thr = skm.roc_curve(y, a, drop_intermediate=False)
    j = tpr - fpr
    best = thr[int(np.argmax(j))]
    point = youden_threshold(y, a)
    assert point.threshold == best
    assert point.sensitivity.estimate - (1 - point.specificity.estimate) == pytest.approx(j.max())


def test_target_sensitivity_threshold_and_wilson_interval() -> None:
    y, a, _ = correlated_scores(1000, seed=11, ties=True)
    fpr, tpr, thr = skm.roc_curve(y, a, drop_intermediate=False)
    expected = thr[np.flatnonzero(tpr >= 0.9)[0]]  # highest threshold reaching 90% sensitivity
    point = threshold_for_sensitivity(y, a, 0.9)
    assert point.threshold == expected
    assert point.sensitivity.estimate >= 0.9
    # Wilson interval of the achieved sensitivity, from statsmodels proportion_confint(method="wilson").
    low, high = proportion_confint(point.tp, point.tp + point.fn, method="wilson")
    assert point.sensitivity.ci == pytest.approx((low, high), abs=1e-12)


def test_operating_point_counts_match_sklearn_confusion_matrix() -> None:
    y, a, _ = correlated_scores(600, seed=12)
    point = operating_point(y, a, 0.4)
    tn, fp, fn, tp = skm.confusion_matrix(y, (a >= 0.4).astype(int)).ravel()
    assert (point.tp, point.fp, point.tn, point.fn) == (tp, fp, tn, fn)
    low, high = proportion_confint(tn, tn + fp, method="wilson")
    assert point.specificity.ci == pytest.approx((low, high), abs=1e-12)


def test_perfect_separation_has_zero_delong_variance() -> None:
    res = delong([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert res.auc == 1.0
    assert res.variance == 0.0
    assert res.ci == (1.0, 1.0)


def test_all_one_class_is_refused_with_counts() -> None:
    with pytest.raises(StatisticsInputError, match=r"all 4 case\(s\) are positives"):
        delong([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(StatisticsInputError, match="needs both positive and negative"):
        auc([0, 0], [0.1, 0.2])


def test_n_equal_one_is_refused() -> None:
    with pytest.raises(StatisticsInputError, match="needs both"):
        auc([1], [0.5])
    with pytest.raises(StatisticsInputError, match="at least 2 positive and 2 negative"):
        delong([1, 0, 0], [0.9, 0.1, 0.2])


def test_nan_scores_are_refused_naming_the_count() -> None:
    with pytest.raises(StatisticsInputError, match=r"2 NaN value\(s\) out of 5"):
        delong([0, 1, 0, 1, 1], [0.1, np.nan, 0.3, np.nan, 0.9])


def test_constant_scores_are_refused() -> None:
    with pytest.raises(StatisticsInputError, match=r"constant \(0.5 for all 4 cases\)"):
        delong([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    with pytest.raises(StatisticsInputError, match="constant"):
        delong_paired([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [1, 1, 1, 1])


def test_bad_labels_and_lengths_are_refused() -> None:
    with pytest.raises(
        StatisticsInputError, match=r"0 \(negative\) or 1 \(positive\); 1 value\(s\) are not: 2"
    ):
        auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(StatisticsInputError, match="3 values but there are 2 labels"):
        auc([0, 1], [0.1, 0.2, 0.3])
