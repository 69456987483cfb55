r"""Subgroups: every metric per level with intervals, "insufficient data", and the gap to the overall value.

A model is trusted only in the subgroups it was validated on. Below 100 positive or 100 negative cases
a subgroup is marked *insufficient*: its estimates are still shown, but the interval is too wide to
support a decision (a sensitivity of 0.90 on 100 positives has a Wilson 95% interval of 0.83–0.94).

The gap to the overall value comes with an interval that respects the overlap between the subgroup and
the whole:

- Sensitivity (likewise specificity). With :math:`P_s` positives in the subgroup and :math:`P_r` in the
  rest, :math:`Se_{all} = (P_s Se_s + P_r Se_r)/P`, so :math:`Se_s - Se_{all} = \frac{P_r}{P}(Se_s - Se_r)`
  exactly, a difference of two independent proportions: its interval is Newcombe's hybrid score interval
  (1998b, method 10) for :math:`Se_s - Se_r`, scaled by :math:`P_r/P`.
- AUC. Both AUCs are two-sample U-statistics on overlapping cases. Their asymptotically linear (Hájek)
  forms give, per positive case :math:`i`,
  :math:`a_i = (V_{10,i} - \hat A)/m - [i \in s]\,(V^{s}_{10,i} - \hat A_s)/m_s` and per negative
  :math:`b_j` likewise with :math:`V_{01}`, so :math:`\mathrm{Var}(\hat A_s - \hat A) \approx
  \frac{m}{m-1}\sum_i a_i^2 + \frac{n}{n-1}\sum_j b_j^2` — DeLong's estimator applied to the contrast
  (0 when the subgroup is everything). The interval is Wald, :math:`\pm z\,SE`.

References
----------
- DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44:837–845.
- Newcombe RG. Stat Med 1998;17:873–890 (method 10).
- Vergouwe Y, Steyerberg EW, Eijkemans MJ, Habbema JD. Substantial effective sample sizes were required for
  external validation studies of predictive logistic regression models. J Clin Epidemiol 2005;58:475–483.
- Collins GS, Ogundimu EO, Altman DG. Sample size considerations for the external validation of a
  multivariable prognostic model: a resampling study. Stat Med 2016;35:214–226 (at least 100 events and
  100 non-events).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radgate.stats.checks import StatisticsInputError, as_labels, as_scores, check_confidence
from radgate.stats.proportions import Proportion, newcombe_difference, wilson, z_value
from radgate.stats.roc import AUCResult, delong, structural_components

__all__ = [
    "MIN_NEGATIVES",
    "MIN_POSITIVES",
    "Gap",
    "SubgroupResult",
    "auc_gap",
    "proportion_gap",
    "subgroup_analysis",
]

MIN_POSITIVES = 100
MIN_NEGATIVES = 100


@dataclass(frozen=True)
class Gap:
    """Subgroup value minus overall value, with its interval."""

    estimate: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class SubgroupResult:
    """Metrics of one subgroup level; ``None`` where the metric cannot be computed (``notes`` say why)."""

    column: str
    level: str
    n: int
    n_positive: int
    n_negative: int
    insufficient: bool
    auc: AUCResult | None
    sensitivity: Proportion | None
    specificity: Proportion | None
    auc_gap: Gap | None
    sensitivity_gap: Gap | None
    specificity_gap: Gap | None
    notes: tuple[str, ...]


def proportion_gap(x_sub: int, n_sub: int, x_rest: int, n_rest: int, confidence: float = 0.95) -> Gap:
    r"""Gap :math:`p_s - p_{all}` between a subgroup's proportion and the overall one (module docstring).

    ``x_sub`` of ``n_sub`` in the subgroup, ``x_rest`` of ``n_rest`` in the other cases.
    """
    if n_sub <= 0:
        raise StatisticsInputError(f"the subgroup has no cases for this proportion (n = {n_sub})")
    if n_rest == 0:
        return Gap(0.0, (0.0, 0.0))
    diff = newcombe_difference(x_sub, n_sub, x_rest, n_rest, confidence)
    w = n_rest / (n_sub + n_rest)
    return Gap(w * diff.estimate, (w * diff.ci[0], w * diff.ci[1]))


def auc_gap(labels: ArrayLike, scores: ArrayLike, in_subgroup: ArrayLike, confidence: float = 0.95) -> Gap:
    """Gap :math:`A_s - A` between the AUC within a subgroup and the overall AUC (module docstring)."""
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    member = np.asarray(in_subgroup, dtype=bool)
    if member.shape != y.shape:
        raise StatisticsInputError(f"subgroup mask has shape {member.shape}, expected {y.shape}")
    comps_all = structural_components(y, s)
    comps_sub = structural_components(y[member], s[member])
    v10, v01 = comps_all.v10[0], comps_all.v01[0]
    a_all = float(v10.mean())
    a_sub = float(comps_sub.v10[0].mean())
    m, n = v10.size, v01.size
    ms, ns = comps_sub.v10.shape[1], comps_sub.v01.shape[1]
    infl_pos = (v10 - a_all) / m
    infl_pos[member[y]] -= (comps_sub.v10[0] - a_sub) / ms
    infl_neg = (v01 - a_all) / n
    infl_neg[member[~y]] -= (comps_sub.v01[0] - a_sub) / ns
    var = m / (m - 1) * float(np.sum(infl_pos**2)) + n / (n - 1) * float(np.sum(infl_neg**2))
    se = math.sqrt(max(var, 0.0))
    z = z_value(confidence)
    d = a_sub - a_all
    return Gap(d, (max(-1.0, d - z * se), min(1.0, d + z * se)))


def _levels(groups: Sequence[object] | NDArray[np.generic]) -> NDArray[np.str_]:
    arr = np.asarray(["" if g is None else str(g) for g in groups])
    return arr


def subgroup_analysis(
    labels: ArrayLike,
    scores: ArrayLike,
    groups: Sequence[object] | NDArray[np.generic],
    threshold: float,
    column: str = "subgroup",
    confidence: float = 0.95,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> list[SubgroupResult]:
    """AUC (DeLong), sensitivity and specificity (Wilson) at ``threshold``, and gaps, per level of ``groups``.

    Levels are sorted by name; a missing value (``None`` or empty) is its own level ``""``. A level is
    ``insufficient`` below ``min_positives`` positives or ``min_negatives`` negatives. Metrics that cannot
    be computed at all (no positives, constant scores, fewer than 2 cases of a class for DeLong) are
    ``None`` with a note saying why, never an error for the whole analysis.
    """
    check_confidence(confidence)
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    g = _levels(groups)
    if g.size != y.size:
        raise StatisticsInputError(f"{column}: {g.size} subgroup values for {y.size} cases")
    called = s >= threshold
    tp_all = int(np.count_nonzero(called & y))
    tn_all = int(np.count_nonzero(~called & ~y))
    p_all, n_all = int(np.count_nonzero(y)), int(np.count_nonzero(~y))
    results = []
    for level in sorted(set(g.tolist())):
        member = g == level
        ys, ss, cs = y[member], s[member], called[member]
        n_pos, n_neg = int(np.count_nonzero(ys)), int(np.count_nonzero(~ys))
        notes: list[str] = []
        auc_res: AUCResult | None = None
        a_gap: Gap | None = None
        if n_pos >= 2 and n_neg >= 2:
            try:
                auc_res = delong(ys, ss, confidence)
                a_gap = auc_gap(y, s, member, confidence)
            except StatisticsInputError as exc:
                notes.append(f"AUC not computed: {exc}")
        else:
            notes.append(
                f"AUC not computed: {n_pos} positive and {n_neg} negative case(s); DeLong needs 2 of each"
            )
        sens = spec = None
        s_gap = sp_gap = None
        tp, tn = int(np.count_nonzero(cs & ys)), int(np.count_nonzero(~cs & ~ys))
        if n_pos:
            sens = wilson(tp, n_pos, confidence)
            s_gap = proportion_gap(tp, n_pos, tp_all - tp, p_all - n_pos, confidence)
        else:
            notes.append("sensitivity not computed: no positive cases")
        if n_neg:
            spec = wilson(tn, n_neg, confidence)
            sp_gap = proportion_gap(tn, n_neg, tn_all - tn, n_all - n_neg, confidence)
        else:
            notes.append("specificity not computed: no negative cases")
        insufficient = n_pos < min_positives or n_neg < min_negatives
        if insufficient:
            notes.append(
                f"insufficient data: {n_pos} positive and {n_neg} negative case(s); at least {min_positives} "
                f"and {min_negatives} are needed"
            )
        results.append(
            SubgroupResult(
                column,
                level,
                int(member.sum()),
                n_pos,
                n_neg,
                insufficient,
                auc_res,
                sens,
                spec,
                a_gap,
                s_gap,
                sp_gap,
                tuple(notes),
            )
        )
    return results
