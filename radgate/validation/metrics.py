"""``radgate validate``: one call from scores and labels to the validation summary (the JSON contract).

:func:`validate_table` returns a plain ``dict`` that is the exact shape of ``radgate validate --json``:

==================  =====================================================================================
``n``               cases analysed; ``n_positive`` / ``n_negative`` by reference label
``auc``             Mann–Whitney AUC; ``auc_ci`` DeLong 95% (fast algorithm), ``auc_se``
``threshold``       operating point: a case is called positive when ``score >= threshold``
``sensitivity``     with ``sensitivity_ci`` (Wilson); ``specificity`` / ``specificity_ci`` likewise
``ppv`` ``npv``     at ``prevalence`` (given, else the sample's) with Mercaldo logit ``ppv_ci`` / ``npv_ci``
``fp_per_tp``       expected false positives per true positive at that prevalence (``null`` if Se = 0)
``subgroups``       ``{column: {level: {n, n_positive, n_negative, auc, auc_ci, sensitivity, specificity,
                    insufficient, ...}}}``
``comparison``      with a second score: ``auc_other``, ``auc_difference``, ``difference_ci``, ``z``, ``p``
                    (paired DeLong, two-sided) and McNemar tests of the paired calls
==================  =====================================================================================

plus ``confusion``, ``prevalence``, ``case_flow``, ``methods`` and ``warnings``. Numbers that do not exist
(an AUC on one class) are ``null`` — never ``NaN``, which is not JSON.

The default threshold is :data:`DEFAULT_THRESHOLD` (0.5, the natural cut for a probability); pass the model
manifest's operating point explicitly when there is one (``threshold_source`` says which was used).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from radgate.policy.enum import ThresholdSource
from radgate.stats import (
    MIN_NEGATIVES,
    MIN_POSITIVES,
    StatisticsInputError,
    delong,
    delong_paired,
    expected_burden,
    mcnemar_paired,
    operating_point,
    predictive_values,
    subgroup_analysis,
)
from radgate.stats.checks import as_labels, as_scores
from radgate.validation.cases import CaseSet

__all__ = ["DEFAULT_THRESHOLD", "json_ready", "validate_cases", "validate_table"]

DEFAULT_THRESHOLD = 0.5

METHODS = {
    "auc_ci": "DeLong 1988 variance (Sun & Xu 2014 fast algorithm), Wald interval truncated to [0, 1]",
    "proportion_ci": "Wilson score interval (Newcombe 1998, method 3)",
    "predictive_ci": "Mercaldo, Lau & Zhou 2007 logit interval (adjusted logit when a 2x2 cell is 0)",
    "comparison": "paired DeLong test, two-sided; McNemar on the paired calls",
    "subgroup_gap": "subgroup minus overall; Newcombe hybrid score (Se, Sp), DeLong contrast (AUC)",
    "positive_call": "score >= threshold",
}


def json_ready(value: Any) -> Any:
    """Plain Python for ``json.dumps``: numpy scalars unwrapped, tuples to lists, NaN/inf to ``None``."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def _subgroups(
    y: np.ndarray,
    s: np.ndarray,
    columns: Mapping[str, Sequence[str]],
    threshold: float,
    confidence: float,
    min_positives: int,
    min_negatives: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column, values in columns.items():
        levels: dict[str, dict[str, Any]] = {}
        for r in subgroup_analysis(
            y, s, list(values), threshold, column, confidence, min_positives, min_negatives
        ):
            levels[r.level] = {
                "n": r.n,
                "n_positive": r.n_positive,
                "n_negative": r.n_negative,
                "auc": r.auc.auc if r.auc else None,
                "auc_ci": list(r.auc.ci) if r.auc else None,
                "sensitivity": r.sensitivity.estimate if r.sensitivity else None,
                "sensitivity_ci": list(r.sensitivity.ci) if r.sensitivity else None,
                "specificity": r.specificity.estimate if r.specificity else None,
                "specificity_ci": list(r.specificity.ci) if r.specificity else None,
                "insufficient": r.insufficient,
                "auc_gap": r.auc_gap.estimate if r.auc_gap else None,
                "auc_gap_ci": list(r.auc_gap.ci) if r.auc_gap else None,
                "sensitivity_gap": r.sensitivity_gap.estimate if r.sensitivity_gap else None,
                "sensitivity_gap_ci": list(r.sensitivity_gap.ci) if r.sensitivity_gap else None,
                "specificity_gap": r.specificity_gap.estimate if r.specificity_gap else None,
                "specificity_gap_ci": list(r.specificity_gap.ci) if r.specificity_gap else None,
                "notes": list(r.notes),
            }
        out[column] = levels
    return out


