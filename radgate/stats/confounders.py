r"""Confounder checks: does acquisition metadata alone predict the label, and does the AUC hold within strata?

If positive cases came mostly from one scanner, a model can score well by recognising the scanner rather
than the finding (Zech et al. 2018). Two checks expose this:

1. **Metadata alone.** The label is "predicted" from a metadata level (e.g. ``ManufacturerModelName``)
   by the level's positive rate, estimated out of fold (stratified K-fold, each case scored by the rate in
   the other folds, smoothed towards the training prevalence :math:`\bar p` as
   :math:`(x_\ell + \lambda \bar p)/(n_\ell + \lambda)`, unseen levels getting :math:`\bar p`). Its DeLong
   AUC says how much of the label the metadata carries (0.5: none). The :math:`2 \times L` table of
   label by level gets Pearson's :math:`\chi^2` test and Cramér's
   :math:`V = \sqrt{\chi^2 / N}` (two rows).
2. **Within strata.** The model's AUC within each level, and the pooled within-strata AUC
   :math:`A_w = \sum_s m_s n_s A_s / \sum_s m_s n_s` — the AUC over only those positive–negative pairs
   that share a level, which no scanner shortcut can inflate. Strata are independent, so
   :math:`\mathrm{Var}(A_w) = \sum_s (m_s n_s)^2 V_s / (\sum_s m_s n_s)^2` with DeLong's :math:`V_s`.
   An overall AUC well above :math:`A_w` is the signature of a confounder.

References
----------
- Zech JR, Badgeley MA, Liu M, et al. Variable generalization performance of a deep learning model to
  detect pneumonia in chest radiographs: a cross-sectional study. PLoS Med 2018;15:e1002683.
- Pearson K. On the criterion that a given system of deviations ... Philos Mag 1900;50:157–175.
- Cramér H. Mathematical Methods of Statistics. Princeton 1946, §21.9.
- DeLong ER, et al. Biometrics 1988;44:837–845.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from radgate.stats.calibration import stratified_folds
from radgate.stats.checks import StatisticsInputError, as_labels, as_scores, check_confidence
from radgate.stats.proportions import Proportion, wilson, z_value
from radgate.stats.roc import AUCResult, delong

__all__ = [
    "LevelPrevalence",
    "MetadataPrediction",
    "StratumAUC",
    "WithinStrata",
    "auc_within_strata",
    "metadata_predicts_label",
]


@dataclass(frozen=True)
class LevelPrevalence:
    level: str
    n: int
    n_positive: int
    prevalence: Proportion


@dataclass(frozen=True)
class MetadataPrediction:
    """How well the metadata levels alone predict the label."""

    columns: tuple[str, ...]
    levels: tuple[LevelPrevalence, ...]
    chi2: float
    dof: int
    p: float
    cramers_v: float
    auc: AUCResult | None  # out-of-fold metadata-only AUC; None when it cannot be computed (see note)
    folds: int
    note: str


@dataclass(frozen=True)
class StratumAUC:
    level: str
    n_positive: int
    n_negative: int
    auc: AUCResult | None
    note: str


@dataclass(frozen=True)
class WithinStrata:
    """The model's AUC overall, within each stratum, and pooled over within-stratum pairs."""

    column: str
    overall: AUCResult
    strata: tuple[StratumAUC, ...]
    pooled_auc: float | None
    pooled_ci: tuple[float, float] | None
    pairs_within_fraction: float  # share of all positive–negative pairs that lie within one stratum


def _joint_levels(metadata: Mapping[str, Sequence[object]], n: int) -> NDArray[np.str_]:
    if not metadata:
        raise StatisticsInputError("metadata check needs at least one metadata column")
    cols = []
    for name, values in metadata.items():
        if len(values) != n:
            raise StatisticsInputError(f"metadata column {name!r} has {len(values)} values for {n} cases")
        cols.append(["" if v is None else str(v) for v in values])
    return np.asarray([" | ".join(parts) for parts in zip(*cols, strict=True)])


