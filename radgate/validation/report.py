"""The go-live report: a self-contained HTML page and a PDF a director can sign, from a plain list of cases.

:func:`build_report` takes a :class:`~radgate.validation.cases.CaseSet` — built from a CSV by
:func:`~radgate.validation.cases.read_cases_csv`, or from any list of
:class:`~radgate.validation.cases.CaseRecord` (uid, score, label, subgroup columns, exclusion reason) by
:meth:`CaseSet.from_records`; reading radgate's predictions joined with the final reads is such a list — and
writes into ``out_dir``:

- ``validation-report.html``: every section, plots embedded as base64 PNG (no external files or scripts);
- ``validation-report.pdf``: the same content, text pages then vector figures (matplotlib ``PdfPages``);
- ``validation.json``: the numbers behind both;
- ``false-negatives.csv`` and ``false-positives.csv``: the UIDs to review.

Sections: intended use, model (name, version, SHA-256), site, dates, sampling, reference standard, case
flow, discrimination (ROC, DeLong and bootstrap intervals), the 2×2 table, Se/Sp/PPV/NPV at the local
prevalence, calibration before and after cross-validated recalibration, subgroups (forest plot),
confounder check, FN/FP lists, acceptance criteria and recommendation, limitations, software versions.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import platform
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
import matplotlib
import numpy as np
import scipy
from matplotlib.figure import Figure

import radgate
from radgate.clock import utcnow
from radgate.stats import (
    PlattScaling,
    ReliabilityCurve,
    StatisticsInputError,
    auc_within_strata,
    bootstrap_auc,
    brier_score,
    calibration_intercept_slope,
    cross_validated_recalibration,
    expected_calibration_error,
    metadata_predicts_label,
    reliability_curve,
    roc_curve,
    threshold_for_sensitivity,
    youden_threshold,
)
from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.explanation import ExplanationCheck
from radgate.validation.metrics import json_ready, validate_cases
from radgate.validation.plan import deployment_plan
from radgate.validation.report_html import TEMPLATE
from radgate.validation.report_pdf import write_text_pdf
from radgate.validation.report_plots import (
    calibration_figure,
    close_figures,
    figure_png_base64,
    forest_figure,
    roc_figure,
)
from radgate.validation.trial import TrialEvaluation

__all__ = ["SYNTHETIC_NOTICE", "ReportContext", "ReportFiles", "build_report", "build_report_from_records"]

SYNTHETIC_NOTICE = "Synthetic demo model — not for clinical use"
NOT_A_DEVICE = "radgate is infrastructure for validating and monitoring AI; it is not a medical device."
BOOTSTRAP_RESAMPLES = 2000
ECE_BINNING = "10 equal-width bins on [0, 1]"


@dataclass(frozen=True)
class ReportContext:
    """What the numbers cannot say by themselves: which model, where, on which cases, for what use."""

    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    site: str | None = None
    intended_use: str | None = None
    sampling: str | None = None
    reference_standard: str | None = None
    data_period: str | None = None
    volume_per_day: float | None = None
    synthetic: bool = False
    limitations: tuple[str, ...] = ()
    deployment: str | None = None  # the deployment whose results these are (a report from the database)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path
    json: Path
    false_negatives: Path
    false_positives: Path
    report: dict[str, Any] = field(repr=False)


def _software() -> dict[str, str]:
    return {
        "radgate": radgate.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "jinja2": jinja2.__version__,
        "platform": platform.platform(),
    }


def _calibration(cases: CaseSet, seed: int) -> tuple[dict[str, Any], dict[str, ReliabilityCurve]]:
    y, s = cases.labels, cases.scores
    probabilities = bool(s.min() >= 0.0 and s.max() <= 1.0)
    rows: list[dict[str, Any]] = []
    curves: dict[str, ReliabilityCurve] = {}

    def measure(name: str, p: np.ndarray) -> None:
        row: dict[str, Any] = {
            "name": name,
            "brier": brier_score(y, p),
            "ece": expected_calibration_error(y, p),
        }
        try:
            fit = calibration_intercept_slope(y, p)
            row.update(
                intercept=fit.intercept,
                intercept_ci=list(fit.intercept_ci),
                slope=fit.slope,
                slope_ci=list(fit.slope_ci),
            )
        except StatisticsInputError as exc:
            row.update(intercept=None, intercept_ci=None, slope=None, slope_ci=None, note=str(exc))
        rows.append(row)
        curves[name] = reliability_curve(y, p)

    notes = []
    if probabilities:
        measure("before", s)
    else:
        notes.append(
            "the scores are not probabilities (outside [0, 1]): only recalibrated values are assessed"
        )
    platt_model: dict[str, Any] | None = None
    methods: tuple[tuple[Literal["platt", "isotonic"], str], ...] = (
        ("platt", "Platt (cross-validated)"),
        ("isotonic", "isotonic (cross-validated)"),
    )
    for method, name in methods:
        try:
            rec = cross_validated_recalibration(
                y,
                s,
                method=method,
                folds=5,
                seed=seed,
                on_logit=probabilities,
            )
        except StatisticsInputError as exc:
            notes.append(f"{name} not fitted: {exc}")
            continue
        measure(name, rec.out_of_fold)
        if isinstance(rec.model, PlattScaling):
            platt_model = {
                "slope": rec.model.slope,
                "intercept": rec.model.intercept,
                "on_logit": probabilities,
            }
    return {
        "scores_are_probabilities": probabilities,
        "binning": ECE_BINNING,
        "folds": 5,
        "rows": rows,
        "platt_model": platt_model,
        "notes": notes,
    }, curves


def _confounders(cases: CaseSet, columns: Sequence[str], seed: int) -> list[dict[str, Any]]:
    out = []
    y, s = cases.labels, cases.scores
    for column in columns:
        values = list(cases.attributes[column])
        meta = metadata_predicts_label(y, {column: values}, seed=seed)
        entry: dict[str, Any] = {
            "column": column,
            "levels": len(meta.levels),
            "metadata_auc": meta.auc.auc if meta.auc else None,
            "metadata_auc_ci": list(meta.auc.ci) if meta.auc else None,
            "chi2": meta.chi2,
            "dof": meta.dof,
            "p": meta.p,
            "cramers_v": meta.cramers_v,
            "note": meta.note,
        }
        within = auc_within_strata(y, s, values, column)
        entry.update(
            overall_auc=within.overall.auc,
            pooled_within_auc=within.pooled_auc,
            pooled_within_ci=list(within.pooled_ci) if within.pooled_ci else None,
            pairs_within_fraction=within.pairs_within_fraction,
            strata=[
                {
                    "level": st.level,
                    "n_positive": st.n_positive,
                    "n_negative": st.n_negative,
                    "prevalence": next(lv.prevalence.estimate for lv in meta.levels if lv.level == st.level),
                    "auc": st.auc.auc if st.auc else None,
                    "auc_ci": list(st.auc.ci) if st.auc else None,
                    "note": st.note,
                }
                for st in within.strata
            ],
        )
        out.append(entry)
    return out


def _limitations(report: dict[str, Any], context: ReportContext) -> list[str]:
    v = report["validation"]
    items = []
    if context.synthetic:
        items.append(
            "The cases and the model are synthetic (demo data): these figures say nothing about clinical "
            "performance."
        )
    if v["n_positive"] < 100 or v["n_negative"] < 100:
        items.append(
            f"Only {v['n_positive']} positive and {v['n_negative']} negative cases: fewer than the 100 "
            "of each a local validation should have; intervals are wide."
        )
    if v["threshold_source"] == "default":
        items.append(
            f"The operating threshold is the default {v['threshold']:g}, not a pre-specified operating "
            "point from the model's manifest."
        )
    if v["prevalence_source"] == "sample":
        items.append(
            "PPV and NPV use the sample prevalence; they transfer to the site only if the cases are a "
            "consecutive sample of its population."
        )
    insufficient = [
        f"{c} = {lv}"
        for c, levels in v["subgroups"].items()
        for lv, sub in levels.items()
        if sub["insufficient"]
    ]
    if insufficient:
        items.append("Subgroups with insufficient data (not validated): " + ", ".join(insufficient) + ".")
    for conf in report["confounders"]:
        if conf["note"].startswith("metadata alone predicts"):
            items.append(
                f"{conf['column']} alone predicts the label: part of the AUC may reflect the acquisition "
                "rather than the finding; compare the within-stratum AUC."
            )
    items.append(
        "Alternative thresholds (Youden, target sensitivity) are chosen on these same cases and are "
        "optimistic; confirm any new threshold on new cases."
    )
    items.append(
        "Retrospective analysis of the cases provided; errors of the reference standard itself are not "
        "modelled."
    )
    items.extend(context.limitations)
    return items


def _write_uid_csv(path: Path, cases: CaseSet, mask: np.ndarray) -> list[str]:
    cols = list(cases.attributes)
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-cases.scores[idx], kind="stable")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "score", "label", *cols])
        for i in idx:
            w.writerow(
                [
                    cases.uids[i],
                    f"{cases.scores[i]:.6g}",
                    int(cases.labels[i]),
                    *(cases.attributes[c][i] for c in cols),
                ]
            )
    return [cases.uids[i] for i in idx]


def _pdf_text_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The report as (style, text) lines for the PDF's text pages; style is h1, h2, warn or text."""
    v = report["validation"]
    ctx = report["context"]
    lines: list[tuple[str, str]] = [("h1", report["title"])]
    if report["synthetic"]:
        lines.append(("warn", SYNTHETIC_NOTICE))
    lines.append(("text", NOT_A_DEVICE))
    lines.append(("text", f"Generated {report['generated_at']}"))
    lines.append(("h2", "Intended use and model"))
    for label, key in (
        ("Intended use", "intended_use"),
        ("Deployment", "deployment"),
        ("Model", "model_name"),
        ("Version", "model_version"),
        ("SHA-256", "model_sha256"),
        ("Site", "site"),
        ("Data period", "data_period"),
        ("Sampling", "sampling"),
        ("Reference standard", "reference_standard"),
    ):
        lines.append(("text", f"{label}: {ctx.get(key) or 'not stated'}"))
    if report["trial"]:
        t = report["trial"]
        lines.append(
            (
                "text",
                f"Silent trial {t['name']} started {t['started_at']}, criteria sha256 {t['criteria_sha256']}",
            )
        )
    flow = report["case_flow"]
    lines.append(("h2", "Case flow"))
    lines.append(("text", f"Received {flow['received']}, analysed {flow['analysed']}"))
    for reason, count in flow["excluded"].items():
        lines.append(("text", f"  not analysed: {reason}: {count}"))
    lines.append(("h2", "Discrimination and operating point"))
    lines.append(
        (
            "text",
            f"AUC {v['auc']:.3f} (DeLong 95% CI {v['auc_ci'][0]:.3f}-{v['auc_ci'][1]:.3f}; bootstrap "
            f"{report['bootstrap_auc_ci'][0]:.3f}-{report['bootstrap_auc_ci'][1]:.3f})",
        )
    )
    c = v["confusion"]
    lines.append(
        ("text", f"Threshold {v['threshold']:g} ({v['threshold_source']}): score >= threshold is positive")
    )
    lines.append(("text", f"2x2: TP {c['tp']}  FN {c['fn']}  FP {c['fp']}  TN {c['tn']}"))
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        ci = v[f"{name}_ci"]
        lines.append(
            (
                "text",
                f"{name.upper() if len(name) == 3 else name.capitalize()}: {v[name]:.3f} "
                f"(95% CI {ci[0]:.3f}-{ci[1]:.3f})",
            )
        )
    lines.append(
        (
            "text",
            f"Prevalence {v['prevalence']:.4g} ({v['prevalence_source']}); FP per TP "
            f"{'n/a' if v['fp_per_tp'] is None else format(v['fp_per_tp'], '.2f')}",
        )
    )
    if report["burden"]:
        b = report["burden"]
        lines.append(
            (
                "text",
                f"At {b['volume_per_day']:g} studies/day: {b['tp_per_day']:.2f} TP, {b['fp_per_day']:.2f} "
                f"FP, {b['fn_per_day']:.2f} FN per day",
            )
        )
    for alt in report["alternative_thresholds"]:
        lines.append(
            (
                "text",
                f"Alternative ({alt['criterion']}): threshold {alt['threshold']:.4g}, Se "
                f"{alt['sensitivity']:.3f} ({alt['sensitivity_ci'][0]:.3f}-{alt['sensitivity_ci'][1]:.3f}), "
                f"Sp {alt['specificity']:.3f}",
            )
        )
    cal = report["calibration"]
    lines.append(("h2", f"Calibration (ECE binning: {cal['binning']}; recalibration {cal['folds']}-fold CV)"))
    for row in cal["rows"]:
        slope = "n/a" if row["slope"] is None else f"{row['slope']:.2f}"
        icpt = "n/a" if row["intercept"] is None else f"{row['intercept']:.2f}"
        lines.append(
            (
                "text",
                f"{row['name']}: Brier {row['brier']:.4f}, ECE {row['ece']:.4f}, intercept {icpt}, "
                f"slope {slope}",
            )
        )
    for note in cal["notes"]:
        lines.append(("text", f"  {note}"))
    lines.append(("h2", "Subgroups"))
    for column, levels in v["subgroups"].items():
        for level, sub in levels.items():
            auc = "n/a" if sub["auc"] is None else f"{sub['auc']:.3f}"
            se = "n/a" if sub["sensitivity"] is None else f"{sub['sensitivity']:.3f}"
            sp = "n/a" if sub["specificity"] is None else f"{sub['specificity']:.3f}"
            tag = "  INSUFFICIENT DATA" if sub["insufficient"] else ""
            lines.append(
                (
                    "text",
                    f"{column} = {level}: n {sub['n']} (+{sub['n_positive']}/-{sub['n_negative']}), AUC "
                    f"{auc}, Se {se}, Sp {sp}{tag}",
                )
            )
    lines.append(("h2", "Confounder check"))
    for conf in report["confounders"]:
        lines.append(("text", f"{conf['column']}: {conf['note']}"))
        pooled = conf["pooled_within_auc"]
        lines.append(
            (
                "text",
                f"  overall AUC {conf['overall_auc']:.3f}, pooled within-{conf['column']} AUC "
                f"{'n/a' if pooled is None else format(pooled, '.3f')}",
            )
        )
    if report.get("explanation_check"):
        e = report["explanation_check"]
        lines.append(("h2", "Explanation check"))
        share = (
            ""
            if e["share"] is None
            else f" ({e['share']:.2f}, Wilson 95% CI {e['ci'][0]:.2f}-{e['ci'][1]:.2f})"
        )
        lines.append(
            (
                "text",
                f"Of {e['n']} true positives with a map and a known region, "
                f"{e['inside']} peak inside{share}.",
            )
        )
        lines.append(("text", e["note"]))
    if report["criteria"]:
        crit = report["criteria"]
        lines.append(("h2", f"Acceptance criteria — recommendation: {crit['recommendation'].upper()}"))
        for flag in report["flags"]:
            lines.append(("warn", flag))
        for r in crit["criteria"]:
            where = f" [{r['subgroup']}]" if r["subgroup"] else ""
            lines.append(("text", f"{r['outcome'].upper():>13}  {r['requirement']}{where}: {r['detail']}"))
        for reason in crit["reasons"]:
            lines.append(("text", f"  reason: {reason}"))
    for title, key in (("False negatives", "false_negatives"), ("False positives", "false_positives")):
        uids = report[key]
        lines.append(("h2", f"{title} ({len(uids)}; full list in {key.replace('_', '-')}.csv)"))
        lines.extend(("text", uid) for uid in uids[:60])
        if len(uids) > 60:
            lines.append(("text", f"... and {len(uids) - 60} more"))
    lines.append(("h2", "Limitations"))
    lines.extend(("text", f"- {item}") for item in report["limitations"])
    lines.append(("h2", "Software"))
    lines.extend(("text", f"{k}: {val}") for k, val in report["software"].items())
    return lines