def _comparison(
    y: np.ndarray, s: np.ndarray, other: np.ndarray, threshold: float, confidence: float, column: str
) -> dict[str, Any]:
    both = ~np.isnan(other)
    yb, sb, ob = y[both], s[both], other[both]
    res = delong_paired(yb, sb, ob, confidence)
    calls_a, calls_b = sb >= threshold, ob >= threshold
    pos, neg = yb == 1, yb == 0
    mc_se = mcnemar_paired(calls_a[pos], calls_b[pos])
    mc_sp = mcnemar_paired(~calls_a[neg], ~calls_b[neg])
    out: dict[str, Any] = {
        "column": column,
        "n": int(both.sum()),
        "auc": res.auc_a,
        "auc_other": res.auc_b,
        "auc_difference": res.difference,
        "difference_ci": list(res.ci),
        "z": res.z,
        "p": res.p,
        "correlation": res.correlation,
        "sensitivity_other": float(calls_b[pos].mean()),
        "specificity_other": float((~calls_b[neg]).mean()),
        "mcnemar_sensitivity": {"b": mc_se.b, "c": mc_se.c, "p": mc_se.p, "method": mc_se.method},
        "mcnemar_specificity": {"b": mc_sp.b, "c": mc_sp.c, "p": mc_sp.p, "method": mc_sp.method},
    }
    if int(both.sum()) < y.size:
        out["note"] = (
            f"{y.size - int(both.sum())} case(s) without a {column!r} score are left out of the comparison"
        )
    return out