def metadata_predicts_label(
    labels: ArrayLike,
    metadata: Mapping[str, Sequence[object]],
    folds: int = 5,
    seed: int = 0,
    smoothing: float = 1.0,
    confidence: float = 0.95,
) -> MetadataPrediction:
    """Check 1 of the module docstring over the joint levels of the given ``metadata`` columns."""
    y = as_labels(labels)
    lv = _joint_levels(metadata, y.size)
    names, inverse = np.unique(lv, return_inverse=True)
    counts = np.bincount(inverse, minlength=names.size)
    positives = np.bincount(inverse, weights=y.astype(np.float64), minlength=names.size).astype(int)
    levels = tuple(
        LevelPrevalence(
            str(names[k]),
            int(counts[k]),
            int(positives[k]),
            wilson(int(positives[k]), int(counts[k]), confidence),
        )
        for k in range(names.size)
    )
    n_pos = int(y.sum())
    if names.size < 2 or n_pos in (0, y.size):
        chi2, dof, p, v = 0.0, 0, 1.0, 0.0
    else:
        table = np.vstack([positives, counts - positives])
        res = sps.chi2_contingency(table, correction=False)
        chi2, dof, p = float(res.statistic), int(res.dof), float(res.pvalue)
        v = math.sqrt(chi2 / y.size)
    auc_res: AUCResult | None = None
    note = ""
    if names.size < 2:
        note = f"a single level ({names[0]!r}): metadata cannot separate the classes here"
    else:
        try:
            fold = stratified_folds(y, folds, seed)
            encoded = np.empty(y.size)
            for k in range(folds):
                test = fold == k
                train = ~test
                prior = float(y[train].mean())
                n_tr = np.bincount(inverse[train], minlength=names.size)
                x_tr = np.bincount(inverse[train], weights=y[train].astype(np.float64), minlength=names.size)
                rate = (x_tr + smoothing * prior) / (n_tr + smoothing)
                encoded[test] = rate[inverse[test]]
            auc_res = delong(y, encoded, confidence)
            if auc_res.ci[0] > 0.5 and p < 0.05:
                note = (
                    f"metadata alone predicts the label (AUC {auc_res.auc:.3f}, 95% CI {auc_res.ci[0]:.3f}–"
                    f"{auc_res.ci[1]:.3f}); compare the model's AUC within strata"
                )
            else:
                note = "no evidence that the metadata alone predicts the label"
        except StatisticsInputError as exc:
            note = f"metadata-only AUC not computed: {exc}"
    return MetadataPrediction(tuple(metadata), levels, chi2, dof, p, v, auc_res, folds, note)


def auc_within_strata(
    labels: ArrayLike,
    scores: ArrayLike,
    strata: Sequence[object],
    column: str = "stratum",
    confidence: float = 0.95,
) -> WithinStrata:
    """Check 2 of the module docstring: the model's AUC in each stratum and pooled within strata."""
    check_confidence(confidence)
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    if len(strata) != y.size:
        raise StatisticsInputError(f"{column}: {len(strata)} stratum values for {y.size} cases")
    lv = np.asarray(["" if v is None else str(v) for v in strata])
    overall = delong(y, s, confidence)
    rows = []
    weights, aucs, variances = [], [], []
    within_pairs = 0
    for level in sorted(set(lv.tolist())):
        member = lv == level
        ys, ss = y[member], s[member]
        m, n = int(ys.sum()), int((~ys).sum())
        within_pairs += m * n
        res: AUCResult | None = None
        note = ""
        try:
            res = delong(ys, ss, confidence)
            weights.append(m * n)
            aucs.append(res.auc)
            variances.append(res.variance)
        except StatisticsInputError as exc:
            note = str(exc)
        rows.append(StratumAUC(level, m, n, res, note))
    pooled = pooled_ci = None
    if weights:
        w = np.asarray(weights, dtype=np.float64)
        pooled = float(np.sum(w * np.asarray(aucs)) / w.sum())
        se = math.sqrt(float(np.sum(w**2 * np.asarray(variances))) / w.sum() ** 2)
        z = z_value(confidence)
        pooled_ci = (max(0.0, pooled - z * se), min(1.0, pooled + z * se))
    total_pairs = overall.n_positive * overall.n_negative
    return WithinStrata(column, overall, tuple(rows), pooled, pooled_ci, within_pairs / total_pairs)
