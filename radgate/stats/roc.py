r"""ROC analysis: AUC with DeLong's variance (fast algorithm), paired/unpaired comparison, operating points.

Notation: :math:`m` positive cases with scores :math:`X_i`, :math:`n` negative cases with scores
:math:`Y_j`; a higher score means "more likely positive" and a case is *called positive* when its score is
at least the threshold (``score >= threshold``). The AUC is the Mann–Whitney statistic

.. math::

    \hat A = \frac{1}{mn}\sum_{i=1}^{m}\sum_{j=1}^{n} \psi(X_i, Y_j), \qquad
    \psi(x, y) = \begin{cases} 1 & x > y \\ 1/2 & x = y \\ 0 & x < y \end{cases}

i.e. the trapezoidal area under the empirical ROC curve, ties counting one half.

DeLong's structural components (placement values) are :math:`V_{10}(X_i) = \frac1n\sum_j \psi(X_i, Y_j)`
and :math:`V_{01}(Y_j) = \frac1m\sum_i \psi(X_i, Y_j)`; for :math:`k` scores on the same cases,
:math:`S_{10}` and :math:`S_{01}` are the :math:`k \times k` sample covariance matrices of these
components and :math:`\mathrm{Cov}(\hat A) = S_{10}/m + S_{01}/n`. Sun & Xu obtain the components from
midranks in :math:`O(N \log N)` instead of :math:`O(mn)`: with :math:`T_Z` the midrank of a case among all
cases, :math:`T_X` among the positives and :math:`T_Y` among the negatives,
:math:`V_{10}(X_i) = (T_Z(X_i) - T_X(X_i))/n` and :math:`V_{01}(Y_j) = 1 - (T_Z(Y_j) - T_Y(Y_j))/m`.
Here a single sort per score gives all three midranks (the positives and negatives stay in sorted order
inside the sorted whole).

References
----------
- DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated receiver
  operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837–845.
- Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under correlated
  receiver operating characteristic curves. IEEE Signal Process Lett 2014;21(11):1389–1393.
- Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating characteristic (ROC)
  curve. Radiology 1982;143:29–36.
- Youden WJ. Index for rating diagnostic tests. Cancer 1950;3:32–35.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from radgate.stats.checks import (
    StatisticsInputError,
    as_labels,
    as_scores,
    check_confidence,
    require_both_classes,
    require_varying,
)
from radgate.stats.proportions import Proportion, wilson, z_value

__all__ = [
    "AUCComparison",
    "AUCResult",
    "OperatingPoint",
    "RocCurve",
    "StructuralComponents",
    "auc",
    "compare_unpaired",
    "delong",
    "delong_paired",
    "hanley_mcneil_se",
    "midranks",
    "operating_point",
    "roc_curve",
    "structural_components",
    "threshold_for_sensitivity",
    "youden_threshold",
]


@dataclass(frozen=True)
class AUCResult:
    """An AUC with its DeLong variance and two-sided Wald interval (truncated to [0, 1])."""

    auc: float
    variance: float
    se: float
    ci: tuple[float, float]
    n_positive: int
    n_negative: int
    confidence: float


@dataclass(frozen=True)
class AUCComparison:
    """``auc_a − auc_b`` with its standard error, interval, z statistic and two-sided p-value."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci: tuple[float, float]
    z: float
    p: float
    paired: bool
    correlation: float | None  # correlation of the two AUC estimates (paired design only)
    confidence: float


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC points, thresholds descending; the first point (threshold +inf) calls nobody positive."""

    thresholds: NDArray[np.float64]
    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]


@dataclass(frozen=True)
class OperatingPoint:
    """The 2×2 table at one threshold (``score >= threshold`` is called positive) with Wilson intervals."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion
    specificity: Proportion
    criterion: str


@dataclass(frozen=True)
class StructuralComponents:
    """DeLong's placement values for ``k`` score vectors: ``v10`` is (k, m) over positives, ``v01`` (k, n).

    Positives and negatives are in the order they appear in the input, so the same column is the same
    case for every score vector (what the paired covariance needs).
    """

    v10: NDArray[np.float64]
    v01: NDArray[np.float64]

    @property
    def aucs(self) -> NDArray[np.float64]:
        return np.asarray(self.v10.mean(axis=1))

    def covariance(self) -> NDArray[np.float64]:
        r"""DeLong's :math:`S_{10}/m + S_{01}/n` (sample covariances with :math:`m-1`, :math:`n-1`)."""
        m, n = self.v10.shape[1], self.v01.shape[1]
        if m < 2 or n < 2:
            raise StatisticsInputError(
                f"DeLong's variance needs at least 2 positive and 2 negative cases; got {m} positive and "
                f"{n} negative"
            )
        s10 = np.atleast_2d(np.cov(self.v10, ddof=1))
        s01 = np.atleast_2d(np.cov(self.v01, ddof=1))
        return np.asarray(s10 / m + s01 / n)


