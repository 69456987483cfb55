"""Performance of one group of cases against ground truth, with the intervals monitoring reports.

AUC with DeLong's interval (:func:`radgate.stats.delong`), sensitivity, specificity and PPV with Wilson
intervals (:func:`radgate.stats.wilson`) at the locked operating point (the stored flag), the flag rate over
all scored cases (labelled or not), realised false positives per true positive (the work-up burden), the
label-free CBPE estimate (:mod:`radgate.stats.cbpe`) and the counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from radgate.stats import PlattScaling, StatisticsInputError, delong, fit_platt, wilson
from radgate.stats.cbpe import expected_auc, expected_rates

__all__ = ["Calibration", "GroupMetrics", "fit_calibration", "group_metrics"]


@dataclass
class GroupMetrics:
    """One period (optionally one scanner or subgroup level within it); ``None`` where not estimable."""

    period: str
    group_by: str = ""  # "" for the whole deployment, else "scanner" or a subgroup column
    group: str = ""
    n: int = 0
    n_labelled: int = 0
    n_positive: int = 0
    n_negative: int = 0
    auc: float | None = None
    auc_se: float | None = None
    auc_ci: tuple[float, float] | None = None
    sensitivity: float | None = None
    sensitivity_ci: tuple[float, float] | None = None
    specificity: float | None = None
    specificity_ci: tuple[float, float] | None = None
    ppv: float | None = None
    ppv_ci: tuple[float, float] | None = None
    flag_rate: float | None = None
    fp_per_tp: float | None = None
    true_positives: int = 0
    false_positives: int = 0
    cbpe_auc: float | None = None
    cbpe_sensitivity: float | None = None
    cbpe_specificity: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Calibration:
    """Scores to probabilities for CBPE, learnt on the reference's labelled cases (Platt scaling)."""

    platt: PlattScaling | None
    identity: bool  # scores already probabilities and no fit possible

    def probabilities(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.platt is not None:
            return self.platt.predict(scores)
        return np.clip(scores, 0.0, 1.0)


def fit_calibration(labels: NDArray[np.int8], scores: NDArray[np.float64]) -> Calibration:
    known = labels >= 0
    y, s = labels[known] == 1, scores[known]
    on_logit = bool(s.size and s.min() > 0.0 and s.max() < 1.0)
    try:
        return Calibration(fit_platt(y, s, on_logit=on_logit), False)
    except StatisticsInputError:
        return Calibration(None, True)


def group_metrics(
    period: str,
    scores: NDArray[np.float64],
    flags: NDArray[np.bool_],
    labels: NDArray[np.int8],
    calibration: Calibration | None = None,
    group_by: str = "",
    group: str = "",
    confidence: float = 0.95,
) -> GroupMetrics:
    m = GroupMetrics(period, group_by, group, n=int(scores.size))
    if scores.size:
        m.flag_rate = float(flags.mean())
    known = labels >= 0
    y = labels[known] == 1
    s, f = scores[known], flags[known]
    m.n_labelled = int(y.size)
    m.n_positive = int(y.sum())
    m.n_negative = m.n_labelled - m.n_positive
    tp = int(np.sum(f & y))
    fp = int(np.sum(f & ~y))
    m.true_positives, m.false_positives = tp, fp
    if m.n_positive:
        p = wilson(tp, m.n_positive, confidence)
        m.sensitivity, m.sensitivity_ci = p.estimate, p.ci
    if m.n_negative:
        p = wilson(m.n_negative - fp, m.n_negative, confidence)
        m.specificity, m.specificity_ci = p.estimate, p.ci
    if tp + fp:
        p = wilson(tp, tp + fp, confidence)
        m.ppv, m.ppv_ci = p.estimate, p.ci
    if tp:
        m.fp_per_tp = fp / tp
    if m.n_positive >= 2 and m.n_negative >= 2:
        try:
            a = delong(y, s, confidence)
            m.auc, m.auc_se, m.auc_ci = a.auc, a.se, a.ci
        except StatisticsInputError as exc:
            m.notes.append(f"AUC not estimable: {exc}")
    elif m.n_labelled:
        m.notes.append(f"AUC needs 2 positives and 2 negatives; {m.n_positive} and {m.n_negative} labelled")
    if calibration is not None and scores.size >= 2:
        probabilities = calibration.probabilities(scores)
        try:
            m.cbpe_auc = expected_auc(probabilities, scores)
            m.cbpe_sensitivity, m.cbpe_specificity = expected_rates(probabilities, flags)
        except StatisticsInputError as exc:
            m.notes.append(f"CBPE not estimable: {exc}")
    for name in ("auc", "cbpe_auc"):
        value = getattr(m, name)
        if value is not None and math.isnan(value):
            setattr(m, name, None)
    return m
