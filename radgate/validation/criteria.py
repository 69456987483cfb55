"""Acceptance criteria for a silent trial, written before it starts, and their evaluation with the CIs behind.

The criteria file is TOML with an ``[analysis]`` table (how to analyse) and a ``[criteria]`` table (what
must hold); an optional ``[trial]`` table states the intended use::

    [trial]
    intended_use = "Adult PA chest radiographs, triage of suspected pneumothorax"

    [analysis]
    threshold = 0.5            # operating point: score >= threshold is called positive
    prevalence = 0.02          # the site's prevalence, for PPV/NPV and FP per TP
    subgroups = ["Manufacturer", "PatientSex"]
    confidence = 0.95

    [criteria]
    min_positives = 100
    min_negatives = 100
    auc_min = 0.90
    sensitivity_ci_lower_min = 0.85
    specificity_min = 0.80
    subgroup_sensitivity_min = 0.80
    max_fp_per_tp = 10

Each criterion is judged as follows (``decisive`` = more cases would not plausibly change the verdict):

- ``*_min`` on a point estimate passes when the estimate reaches the bound; a failure is decisive when
  even the upper confidence limit is below the bound.
- ``*_ci_lower_min`` passes when the lower confidence limit reaches the bound; a failure is decisive
  when the point estimate itself is below the bound (a larger sample narrows the interval around it).
- ``min_positives`` / ``min_negatives`` fail indecisively: the remedy is more cases.
- ``max_fp_per_tp`` uses the interval :math:`1/PPV - 1` inherits from the PPV's.
- ``subgroup_*_min`` applies to every subgroup level with sufficient data (at least 100 positives and
  100 negatives); levels below that are *not validated* and listed, so that policy withholds results there.

Recommendation: any decisive failure → **do not deploy**; otherwise any failure → **extend the trial**;
otherwise **go live**.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radgate.errors import Invalid

if TYPE_CHECKING:
    from radgate.validation.metrics import ValidationSummary

__all__ = [
    "CRITERIA",
    "DO_NOT_DEPLOY",
    "EXTEND",
    "GO_LIVE",
    "AcceptanceCriteria",
    "AnalysisPlan",
    "CriteriaError",
    "CriterionResult",
    "Verdict",
    "evaluate_criteria",
]

GO_LIVE = "go live"
EXTEND = "extend the trial"
DO_NOT_DEPLOY = "do not deploy"


class CriteriaError(Invalid, ValueError):
    """The criteria file is not valid (unknown key, wrong type, value out of range)."""


@dataclass(frozen=True)
class _Spec:
    kind: str  # count | point | lower | max_ratio | subgroup
    metric: str  # key in the validation result
    label: str
    rate: bool = True  # value must lie in [0, 1]


CRITERIA: dict[str, _Spec] = {
    "min_positives": _Spec("count", "n_positive", "positive cases", rate=False),
    "min_negatives": _Spec("count", "n_negative", "negative cases", rate=False),
    "auc_min": _Spec("point", "auc", "AUC"),
    "auc_ci_lower_min": _Spec("lower", "auc", "AUC lower confidence limit"),
    "sensitivity_min": _Spec("point", "sensitivity", "sensitivity"),
    "sensitivity_ci_lower_min": _Spec("lower", "sensitivity", "sensitivity lower confidence limit"),
    "specificity_min": _Spec("point", "specificity", "specificity"),
    "specificity_ci_lower_min": _Spec("lower", "specificity", "specificity lower confidence limit"),
    "ppv_min": _Spec("point", "ppv", "PPV"),
    "ppv_ci_lower_min": _Spec("lower", "ppv", "PPV lower confidence limit"),
    "npv_min": _Spec("point", "npv", "NPV"),
    "npv_ci_lower_min": _Spec("lower", "npv", "NPV lower confidence limit"),
    "max_fp_per_tp": _Spec("max_ratio", "fp_per_tp", "false positives per true positive", rate=False),
    "subgroup_auc_min": _Spec("subgroup", "auc", "subgroup AUC"),
    "subgroup_sensitivity_min": _Spec("subgroup", "sensitivity", "subgroup sensitivity"),
    "subgroup_specificity_min": _Spec("subgroup", "specificity", "subgroup specificity"),
}

_ANALYSIS_KEYS = {
    "threshold",
    "prevalence",
    "subgroups",
    "confidence",
    "min_positives_per_subgroup",
    "min_negatives_per_subgroup",
}
_TRIAL_KEYS = {"intended_use", "notes"}


@dataclass(frozen=True)
class AnalysisPlan:
    """How the trial's cases are analysed (fixed before the trial like the criteria)."""

    threshold: float | None = None
    prevalence: float | None = None
    subgroups: tuple[str, ...] = ()
    confidence: float = 0.95
    min_positives_per_subgroup: int = 100
    min_negatives_per_subgroup: int = 100