def validate_table(
    scores: ArrayLike,
    labels: ArrayLike,
    threshold: float | None = None,
    prevalence: float | None = None,
    subgroups: Mapping[str, Sequence[str]] | None = None,
    other_scores: ArrayLike | None = None,
    compare_column: str = "other",
    confidence: float = 0.95,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    threshold_source: str | None = None,
) -> dict[str, Any]:
    """The validation summary of the module docstring from arrays (no DataFrame needed).

    ``threshold_source`` says where a given ``threshold`` came from (default ``given``); see
    :func:`resolve_threshold` for the one rule every command uses.

    ``subgroups`` maps a column name to one level per case; ``other_scores`` (NaN where missing) adds the
    paired ``comparison``. Raises :class:`radgate.stats.StatisticsInputError` when the data cannot answer
    (one class only, NaN or constant scores, fewer than 2 cases of a class).
    """
    y = as_labels(labels).astype(np.int64)
    s = as_scores(scores, n=y.size)
    threshold, threshold_source = resolve_threshold(threshold, None, threshold_source)
    auc_res = delong(y, s, confidence)
    op = operating_point(y, s, threshold, confidence)
    pv = predictive_values(op.tp, op.fn, op.tn, op.fp, prevalence, confidence)
    burden = expected_burden(pv.prevalence, op.sensitivity.estimate, op.specificity.estimate, 1.0)
    warnings: list[str] = []
    if auc_res.n_positive < min_positives or auc_res.n_negative < min_negatives:
        warnings.append(
            f"{auc_res.n_positive} positive and {auc_res.n_negative} negative cases: fewer than the "
            f"{min_positives} and {min_negatives} a local validation should have"
        )
    if auc_res.variance == 0.0:
        warnings.append("the scores separate the classes perfectly: DeLong's interval has zero width")
    if pv.prevalence_source == "sample":
        warnings.append(
            "PPV and NPV use the sample prevalence; give --prevalence for the site's prevalence if the cases "
            "are not a consecutive sample"
        )
    result: dict[str, Any] = {
        "n": int(y.size),
        "n_positive": auc_res.n_positive,
        "n_negative": auc_res.n_negative,
        "auc": auc_res.auc,
        "auc_ci": list(auc_res.ci),
        "auc_se": auc_res.se,
        "threshold": float(threshold),
        "threshold_source": threshold_source,
        "confusion": {"tp": op.tp, "fp": op.fp, "tn": op.tn, "fn": op.fn},
        "sensitivity": op.sensitivity.estimate,
        "sensitivity_ci": list(op.sensitivity.ci),
        "specificity": op.specificity.estimate,
        "specificity_ci": list(op.specificity.ci),
        "prevalence": pv.prevalence,
        "prevalence_source": pv.prevalence_source,
        "ppv": pv.ppv,
        "ppv_ci": list(pv.ppv_ci),
        "npv": pv.npv,
        "npv_ci": list(pv.npv_ci),
        "predictive_ci_method": pv.method,
        "fp_per_tp": burden.fp_per_tp,
        "subgroups": _subgroups(
            y, s, subgroups or {}, float(threshold), confidence, min_positives, min_negatives
        ),
        "confidence": confidence,
        "methods": METHODS,
        "warnings": warnings,
    }
    if other_scores is not None:
        other = np.asarray(other_scores, dtype=np.float64)
        if other.shape != s.shape:
            raise StatisticsInputError(f"comparison scores have {other.size} values for {s.size} cases")
        result["comparison"] = _comparison(y, s, other, float(threshold), confidence, compare_column)
    return json_ready(result)


def resolve_threshold(
    given: float | None, known: tuple[float, str] | None = None, given_source: str | None = None
) -> tuple[float, str]:
    """The one threshold rule of ``validate`` and ``report validation``, and where the threshold came from.

    ``--threshold`` when given; else the deployment's (or model's) operating point when one is known
    (``known``: threshold and its :class:`radgate.policy.ThresholdSource`); else 0.5, labelled ``default``.
    """
    if given is not None:
        return float(given), given_source or ThresholdSource.GIVEN.value
    if known is not None:
        return float(known[0]), str(known[1])
    return DEFAULT_THRESHOLD, ThresholdSource.DEFAULT.value


def export_threshold(path: Path) -> tuple[float, str] | None:
    """The operating threshold an exported predictions CSV (``radgate predictions export``) was decided at.

    Read from its first scored row's ``threshold`` column; ``None`` for any other CSV. An export holds one
    deployment's rows when validated (``--deployment``), so its first threshold is its threshold.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if "threshold" not in (reader.fieldnames or []):
                return None
            for row in reader:
                text = (row.get("threshold") or "").strip()
                if text:
                    source = (row.get("threshold_source") or "").strip() or ThresholdSource.DEPLOYMENT.value
                    return float(text), source
    except (OSError, ValueError):
        return None
    return None


def validate_cases(
    cases: CaseSet,
    threshold: float | None = None,
    prevalence: float | None = None,
    subgroups: Sequence[str] = (),
    compare: str | None = None,
    confidence: float = 0.95,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    threshold_source: str | None = None,
) -> dict[str, Any]:
    """:func:`validate_table` on a :class:`CaseSet`, adding its ``case_flow``."""
    if compare is not None and cases.other_scores is None:
        raise StatisticsInputError(f"no case has a {compare!r} score to compare with")
    result = validate_table(
        cases.scores,
        cases.labels,
        threshold,
        prevalence,
        {col: cases.attributes[col] for col in subgroups},
        cases.other_scores if compare is not None else None,
        compare or "other",
        confidence,
        min_positives,
        min_negatives,
        threshold_source,
    )
    result["case_flow"] = cases.flow.as_dict()
    return result
