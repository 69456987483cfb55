"""The go-live report as typed sections: what its HTML and PDF renderers and ``validation.json`` read.

:func:`radgate.validation.report.build_report` computes a :class:`ReportSections`; the HTML template
(:mod:`radgate.validation.report_html`) and the PDF's text pages (:func:`pdf_lines`, set by
:mod:`radgate.validation.report_pdf`) render the same object, and :meth:`ReportSections.to_json` is the
``validation.json`` written beside them. Field names are the JSON keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from radgate.validation.cases import CaseFlow
from radgate.validation.explanation import ExplanationCheck
from radgate.validation.metrics import Interval, ValidationSummary, json_ready

if TYPE_CHECKING:
    from radgate.validation.report import ReportContext

__all__ = [
    "AlternativeThreshold",
    "CalibrationRow",
    "CalibrationSection",
    "ConfounderSection",
    "ConfounderStratum",
    "PlattModel",
    "ReportSections",
    "pdf_lines",
]


def _json(obj: Any, omit_none: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.name in omit_none:
            continue
        out[f.name] = _value(value)
    return out


def _value(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json(value)
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    return json_ready(value)


@dataclass(frozen=True)
class AlternativeThreshold:
    """A threshold chosen on these same cases (optimistic): Youden's, or one for a target sensitivity."""

    criterion: str
    threshold: float
    sensitivity: float
    sensitivity_ci: Interval
    specificity: float
    specificity_ci: Interval


@dataclass(frozen=True)
class CalibrationRow:
    """Brier, ECE and the calibration intercept and slope of one set of probabilities."""

    name: str
    brier: float | None
    ece: float | None
    intercept: float | None = None
    intercept_ci: Interval | None = None
    slope: float | None = None
    slope_ci: Interval | None = None
    note: str | None = None  # why intercept and slope could not be fitted

    def to_json(self) -> dict[str, Any]:
        return _json(self, omit_none=("note",))


@dataclass(frozen=True)
class PlattModel:
    slope: float
    intercept: float
    on_logit: bool


@dataclass(frozen=True)
class CalibrationSection:
    scores_are_probabilities: bool
    binning: str
    folds: int
    rows: tuple[CalibrationRow, ...]
    platt_model: PlattModel | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ConfounderStratum:
    level: str
    n_positive: int
    n_negative: int
    prevalence: float | None
    auc: float | None
    auc_ci: Interval | None
    note: str | None


@dataclass(frozen=True)
class ConfounderSection:
    """Does the metadata column alone predict the label, and the model's AUC within its levels."""

    column: str
    levels: int
    metadata_auc: float | None
    metadata_auc_ci: Interval | None
    chi2: float | None
    dof: int
    p: float | None
    cramers_v: float | None
    note: str
    overall_auc: float | None
    pooled_within_auc: float | None
    pooled_within_ci: Interval | None
    pairs_within_fraction: float | None
    strata: tuple[ConfounderStratum, ...]