def _midranks_of_sorted(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based midranks of an ascending array: a run of equal values shares the mean of its ranks."""
    size = values.size
    if size == 0:
        return np.empty(0)
    starts_run = np.empty(size, dtype=bool)
    starts_run[0] = True
    np.not_equal(values[1:], values[:-1], out=starts_run[1:])
    starts = np.flatnonzero(starts_run)
    ends = np.append(starts[1:], size)
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def midranks(values: ArrayLike) -> NDArray[np.float64]:
    """1-based midranks (ties get the average of the ranks they span), in input order; O(N log N)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v)
    out = np.empty(v.size)
    out[order] = _midranks_of_sorted(v[order])
    return out


def _placements_sorted(
    positive: NDArray[np.bool_], scores: NDArray[np.float64], n_pos: int, n_neg: int
) -> tuple[NDArray[np.intp], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Sun & Xu's placements from one sort: (order, positive-in-sorted-order, V10 sorted, V01 sorted)."""
    order = np.argsort(scores)
    sorted_scores = scores[order]
    pos_sorted = positive[order]
    t_z = _midranks_of_sorted(sorted_scores)
    t_x = _midranks_of_sorted(sorted_scores[pos_sorted])
    neg_sorted = ~pos_sorted
    t_y = _midranks_of_sorted(sorted_scores[neg_sorted])
    v10 = (t_z[pos_sorted] - t_x) / n_neg
    v01 = 1.0 - (t_z[neg_sorted] - t_y) / n_pos
    return order, pos_sorted, v10, v01


def _prepare(
    labels: ArrayLike, scores: ArrayLike, what: str
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    require_both_classes(y, what)
    return y, s


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    r"""The AUC (Mann–Whitney form, ties count 1/2) from midranks: :math:`(R_+ - m(m+1)/2)/(mn)`.

    :math:`R_+` is the sum of the midranks of the positive cases among all cases. Constant scores give
    0.5 by this formula but carry no ranking information, so they are refused (see :func:`delong`).
    """
    y, s = _prepare(labels, scores, "AUC")
    require_varying(s, "AUC")
    m, n = int(np.count_nonzero(y)), int(y.size - np.count_nonzero(y))
    order = np.argsort(s)
    ranks = _midranks_of_sorted(s[order])
    r_pos = float(ranks[y[order]].sum())
    return (r_pos - m * (m + 1) / 2.0) / (m * n)


def structural_components(labels: ArrayLike, *scores: ArrayLike) -> StructuralComponents:
    """DeLong's placement values for one or more score vectors on the same cases (Sun & Xu 2014)."""
    if not scores:
        raise StatisticsInputError("structural_components needs at least one score vector")
    y = as_labels(labels)
    m, n = require_both_classes(y, "DeLong's method")
    pos_rank = np.cumsum(y) - 1  # index of each positive among the positives, in input order
    neg_rank = np.cumsum(~y) - 1
    v10 = np.empty((len(scores), m))
    v01 = np.empty((len(scores), n))
    for k, raw in enumerate(scores):
        s = as_scores(raw, name=f"scores[{k}]" if len(scores) > 1 else "scores", n=y.size)
        order, pos_sorted, v10_sorted, v01_sorted = _placements_sorted(y, s, m, n)
        v10[k, pos_rank[order[pos_sorted]]] = v10_sorted
        v01[k, neg_rank[order[~pos_sorted]]] = v01_sorted
    return StructuralComponents(v10, v01)


def _wald_ci(estimate: float, se: float, confidence: float, low: float, high: float) -> tuple[float, float]:
    z = z_value(confidence)
    return (max(low, estimate - z * se), min(high, estimate + z * se))


def delong(labels: ArrayLike, scores: ArrayLike, confidence: float = 0.95) -> AUCResult:
    r"""AUC with DeLong's variance :math:`S_{10}/m + S_{01}/n` and the Wald interval :math:`\hat A \pm z\,SE`.

    The interval is truncated to [0, 1]. It needs at least two
    positive and two negative cases, and non-constant scores. At perfect separation (AUC 0 or 1) every
    placement value is equal, DeLong's variance is 0 and the interval collapses to the point: report the
    number of cases beside it, or use :func:`radgate.stats.bootstrap.bootstrap_auc`.

    Runs in :math:`O(N \log N)`: one sort of the scores (Sun & Xu 2014).
    """
    check_confidence(confidence)
    y, s = _prepare(labels, scores, "DeLong's AUC interval")
    require_varying(s, "DeLong's AUC interval")
    m, n = int(np.count_nonzero(y)), int(y.size - np.count_nonzero(y))
    if m < 2 or n < 2:
        raise StatisticsInputError(
            f"DeLong's variance needs at least 2 positive and 2 negative cases; "
            f"got {m} positive and {n} negative"
        )
    _, _, v10, v01 = _placements_sorted(y, s, m, n)
    a = float(v10.mean())
    variance = float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    se = math.sqrt(max(variance, 0.0))
    return AUCResult(a, variance, se, _wald_ci(a, se, confidence, 0.0, 1.0), m, n, confidence)


def _two_sided_p(z: float) -> float:
    return float(2.0 * sps.norm.sf(abs(z)))


def delong_paired(
    labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, confidence: float = 0.95
) -> AUCComparison:
    r"""DeLong's test for two correlated AUCs (two scores on the same cases), two-sided.

    .. math::

        z = \frac{\hat A_a - \hat A_b}{\sqrt{V_a + V_b - 2C_{ab}}}, \qquad
        C_{ab} = \frac{S_{10}^{ab}}{m} + \frac{S_{01}^{ab}}{n}

    (DeLong et al. 1988, with the contrast :math:`L = (1, -1)`); the interval is
    :math:`\hat A_a - \hat A_b \pm z_{1-\alpha/2}\,SE`, truncated to [−1, 1]. Identical rankings give a
    difference of exactly 0 with zero variance: reported as :math:`z = 0`, :math:`p = 1`.
    """
    check_confidence(confidence)
    y = as_labels(labels)
    sa = as_scores(scores_a, "scores_a", n=y.size)
    sb = as_scores(scores_b, "scores_b", n=y.size)
    require_both_classes(y, "DeLong's paired test")
    require_varying(sa, "DeLong's paired test (scores_a)")
    require_varying(sb, "DeLong's paired test (scores_b)")
    comps = structural_components(y, sa, sb)
    cov = comps.covariance()
    aucs = comps.aucs
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    denom = math.sqrt(cov[0, 0] * cov[1, 1])
    corr = float(cov[0, 1] / denom) if denom > 0 else None
    if var <= 1e-15:
        if abs(diff) > 1e-12:
            raise StatisticsInputError(
                f"DeLong's paired test: the AUCs differ by {diff:g} but the variance of the difference is "
                f"{var:g}; the data are degenerate (perfect separation by one score?)"
            )
        return AUCComparison(
            float(aucs[0]), float(aucs[1]), 0.0, 0.0, (0.0, 0.0), 0.0, 1.0, True, corr, confidence
        )
    se = math.sqrt(var)
    z = diff / se
    return AUCComparison(
        float(aucs[0]),
        float(aucs[1]),
        diff,
        se,
        _wald_ci(diff, se, confidence, -1.0, 1.0),
        z,
        _two_sided_p(z),
        True,
        corr,
        confidence,
    )


def compare_unpaired(a: AUCResult, b: AUCResult, confidence: float = 0.95) -> AUCComparison:
    r"""Compare AUCs from independent case samples: :math:`z = (\hat A_a - \hat A_b)/\sqrt{V_a + V_b}`.

    Hanley & McNeil (1982), comparison of two areas from independent samples (their correlation term
    :math:`r` is 0 when the cases differ), using each AUC's DeLong variance.
    """
    check_confidence(confidence)
    diff = a.auc - b.auc
    var = a.variance + b.variance
    if var <= 0.0:
        raise StatisticsInputError(
            "unpaired AUC comparison: both AUC variances are 0 (perfect separation in both samples); "
            "there is no sampling variability to test against"
        )
    se = math.sqrt(var)
    z = diff / se
    return AUCComparison(
        a.auc,
        b.auc,
        diff,
        se,
        _wald_ci(diff, se, confidence, -1.0, 1.0),
        z,
        _two_sided_p(z),
        False,
        None,
        confidence,
    )


def hanley_mcneil_se(auc_value: float, n_positive: int, n_negative: int) -> float:
    r"""Hanley & McNeil's (1982) standard error of an AUC from the area and the two sample sizes alone.

    .. math::

        SE = \sqrt{\frac{A(1-A) + (m-1)(Q_1 - A^2) + (n-1)(Q_2 - A^2)}{mn}},\quad
        Q_1 = \frac{A}{2-A},\ Q_2 = \frac{2A^2}{1+A}

    (their exponential-distribution approximation). Used for planning sample sizes; for data,
    prefer :func:`delong`.
    """
    if not 0.0 <= auc_value <= 1.0:
        raise StatisticsInputError(f"an AUC lies in [0, 1], got {auc_value!r}")
    if n_positive < 1 or n_negative < 1:
        raise StatisticsInputError(
            f"need at least one positive and one negative, got {n_positive} and {n_negative}"
        )
    a = auc_value
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_positive - 1) * (q1 - a * a) + (n_negative - 1) * (q2 - a * a)) / (
        n_positive * n_negative
    )
    return math.sqrt(max(var, 0.0))


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> RocCurve:
    """Every point of the empirical ROC curve: one per distinct score, thresholds descending.

    At threshold :math:`t` the true-positive fraction is the share of positives with score ≥ t and the
    false-positive fraction the share of negatives with score ≥ t. The first point, at +inf, is (0, 0).
    """
    y, s = _prepare(labels, scores, "An ROC curve")
    order = np.argsort(-s, kind="stable")
    s_desc = s[order]
    y_desc = y[order]
    last_of_run = np.append(s_desc[1:] != s_desc[:-1], True)
    tps = np.cumsum(y_desc)[last_of_run]
    fps = np.cumsum(~y_desc)[last_of_run]
    m, n = int(tps[-1]), int(fps[-1])
    return RocCurve(
        np.concatenate([[np.inf], s_desc[last_of_run]]),
        np.concatenate([[0.0], fps / n]),
        np.concatenate([[0.0], tps / m]),
    )


