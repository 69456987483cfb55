r"""Confidence-based performance estimation (CBPE): expected AUC and rates from calibrated probabilities.

Before labels arrive, a calibrated probability :math:`p_i = P(y_i = 1 \mid x_i)` stands in for each label.
Treating labels as independent Bernoulli(:math:`p_i`) draws, the expected numbers of concordant and of
all positive–negative pairs give the estimate

.. math::

    \widehat{AUC} = \frac{\sum_{i \ne j} p_i (1 - p_j)\, c_{ij}}{\sum_{i \ne j} p_i (1 - p_j)},\qquad
    c_{ij} = \mathbb 1(s_i > s_j) + \tfrac12 \mathbb 1(s_i = s_j),

and, at an operating point with flags :math:`f_i`, :math:`\widehat{Se} = \sum f_i p_i / \sum p_i` and
:math:`\widehat{Sp} = \sum (1 - f_i)(1 - p_i) / \sum (1 - p_i)`. Both sums are computed in
:math:`O(N \log N)` with one sort.

**Assumption**: the calibration learnt on the reference still holds, i.e. :math:`P(y \mid x)` is unchanged
(covariate shift only). A new scanner that changes what the model's score means breaks it; a shift in the
case mix does not. So CBPE is an early signal before labels arrive, never a substitute for them.

References: NannyML, "Confidence-based performance estimation" (docs.nannyml.com, 2022); Guillory D et al.
Predicting with confidence on unseen distributions. ICCV 2021.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from radgate.stats.checks import StatisticsInputError, as_probabilities, as_scores

__all__ = ["CBPEEstimate", "expected_auc", "expected_rates"]

ASSUMPTION = (
    "P(y|x) unchanged since the reference: calibration learnt there still holds (covariate shift only)"
)


@dataclass(frozen=True)
class CBPEEstimate:
    auc: float
    sensitivity: float | None
    specificity: float | None
    expected_positives: float
    n: int
    assumption: str = ASSUMPTION


def expected_auc(probabilities: ArrayLike, scores: ArrayLike | None = None) -> float:
    """The expected AUC (module docstring); ``scores`` rank the cases (default: the probabilities)."""
    p = as_probabilities(probabilities, "probabilities")
    s = p if scores is None else as_scores(scores, "scores", n=p.size)
    if p.size < 2:
        raise StatisticsInputError(f"need at least 2 cases, got {p.size}")
    order = np.argsort(s, kind="mergesort")
    s_sorted, p_sorted = s[order], p[order]
    q_sorted = 1.0 - p_sorted
    # Groups of tied scores: for each case, the expected negatives strictly below it and tied with it.
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    group = np.cumsum(np.r_[True, s_sorted[1:] != s_sorted[:-1]]) - 1
    q_cum = np.r_[0.0, np.cumsum(q_sorted)]
    ends = np.r_[starts[1:], s_sorted.size]
    below = q_cum[starts][group]
    tied = (q_cum[ends] - q_cum[starts])[group]
    numerator = float(np.sum(p_sorted * (below + 0.5 * tied)) - 0.5 * np.sum(p_sorted * q_sorted))
    denominator = float(p.sum() * (1.0 - p).sum() - np.sum(p * (1.0 - p)))
    if denominator <= 0:
        raise StatisticsInputError("the probabilities leave no expected positive-negative pair")
    return numerator / denominator


def expected_rates(probabilities: ArrayLike, flags: ArrayLike) -> tuple[float | None, float | None]:
    """Expected sensitivity and specificity at the operating point given by ``flags``."""
    p = as_probabilities(probabilities, "probabilities")
    f = np.asarray(flags, dtype=bool)
    if f.shape != p.shape:
        raise StatisticsInputError(f"flags have shape {f.shape}, probabilities {p.shape}")
    pos, neg = float(p.sum()), float((1 - p).sum())
    sens = float(np.sum(p[f]) / pos) if pos > 0 else None
    spec = float(np.sum((1 - p)[~f]) / neg) if neg > 0 else None
    return sens, spec