def _number(
    section: str, key: str, value: Any, low: float | None, high: float | None, integer: bool = False
) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and not math.isfinite(float(value)):
        ok = False
    if ok and ((low is not None and value < low) or (high is not None and value > high)):
        ok = False
    if not ok:
        kind = "a whole number" if integer else "a number"
        bounds = f" in [{low}, {high}]" if high is not None else (f" >= {low}" if low is not None else "")
        raise CriteriaError(f"[{section}] {key} must be {kind}{bounds}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AcceptanceCriteria:
    """Parsed, checked criteria with the exact text and its SHA-256 (what a trial records at start)."""

    criteria: Mapping[str, float]
    analysis: AnalysisPlan
    intended_use: str | None
    text: str
    sha256: str = field(compare=False)

    @classmethod
    def from_text(cls, text: str, origin: str = "criteria") -> AcceptanceCriteria:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CriteriaError(f"{origin} is not valid TOML: {exc}") from exc
        unknown_sections = set(doc) - {"trial", "analysis", "criteria"}
        if unknown_sections:
            raise CriteriaError(
                f"{origin}: unknown table(s) {sorted(unknown_sections)}; "
                "expected [trial], [analysis], [criteria]"
            )
        crit_raw = doc.get("criteria", {})
        if not isinstance(crit_raw, dict) or not crit_raw:
            raise CriteriaError(f"{origin}: a [criteria] table with at least one criterion is required")
        unknown = set(crit_raw) - set(CRITERIA)
        if unknown:
            raise CriteriaError(
                f"{origin}: unknown criterion {sorted(unknown)}; known: {', '.join(sorted(CRITERIA))}"
            )
        criteria: dict[str, float] = {}
        for key, value in crit_raw.items():
            spec = CRITERIA[key]
            if spec.kind == "count":
                criteria[key] = _number("criteria", key, value, 0, None, integer=True)
            elif spec.kind == "max_ratio":
                criteria[key] = _number("criteria", key, value, 0, None)
            else:
                criteria[key] = _number("criteria", key, value, 0.0, 1.0)
        ana = doc.get("analysis", {})
        unknown = set(ana) - _ANALYSIS_KEYS
        if unknown:
            raise CriteriaError(
                f"{origin}: unknown [analysis] key(s) {sorted(unknown)}; known: {sorted(_ANALYSIS_KEYS)}"
            )
        subgroups = ana.get("subgroups", [])
        if not isinstance(subgroups, list) or not all(isinstance(s, str) and s for s in subgroups):
            raise CriteriaError(f"[analysis] subgroups must be a list of column names, got {subgroups!r}")
        prevalence = ana.get("prevalence")
        if prevalence is not None:
            prevalence = _number("analysis", "prevalence", prevalence, 0.0, 1.0)
            if prevalence in (0.0, 1.0):
                raise CriteriaError(
                    f"[analysis] prevalence must lie strictly between 0 and 1, got {prevalence}"
                )
        threshold = ana.get("threshold")
        if threshold is not None:
            threshold = _number("analysis", "threshold", threshold, None, None)
        confidence = _number("analysis", "confidence", ana.get("confidence", 0.95), 0.5, 0.999)
        plan = AnalysisPlan(
            threshold,
            prevalence,
            tuple(subgroups),
            confidence,
            int(
                _number(
                    "analysis",
                    "min_positives_per_subgroup",
                    ana.get("min_positives_per_subgroup", 100),
                    1,
                    None,
                    True,
                )
            ),
            int(
                _number(
                    "analysis",
                    "min_negatives_per_subgroup",
                    ana.get("min_negatives_per_subgroup", 100),
                    1,
                    None,
                    True,
                )
            ),
        )
        if any(CRITERIA[k].kind == "subgroup" for k in criteria) and not plan.subgroups:
            raise CriteriaError(f'{origin}: subgroup criteria need [analysis] subgroups = ["column", ...]')
        trial = doc.get("trial", {})
        unknown = set(trial) - _TRIAL_KEYS
        if unknown:
            raise CriteriaError(
                f"{origin}: unknown [trial] key(s) {sorted(unknown)}; known: {sorted(_TRIAL_KEYS)}"
            )
        intended = trial.get("intended_use")
        return cls(criteria, plan, str(intended) if intended else None, text, sha256_text(text))

    @classmethod
    def load(cls, path: Path) -> AcceptanceCriteria:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CriteriaError(f"cannot read criteria file {path}: {exc.strerror or exc}") from exc
        return cls.from_text(text, origin=path.name)


def sha256_text(text: str) -> str:
    """SHA-256 of the criteria text as UTF-8 bytes (what ``radgate trial start`` records)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's verdict and the numbers behind it."""

    key: str
    requirement: str
    required: float
    observed: float | None
    ci: tuple[float, float] | None
    outcome: str  # pass | fail | not evaluated
    decisive: bool
    detail: str
    subgroup: str | None = None  # "column = level" for subgroup criteria

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "subgroup": self.subgroup,
            "requirement": self.requirement,
            "required": self.required,
            "observed": self.observed,
            "ci": list(self.ci) if self.ci else None,
            "outcome": self.outcome,
            "decisive": self.decisive,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    """All criterion results, the recommendation and the reasons for it."""

    results: tuple[CriterionResult, ...]
    recommendation: str
    reasons: tuple[str, ...]
    not_validated: tuple[str, ...]  # subgroup levels with insufficient data

    def as_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation,
            "reasons": list(self.reasons),
            "criteria": [r.as_dict() for r in self.results],
            "not_validated_subgroups": list(self.not_validated),
        }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(value: Any) -> tuple[float, float] | None:
    if not value or value[0] is None or value[1] is None:
        return None
    return (float(value[0]), float(value[1]))