def operating_point(
    labels: ArrayLike, scores: ArrayLike, threshold: float, confidence: float = 0.95, criterion: str = "fixed"
) -> OperatingPoint:
    """The 2×2 table when ``score >= threshold`` is called positive, with Wilson intervals for Se and Sp."""
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    require_both_classes(y, "Sensitivity and specificity")
    if not math.isfinite(threshold):
        raise StatisticsInputError(f"the threshold must be a finite number, got {threshold!r}")
    called = s >= threshold
    tp = int(np.count_nonzero(called & y))
    fp = int(np.count_nonzero(called & ~y))
    fn = int(np.count_nonzero(~called & y))
    tn = int(np.count_nonzero(~called & ~y))
    return OperatingPoint(
        float(threshold),
        tp,
        fp,
        tn,
        fn,
        wilson(tp, tp + fn, confidence),
        wilson(tn, tn + fp, confidence),
        criterion,
    )


def youden_threshold(labels: ArrayLike, scores: ArrayLike, confidence: float = 0.95) -> OperatingPoint:
    r"""The threshold maximising Youden's :math:`J = Se + Sp - 1` over the distinct scores (Youden 1950).

    Ties in :math:`J` go to the highest threshold (fewest cases flagged). The sensitivity and specificity
    are estimated on the data that chose the threshold and are therefore optimistic; confirm the threshold
    on separate cases (the silent trial).
    """
    curve = roc_curve(labels, scores)
    j = curve.tpr[1:] - curve.fpr[1:]
    best = int(np.argmax(j)) + 1
    return operating_point(labels, scores, float(curve.thresholds[best]), confidence, "youden")


def threshold_for_sensitivity(
    labels: ArrayLike, scores: ArrayLike, target: float, confidence: float = 0.95
) -> OperatingPoint:
    """The highest threshold whose sensitivity on these cases is at least ``target``.

    Highest threshold = best specificity among the thresholds that reach the target. The returned point
    carries the Wilson interval of the sensitivity achieved: when its lower limit is below ``target`` the
    data cannot yet show the target is met (a larger sample or a lower threshold is needed).
    """
    if not 0.0 < target <= 1.0:
        raise StatisticsInputError(f"target sensitivity must be in (0, 1], got {target!r}")
    curve = roc_curve(labels, scores)
    reaching = np.flatnonzero(curve.tpr >= target - 1e-12)
    idx = int(reaching[0])
    return operating_point(
        labels, scores, float(curve.thresholds[idx]), confidence, f"sensitivity >= {target:g}"
    )
