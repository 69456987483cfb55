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
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from radgate.validation.cases import CaseFlow, CaseSet

__all__ = [
    "DEFAULT_THRESHOLD",
    "Comparison",
    "Confusion",
    "McNemar",
    "SubgroupLevel",
    "ValidationSummary",
    "json_ready",
    "validate_cases",
    "validate_table",
    "validation_summary",
    "validation_summary_cases",
]

Interval = tuple[float, float]

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


def _num(x: Any) -> float | None:
    """A finite float, else ``None`` (an AUC on one class, a ratio over zero)."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _interval(ci: Any) -> Interval | None:
    if ci is None:
        return None
    lo, hi = _num(ci[0]), _num(ci[1])
    return None if lo is None or hi is None else (lo, hi)


def _fields_json(obj: Any, omit_none: Sequence[str] = ()) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict in field order (nested dataclasses too); ``omit_none``: keys left
    out when ``None``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.name in omit_none:
            continue
        out[f.name] = _to_json(value)
    return out


def _to_json(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields_json(value)
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return json_ready(value)


@dataclass(frozen=True)
class Confusion:
    """The 2x2 table at the operating threshold (a positive call: ``score >= threshold``)."""

    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class SubgroupLevel:
    """One level of a subgroup column: its accuracy and its gap to the overall figure."""

    n: int
    n_positive: int
    n_negative: int
    auc: float | None
    auc_ci: Interval | None
    sensitivity: float | None
    sensitivity_ci: Interval | None
    specificity: float | None
    specificity_ci: Interval | None
    insufficient: bool
    auc_gap: float | None
    auc_gap_ci: Interval | None
    sensitivity_gap: float | None
    sensitivity_gap_ci: Interval | None
    specificity_gap: float | None
    specificity_gap_ci: Interval | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired calls: ``b`` and ``c`` the discordant pairs."""

    b: int
    c: int
    p: float | None
    method: str


@dataclass(frozen=True)
class Comparison:
    """The paired comparison with a second score column (paired DeLong; McNemar on the calls)."""

    column: str
    n: int
    auc: float | None
    auc_other: float | None
    auc_difference: float | None
    difference_ci: Interval | None
    z: float | None
    p: float | None
    correlation: float | None
    sensitivity_other: float | None
    specificity_other: float | None
    mcnemar_sensitivity: McNemar
    mcnemar_specificity: McNemar
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self, omit_none=("note",))


@dataclass(frozen=True)
class ValidationSummary:
    """The validation section: discrimination, the operating point, predictive values, subgroups, and the
    comparison and case flow when there are any. Field names are the JSON keys of ``validate --json``."""

    n: int
    n_positive: int
    n_negative: int
    auc: float
    auc_ci: Interval
    auc_se: float | None
    threshold: float
    threshold_source: str
    confusion: Confusion
    sensitivity: float
    sensitivity_ci: Interval
    specificity: float
    specificity_ci: Interval
    prevalence: float
    prevalence_source: str
    ppv: float | None
    ppv_ci: Interval | None
    npv: float | None
    npv_ci: Interval | None
    predictive_ci_method: str
    fp_per_tp: float | None
    subgroups: Mapping[str, Mapping[str, SubgroupLevel]]
    confidence: float
    methods: Mapping[str, str]
    warnings: tuple[str, ...]
    comparison: Comparison | None = None
    case_flow: CaseFlow | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """The ``radgate validate --json`` object (no NaN: missing numbers are ``null``)."""
        out = _fields_json(self, omit_none=("comparison", "case_flow"))
        if self.case_flow is not None:
            out["case_flow"] = json_ready(self.case_flow.as_dict())
        return out

    def with_case_flow(self, flow: CaseFlow) -> ValidationSummary:
        return dataclasses.replace(self, case_flow=flow)


def _subgroups(
    y: np.ndarray,
    s: np.ndarray,
    columns: Mapping[str, Sequence[str]],
    threshold: float,
    confidence: float,
    min_positives: int,
    min_negatives: int,
) -> dict[str, dict[str, SubgroupLevel]]:
    out: dict[str, dict[str, SubgroupLevel]] = {}
    for column, values in columns.items():
        levels: dict[str, SubgroupLevel] = {}
        for r in subgroup_analysis(
            y, s, list(values), threshold, column, confidence, min_positives, min_negatives
        ):
            levels[str(r.level)] = SubgroupLevel(
                n=int(r.n),
                n_positive=int(r.n_positive),
                n_negative=int(r.n_negative),
                auc=_num(r.auc.auc) if r.auc else None,
                auc_ci=_interval(r.auc.ci) if r.auc else None,
                sensitivity=_num(r.sensitivity.estimate) if r.sensitivity else None,
                sensitivity_ci=_interval(r.sensitivity.ci) if r.sensitivity else None,
                specificity=_num(r.specificity.estimate) if r.specificity else None,
                specificity_ci=_interval(r.specificity.ci) if r.specificity else None,
                insufficient=bool(r.insufficient),
                auc_gap=_num(r.auc_gap.estimate) if r.auc_gap else None,
                auc_gap_ci=_interval(r.auc_gap.ci) if r.auc_gap else None,
                sensitivity_gap=_num(r.sensitivity_gap.estimate) if r.sensitivity_gap else None,
                sensitivity_gap_ci=_interval(r.sensitivity_gap.ci) if r.sensitivity_gap else None,
                specificity_gap=_num(r.specificity_gap.estimate) if r.specificity_gap else None,
                specificity_gap_ci=_interval(r.specificity_gap.ci) if r.specificity_gap else None,
                notes=tuple(r.notes),
            )
        out[column] = levels
    return out