def _judge_point(
    key: str,
    label: str,
    bound: float,
    est: float | None,
    ci: tuple[float, float] | None,
    subgroup: str | None = None,
) -> CriterionResult:
    req = f"{label} >= {bound:g}"
    if est is None:
        return CriterionResult(
            key, req, bound, None, ci, "fail", False, f"{label} could not be computed", subgroup
        )
    ci_text = f" (95% CI {_fmt(ci[0])}-{_fmt(ci[1])})" if ci else ""
    if est >= bound:
        return CriterionResult(
            key, req, bound, est, ci, "pass", False, f"{label} {est:.3f}{ci_text}", subgroup
        )
    decisive = ci is not None and ci[1] < bound
    why = "even the upper limit is below the bound" if decisive else "the interval still reaches the bound"
    return CriterionResult(
        key, req, bound, est, ci, "fail", decisive, f"{label} {est:.3f}{ci_text}: {why}", subgroup
    )


def _field(obj: Any, name: str) -> Any:
    """``name`` of a typed result (attribute) or of its JSON (key); ``None`` when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def evaluate_criteria(
    result: ValidationSummary | Mapping[str, Any], criteria: AcceptanceCriteria
) -> Verdict:
    """Judge ``result`` against ``criteria``: the typed :class:`~radgate.validation.metrics.ValidationSummary`
    (what a trial evaluates), or its JSON (``validate --json``, a stored ``validation.json``)."""
    results: list[CriterionResult] = []
    not_validated: list[str] = []
    for column in criteria.analysis.subgroups:
        for level, sub in ((_field(result, "subgroups") or {}).get(column) or {}).items():
            if _field(sub, "insufficient"):
                not_validated.append(
                    f"{column} = {level} ({_field(sub, 'n_positive')} positive, "
                    f"{_field(sub, 'n_negative')} negative)"
                )
    for key, bound in criteria.criteria.items():
        spec = CRITERIA[key]
        if spec.kind == "count":
            observed = int(_field(result, spec.metric))
            ok = observed >= bound
            results.append(
                CriterionResult(
                    key,
                    f"at least {bound:g} {spec.label}",
                    bound,
                    observed,
                    None,
                    "pass" if ok else "fail",
                    False,
                    f"{observed} {spec.label}" + ("" if ok else f": {int(bound) - observed} more needed"),
                )
            )
        elif spec.kind == "point":
            results.append(
                _judge_point(
                    key,
                    spec.label,
                    bound,
                    _field(result, spec.metric),
                    _ci(_field(result, f"{spec.metric}_ci")),
                )
            )
        elif spec.kind == "lower":
            est = _field(result, spec.metric)
            ci = _ci(_field(result, f"{spec.metric}_ci"))
            req = f"{spec.label} >= {bound:g}"
            if est is None or ci is None:
                results.append(
                    CriterionResult(
                        key, req, bound, None, None, "fail", False, f"{spec.metric} could not be computed"
                    )
                )
            elif ci[0] >= bound:
                results.append(
                    CriterionResult(
                        key,
                        req,
                        bound,
                        ci[0],
                        ci,
                        "pass",
                        False,
                        f"{spec.metric} {est:.3f}, 95% CI {ci[0]:.3f}-{ci[1]:.3f}",
                    )
                )
            else:
                decisive = est < bound
                why = (
                    "the point estimate itself is below the bound"
                    if decisive
                    else "the estimate meets the bound but the interval is too wide: more cases needed"
                )
                results.append(
                    CriterionResult(
                        key,
                        req,
                        bound,
                        ci[0],
                        ci,
                        "fail",
                        decisive,
                        f"{spec.metric} {est:.3f}, 95% CI {ci[0]:.3f}-{ci[1]:.3f}: {why}",
                    )
                )
        elif spec.kind == "max_ratio":
            ratio = _field(result, "fp_per_tp")
            ppv_ci = _ci(_field(result, "ppv_ci"))
            ratio_ci = None
            if ppv_ci is not None:
                ratio_ci = (
                    1.0 / ppv_ci[1] - 1.0 if ppv_ci[1] > 0 else math.inf,
                    1.0 / ppv_ci[0] - 1.0 if ppv_ci[0] > 0 else math.inf,
                )
            req = f"{spec.label} <= {bound:g}"
            ci_text = f" (95% CI {ratio_ci[0]:.2f}-{ratio_ci[1]:.2f})" if ratio_ci else ""
            if ratio is None:
                results.append(
                    CriterionResult(
                        key,
                        req,
                        bound,
                        None,
                        ratio_ci,
                        "fail",
                        True,
                        "no true positives: every flag is a false positive",
                    )
                )
            elif ratio <= bound:
                results.append(
                    CriterionResult(
                        key, req, bound, ratio, ratio_ci, "pass", False, f"{ratio:.2f} FP per TP{ci_text}"
                    )
                )
            else:
                decisive = ratio_ci is not None and ratio_ci[0] > bound
                results.append(
                    CriterionResult(
                        key, req, bound, ratio, ratio_ci, "fail", decisive, f"{ratio:.2f} FP per TP{ci_text}"
                    )
                )
        else:  # subgroup
            evaluated = False
            for column in criteria.analysis.subgroups:
                for level, sub in ((_field(result, "subgroups") or {}).get(column) or {}).items():
                    if _field(sub, "insufficient"):
                        continue
                    evaluated = True
                    results.append(
                        _judge_point(
                            key,
                            spec.label,
                            bound,
                            _field(sub, spec.metric),
                            _ci(_field(sub, f"{spec.metric}_ci")),
                            f"{column} = {level}",
                        )
                    )
            if not evaluated:
                results.append(
                    CriterionResult(
                        key,
                        f"{spec.label} >= {bound:g}",
                        bound,
                        None,
                        None,
                        "not evaluated",
                        False,
                        "no subgroup level has sufficient data (100 positives and 100 negatives)",
                    )
                )
    decisive = [r for r in results if r.outcome == "fail" and r.decisive]
    failed = [r for r in results if r.outcome == "fail"]

    def reason(r: CriterionResult) -> str:
        where = f" [{r.subgroup}]" if r.subgroup else ""
        return f"{r.requirement}{where} failed: {r.detail}"

    if decisive:
        recommendation = DO_NOT_DEPLOY
        reasons = [reason(r) for r in decisive]
    elif failed:
        recommendation = EXTEND
        reasons = [reason(r) for r in failed]
    else:
        recommendation = GO_LIVE
        reasons = [f"all {len(results)} criteria passed"]
    if not_validated:
        reasons.append("not validated (results must be withheld there): " + "; ".join(not_validated))
    return Verdict(tuple(results), recommendation, tuple(reasons), tuple(not_validated))