def _write_pdf(path: Path, report: dict[str, Any], figures: Iterable[Figure]) -> None:
    write_text_pdf(
        path,
        _pdf_text_lines(report),
        figures,
        title=report["title"],
        subject=SYNTHETIC_NOTICE if report["synthetic"] else "Local validation",
        footer="radgate validation report",
        banner=SYNTHETIC_NOTICE if report["synthetic"] else None,
    )


def _true_positive_uids(cases: CaseSet, threshold: float) -> list[str]:
    mask = (cases.labels == 1) & (cases.scores >= threshold)
    return [uid for uid, keep in zip(cases.uids, mask, strict=True) if keep]


def build_report(
    cases: CaseSet,
    out_dir: Path,
    context: ReportContext | None = None,
    threshold: float | None = None,
    prevalence: float | None = None,
    subgroups: Sequence[str] = (),
    metadata_columns: Sequence[str] | None = None,
    evaluation: TrialEvaluation | None = None,
    seed: int = 0,
    now: datetime | None = None,
    threshold_source: str | None = None,
    explanations: Callable[[float, Sequence[str]], ExplanationCheck] | None = None,
) -> ReportFiles:
    """Analyse ``cases`` and write the report files into ``out_dir`` (created if needed).

    With a trial ``evaluation`` its analysis (threshold, prevalence, subgroups from the criteria) and its
    verdict are used. ``metadata_columns`` are checked as confounders (default: the subgroup columns).
    """
    context = context or ReportContext()
    out_dir.mkdir(parents=True, exist_ok=True)
    if evaluation is not None:
        result = evaluation.validation
        subgroups = tuple(evaluation.criteria.analysis.subgroups)
        if context.intended_use is None and evaluation.criteria.intended_use:
            context = dataclasses.replace(context, intended_use=evaluation.criteria.intended_use)
    else:
        result = validate_cases(cases, threshold, prevalence, subgroups, threshold_source=threshold_source)
    threshold_value = float(result["threshold"])
    y, s = cases.labels, cases.scores
    boot = bootstrap_auc(y, s, BOOTSTRAP_RESAMPLES, seed=seed)
    alternatives = []
    for point in (youden_threshold(y, s), threshold_for_sensitivity(y, s, 0.9)):
        alternatives.append(
            {
                "criterion": point.criterion,
                "threshold": point.threshold,
                "sensitivity": point.sensitivity.estimate,
                "sensitivity_ci": list(point.sensitivity.ci),
                "specificity": point.specificity.estimate,
                "specificity_ci": list(point.specificity.ci),
            }
        )
    calibration, curves = _calibration(cases, seed)
    conf_cols = list(metadata_columns) if metadata_columns is not None else list(subgroups)
    missing = [c for c in conf_cols if c not in cases.attributes]
    if missing:
        raise StatisticsInputError(
            f"confounder column(s) {missing} are not among the case columns {list(cases.attributes)}"
        )
    called = s >= threshold_value
    fn_path, fp_path = out_dir / "false-negatives.csv", out_dir / "false-positives.csv"
    report: dict[str, Any] = {
        "title": "Local validation report" + (f": {context.model_name}" if context.model_name else ""),
        "generated_at": (now or utcnow()).isoformat(timespec="seconds"),
        "synthetic": context.synthetic,
        "context": {k: val for k, val in dataclasses.asdict(context).items() if k != "limitations"},
        "trial": evaluation.trial.as_dict() if evaluation and evaluation.trial else None,
        "case_flow": cases.flow.as_dict(),
        "validation": result,
        "bootstrap_auc_ci": list(boot.ci),
        "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
        "alternative_thresholds": alternatives,
        "calibration": calibration,
        "confounders": _confounders(cases, conf_cols, seed),
        "false_negatives": _write_uid_csv(fn_path, cases, (y == 1) & ~called),
        "false_positives": _write_uid_csv(fp_path, cases, (y == 0) & called),
        "explanation_check": (
            dataclasses.asdict(explanations(threshold_value, _true_positive_uids(cases, threshold_value)))
            if explanations is not None
            else None
        ),
        "criteria": evaluation.verdict.as_dict() if evaluation else None,
        "flags": list(evaluation.flags) if evaluation else [],
        "burden": (
            deployment_plan(
                result["prevalence"], result["sensitivity"], result["specificity"], context.volume_per_day
            )
            if context.volume_per_day
            else None
        ),
        "software": _software(),
    }
    report["limitations"] = _limitations(report, context)
    report = json_ready(report)
    figures: dict[str, Figure] = {"roc": roc_figure(roc_curve(y, s), result, boot.ci, context.synthetic)}
    if curves:
        figures["calibration"] = calibration_figure(curves, context.synthetic)
    forest = forest_figure(result, context.synthetic)
    if forest is not None:
        figures["forest"] = forest
    images = {name: figure_png_base64(f) for name, f in figures.items()}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        r=report, images=images, synthetic_notice=SYNTHETIC_NOTICE, not_a_device=NOT_A_DEVICE
    )
    html_path, pdf_path, json_path = (
        out_dir / "validation-report.html",
        out_dir / "validation-report.pdf",
        out_dir / "validation.json",
    )
    html_path.write_text(html, encoding="utf-8")
    try:
        _write_pdf(pdf_path, report, figures.values())
    finally:
        close_figures(figures.values())
    json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return ReportFiles(html_path, pdf_path, json_path, fn_path, fp_path, report)


def build_report_from_records(
    records: Iterable[CaseRecord], columns: Sequence[str], out_dir: Path, **kwargs: Any
) -> ReportFiles:
    """:func:`build_report` from plain records (e.g. predictions joined with the final reads from the DB)."""
    return build_report(CaseSet.from_records(records, columns, source="records"), out_dir, **kwargs)