@dataclass(frozen=True)
class ReportSections:
    """Every section of the go-live report, in the order the renderers show them."""

    title: str
    generated_at: str
    synthetic: bool
    context: ReportContext
    trial: Mapping[str, Any] | None
    case_flow: CaseFlow
    validation: ValidationSummary
    bootstrap_auc_ci: Interval
    bootstrap_resamples: int
    alternative_thresholds: tuple[AlternativeThreshold, ...]
    calibration: CalibrationSection
    confounders: tuple[ConfounderSection, ...]
    false_negatives: tuple[str, ...]
    false_positives: tuple[str, ...]
    explanation_check: ExplanationCheck | None
    criteria: Mapping[str, Any] | None
    flags: tuple[str, ...]
    burden: Mapping[str, Any] | None
    software: Mapping[str, str]
    limitations: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``validation.json``: the numbers behind both renderings."""
        out = _json(self)
        out["context"] = json_ready(
            {k: v for k, v in dataclasses.asdict(self.context).items() if k != "limitations"}
        )
        out["case_flow"] = json_ready(self.case_flow.as_dict())
        out["explanation_check"] = (
            json_ready(dataclasses.asdict(self.explanation_check)) if self.explanation_check else None
        )
        return out


def _f(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def pdf_lines(r: ReportSections, synthetic_notice: str, not_a_device: str) -> list[tuple[str, str]]:
    """The report as (style, text) lines for the PDF's text pages; style is h1, h2, warn or text."""
    v, ctx = r.validation, r.context
    lines: list[tuple[str, str]] = [("h1", r.title)]
    if r.synthetic:
        lines.append(("warn", synthetic_notice))
    lines.append(("text", not_a_device))
    lines.append(("text", f"Generated {r.generated_at}"))
    lines.append(("h2", "Intended use and model"))
    for label, value in (
        ("Intended use", ctx.intended_use),
        ("Deployment", ctx.deployment),
        ("Model", ctx.model_name),
        ("Version", ctx.model_version),
        ("SHA-256", ctx.model_sha256),
        ("Site", ctx.site),
        ("Data period", ctx.data_period),
        ("Sampling", ctx.sampling),
        ("Reference standard", ctx.reference_standard),
    ):
        lines.append(("text", f"{label}: {value or 'not stated'}"))
    if r.trial:
        t = r.trial
        lines.append(
            (
                "text",
                f"Silent trial {t['name']} started {t['started_at']}, criteria sha256 {t['criteria_sha256']}",
            )
        )
    flow = r.case_flow
    lines.append(("h2", "Case flow"))
    lines.append(("text", f"Received {flow.received}, analysed {flow.analysed}"))
    for reason, count in flow.excluded.items():
        lines.append(("text", f"  not analysed: {reason}: {count}"))
    lines.append(("h2", "Discrimination and operating point"))
    boot = r.bootstrap_auc_ci
    lines.append(
        (
            "text",
            f"AUC {v.auc:.3f} (DeLong 95% CI {v.auc_ci[0]:.3f}-{v.auc_ci[1]:.3f}; bootstrap "
            f"{boot[0]:.3f}-{boot[1]:.3f})",
        )
    )
    c = v.confusion
    lines.append(
        ("text", f"Threshold {v.threshold:g} ({v.threshold_source}): score >= threshold is positive")
    )
    lines.append(("text", f"2x2: TP {c.tp}  FN {c.fn}  FP {c.fp}  TN {c.tn}"))
    for name, est, ci in (
        ("Sensitivity", v.sensitivity, v.sensitivity_ci),
        ("Specificity", v.specificity, v.specificity_ci),
        ("PPV", v.ppv, v.ppv_ci),
        ("NPV", v.npv, v.npv_ci),
    ):
        interval = "n/a" if ci is None else f"{ci[0]:.3f}-{ci[1]:.3f}"
        lines.append(("text", f"{name}: {_f(est)} (95% CI {interval})"))
    lines.append(
        ("text", f"Prevalence {v.prevalence:.4g} ({v.prevalence_source}); FP per TP {_f(v.fp_per_tp, '.2f')}")
    )
    if r.burden:
        b = r.burden
        lines.append(
            (
                "text",
                f"At {b['volume_per_day']:g} studies/day: {b['tp_per_day']:.2f} TP, {b['fp_per_day']:.2f} "
                f"FP, {b['fn_per_day']:.2f} FN per day",
            )
        )
    for alt in r.alternative_thresholds:
        lines.append(
            (
                "text",
                f"Alternative ({alt.criterion}): threshold {alt.threshold:.4g}, Se "
                f"{alt.sensitivity:.3f} ({alt.sensitivity_ci[0]:.3f}-{alt.sensitivity_ci[1]:.3f}), "
                f"Sp {alt.specificity:.3f}",
            )
        )
    cal = r.calibration
    lines.append(("h2", f"Calibration (ECE binning: {cal.binning}; recalibration {cal.folds}-fold CV)"))
    for row in cal.rows:
        lines.append(
            (
                "text",
                f"{row.name}: Brier {_f(row.brier, '.4f')}, ECE {_f(row.ece, '.4f')}, intercept "
                f"{_f(row.intercept, '.2f')}, slope {_f(row.slope, '.2f')}",
            )
        )
    for note in cal.notes:
        lines.append(("text", f"  {note}"))
    lines.append(("h2", "Subgroups"))
    for column, levels in v.subgroups.items():
        for level, sub in levels.items():
            tag = "  INSUFFICIENT DATA" if sub.insufficient else ""
            lines.append(
                (
                    "text",
                    f"{column} = {level}: n {sub.n} (+{sub.n_positive}/-{sub.n_negative}), AUC "
                    f"{_f(sub.auc)}, Se {_f(sub.sensitivity)}, Sp {_f(sub.specificity)}{tag}",
                )
            )
    lines.append(("h2", "Confounder check"))
    for conf in r.confounders:
        lines.append(("text", f"{conf.column}: {conf.note}"))
        lines.append(
            (
                "text",
                f"  overall AUC {_f(conf.overall_auc)}, pooled within-{conf.column} AUC "
                f"{_f(conf.pooled_within_auc)}",
            )
        )
    if r.explanation_check:
        e = r.explanation_check
        lines.append(("h2", "Explanation check"))
        share = (
            ""
            if e.share is None or e.ci is None
            else f" ({e.share:.2f}, Wilson 95% CI {e.ci[0]:.2f}-{e.ci[1]:.2f})"
        )
        lines.append(
            ("text", f"Of {e.n} true positives with a map and a known region, {e.inside} peak inside{share}.")
        )
        lines.append(("text", e.note))
    if r.criteria:
        crit = r.criteria
        lines.append(("h2", f"Acceptance criteria — recommendation: {crit['recommendation'].upper()}"))
        for flag in r.flags:
            lines.append(("warn", flag))
        for cr in crit["criteria"]:
            where = f" [{cr['subgroup']}]" if cr["subgroup"] else ""
            lines.append(("text", f"{cr['outcome'].upper():>13}  {cr['requirement']}{where}: {cr['detail']}"))
        for reason in crit["reasons"]:
            lines.append(("text", f"  reason: {reason}"))
    for title, key, uids in (
        ("False negatives", "false-negatives", r.false_negatives),
        ("False positives", "false-positives", r.false_positives),
    ):
        lines.append(("h2", f"{title} ({len(uids)}; full list in {key}.csv)"))
        lines.extend(("text", uid) for uid in uids[:60])
        if len(uids) > 60:
            lines.append(("text", f"... and {len(uids) - 60} more"))
    lines.append(("h2", "Limitations"))
    lines.extend(("text", f"- {item}") for item in r.limitations)
    lines.append(("h2", "Software"))
    lines.extend(("text", f"{k}: {val}") for k, val in r.software.items())
    return lines