def _comparison(
    y: np.ndarray, s: np.ndarray, other: np.ndarray, threshold: float, confidence: float, column: str
) -> Comparison:
    both = ~np.isnan(other)
    yb, sb, ob = y[both], s[both], other[both]
    res = delong_paired(yb, sb, ob, confidence)
    calls_a, calls_b = sb >= threshold, ob >= threshold
    pos, neg = yb == 1, yb == 0
    mc_se = mcnemar_paired(calls_a[pos], calls_b[pos])
    mc_sp = mcnemar_paired(~calls_a[neg], ~calls_b[neg])
    left_out = y.size - int(both.sum())
    return Comparison(
        column=column,
        n=int(both.sum()),
        auc=_num(res.auc_a),
        auc_other=_num(res.auc_b),
        auc_difference=_num(res.difference),
        difference_ci=_interval(res.ci),
        z=_num(res.z),
        p=_num(res.p),
        correlation=_num(res.correlation),
        sensitivity_other=_num(calls_b[pos].mean()),
        specificity_other=_num((~calls_b[neg]).mean()),
        mcnemar_sensitivity=McNemar(int(mc_se.b), int(mc_se.c), _num(mc_se.p), mc_se.method),
        mcnemar_specificity=McNemar(int(mc_sp.b), int(mc_sp.c), _num(mc_sp.p), mc_sp.method),
        note=(
            f"{left_out} case(s) without a {column!r} score are left out of the comparison"
            if left_out
            else None
        ),
    )


def validation_summary(
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
) -> ValidationSummary:
    """The validation summary of the module docstring from arrays (no DataFrame needed), typed.

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
    comparison = None
    if other_scores is not None:
        other = np.asarray(other_scores, dtype=np.float64)
        if other.shape != s.shape:
            raise StatisticsInputError(f"comparison scores have {other.size} values for {s.size} cases")
        comparison = _comparison(y, s, other, float(threshold), confidence, compare_column)
    return ValidationSummary(
        n=int(y.size),
        n_positive=int(auc_res.n_positive),
        n_negative=int(auc_res.n_negative),
        auc=float(auc_res.auc),  # both classes are present (checked above): these exist
        auc_ci=(float(auc_res.ci[0]), float(auc_res.ci[1])),
        auc_se=_num(auc_res.se),
        threshold=float(threshold),
        threshold_source=threshold_source,
        confusion=Confusion(int(op.tp), int(op.fp), int(op.tn), int(op.fn)),
        sensitivity=float(op.sensitivity.estimate),
        sensitivity_ci=(float(op.sensitivity.ci[0]), float(op.sensitivity.ci[1])),
        specificity=float(op.specificity.estimate),
        specificity_ci=(float(op.specificity.ci[0]), float(op.specificity.ci[1])),
        prevalence=float(pv.prevalence),
        prevalence_source=pv.prevalence_source,
        ppv=_num(pv.ppv),
        ppv_ci=_interval(pv.ppv_ci),
        npv=_num(pv.npv),
        npv_ci=_interval(pv.npv_ci),
        predictive_ci_method=pv.method,
        fp_per_tp=_num(burden.fp_per_tp),
        subgroups=_subgroups(
            y, s, subgroups or {}, float(threshold), confidence, min_positives, min_negatives
        ),
        confidence=float(confidence),
        methods=dict(METHODS),
        warnings=tuple(warnings),
        comparison=comparison,
    )


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
    """:func:`validation_summary` as the ``radgate validate --json`` object."""
    return validation_summary(
        scores,
        labels,
        threshold,
        prevalence,
        subgroups,
        other_scores,
        compare_column,
        confidence,
        min_positives,
        min_negatives,
        threshold_source,
    ).to_json()


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


def validation_summary_cases(
    cases: CaseSet,
    threshold: float | None = None,
    prevalence: float | None = None,
    subgroups: Sequence[str] = (),
    compare: str | None = None,
    confidence: float = 0.95,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    threshold_source: str | None = None,
) -> ValidationSummary:
    """:func:`validation_summary` on a :class:`CaseSet`, with its case flow."""
    if compare is not None and cases.other_scores is None:
        raise StatisticsInputError(f"no case has a {compare!r} score to compare with")
    return validation_summary(
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
    ).with_case_flow(cases.flow)


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
    """:func:`validation_summary_cases` as the ``radgate validate --json`` object (``case_flow`` added)."""
    return validation_summary_cases(
        cases, threshold, prevalence, subgroups, compare, confidence, min_positives, min_negatives,
        threshold_source,
    ).to_json()
