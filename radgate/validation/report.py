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
from radgate.validation.metrics import ValidationSummary, validation_summary_cases
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
from radgate.validation.sections import (
    AlternativeThreshold,
    CalibrationRow,
    CalibrationSection,
    ConfounderSection,
    ConfounderStratum,
    PlattModel,
    ReportSections,
    pdf_lines,
)
from radgate.validation.trial import TrialEvaluation

__all__ = [
    "SYNTHETIC_NOTICE",
    "ReportContext",
    "ReportFiles",
    "ReportSections",
    "build_report",
    "build_report_from_records",
]

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
    report: dict[str, Any] = field(repr=False)  # validation.json
    sections: ReportSections | None = field(default=None, repr=False)  # what both renderers read


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


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else float(x)


def _pair(ci: Any) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = _num(ci[0]), _num(ci[1])
    return None if lo is None or hi is None else (lo, hi)


def _calibration(cases: CaseSet, seed: int) -> tuple[CalibrationSection, dict[str, ReliabilityCurve]]:
    y, s = cases.labels, cases.scores
    probabilities = bool(s.min() >= 0.0 and s.max() <= 1.0)
    rows: list[CalibrationRow] = []
    curves: dict[str, ReliabilityCurve] = {}

    def measure(name: str, p: np.ndarray) -> None:
        brier, ece = _num(brier_score(y, p)), _num(expected_calibration_error(y, p))
        try:
            fit = calibration_intercept_slope(y, p)
            rows.append(
                CalibrationRow(
                    name,
                    brier,
                    ece,
                    intercept=_num(fit.intercept),
                    intercept_ci=_pair(fit.intercept_ci),
                    slope=_num(fit.slope),
                    slope_ci=_pair(fit.slope_ci),
                )
            )
        except StatisticsInputError as exc:
            rows.append(CalibrationRow(name, brier, ece, note=str(exc)))
        curves[name] = reliability_curve(y, p)

    notes = []
    if probabilities:
        measure("before", s)
    else:
        notes.append(
            "the scores are not probabilities (outside [0, 1]): only recalibrated values are assessed"
        )
    platt_model: PlattModel | None = None
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
            platt_model = PlattModel(float(rec.model.slope), float(rec.model.intercept), probabilities)
    section = CalibrationSection(
        scores_are_probabilities=probabilities,
        binning=ECE_BINNING,
        folds=5,
        rows=tuple(rows),
        platt_model=platt_model,
        notes=tuple(notes),
    )
    return section, curves


def _confounders(cases: CaseSet, columns: Sequence[str], seed: int) -> tuple[ConfounderSection, ...]:
    out = []
    y, s = cases.labels, cases.scores
    for column in columns:
        values = list(cases.attributes[column])
        meta = metadata_predicts_label(y, {column: values}, seed=seed)
        within = auc_within_strata(y, s, values, column)
        out.append(
            ConfounderSection(
                column=column,
                levels=len(meta.levels),
                metadata_auc=_num(meta.auc.auc) if meta.auc else None,
                metadata_auc_ci=_pair(meta.auc.ci) if meta.auc else None,
                chi2=_num(meta.chi2),
                dof=int(meta.dof),
                p=_num(meta.p),
                cramers_v=_num(meta.cramers_v),
                note=meta.note,
                overall_auc=_num(within.overall.auc),
                pooled_within_auc=_num(within.pooled_auc),
                pooled_within_ci=_pair(within.pooled_ci) if within.pooled_ci else None,
                pairs_within_fraction=_num(within.pairs_within_fraction),
                strata=tuple(
                    ConfounderStratum(
                        level=st.level,
                        n_positive=int(st.n_positive),
                        n_negative=int(st.n_negative),
                        prevalence=_num(
                            next(lv.prevalence.estimate for lv in meta.levels if lv.level == st.level)
                        ),
                        auc=_num(st.auc.auc) if st.auc else None,
                        auc_ci=_pair(st.auc.ci) if st.auc else None,
                        note=st.note,
                    )
                    for st in within.strata
                ),
            )
        )
    return tuple(out)


def _limitations(
    v: ValidationSummary, confounders: Sequence[ConfounderSection], context: ReportContext
) -> tuple[str, ...]:
    items = []
    if context.synthetic:
        items.append(
            "The cases and the model are synthetic (demo data): these figures say nothing about clinical "
            "performance."
        )
    if v.n_positive < 100 or v.n_negative < 100:
        items.append(
            f"Only {v.n_positive} positive and {v.n_negative} negative cases: fewer than the 100 "
            "of each a local validation should have; intervals are wide."
        )
    if v.threshold_source == "default":
        items.append(
            f"The operating threshold is the default {v.threshold:g}, not a pre-specified operating "
            "point from the model's manifest."
        )
    if v.prevalence_source == "sample":
        items.append(
            "PPV and NPV use the sample prevalence; they transfer to the site only if the cases are a "
            "consecutive sample of its population."
        )
    insufficient = [
        f"{c} = {lv}" for c, levels in v.subgroups.items() for lv, sub in levels.items() if sub.insufficient
    ]
    if insufficient:
        items.append("Subgroups with insufficient data (not validated): " + ", ".join(insufficient) + ".")
    for conf in confounders:
        if conf.note.startswith("metadata alone predicts"):
            items.append(
                f"{conf.column} alone predicts the label: part of the AUC may reflect the acquisition "
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
    return tuple(items)


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


def _write_pdf(path: Path, sections: ReportSections, figures: Iterable[Figure]) -> None:
    write_text_pdf(
        path,
        pdf_lines(sections, SYNTHETIC_NOTICE, NOT_A_DEVICE),
        figures,
        title=sections.title,
        subject=SYNTHETIC_NOTICE if sections.synthetic else "Local validation",
        footer="radgate validation report",
        banner=SYNTHETIC_NOTICE if sections.synthetic else None,
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
        result = evaluation.summary
        subgroups = tuple(evaluation.criteria.analysis.subgroups)
        if context.intended_use is None and evaluation.criteria.intended_use:
            context = dataclasses.replace(context, intended_use=evaluation.criteria.intended_use)
    else:
        result = validation_summary_cases(
            cases, threshold, prevalence, subgroups, threshold_source=threshold_source
        )
    threshold_value = float(result.threshold)
    y, s = cases.labels, cases.scores
    boot = bootstrap_auc(y, s, BOOTSTRAP_RESAMPLES, seed=seed)
    alternatives = tuple(
        AlternativeThreshold(
            criterion=point.criterion,
            threshold=float(point.threshold),
            sensitivity=float(point.sensitivity.estimate),
            sensitivity_ci=(float(point.sensitivity.ci[0]), float(point.sensitivity.ci[1])),
            specificity=float(point.specificity.estimate),
            specificity_ci=(float(point.specificity.ci[0]), float(point.specificity.ci[1])),
        )
        for point in (youden_threshold(y, s), threshold_for_sensitivity(y, s, 0.9))
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
    confounders = _confounders(cases, conf_cols, seed)
    sections = ReportSections(
        title="Local validation report" + (f": {context.model_name}" if context.model_name else ""),
        generated_at=(now or utcnow()).isoformat(timespec="seconds"),
        synthetic=context.synthetic,
        context=context,
        trial=evaluation.trial.as_dict() if evaluation and evaluation.trial else None,
        case_flow=cases.flow,
        validation=result,
        bootstrap_auc_ci=(float(boot.ci[0]), float(boot.ci[1])),
        bootstrap_resamples=BOOTSTRAP_RESAMPLES,
        alternative_thresholds=alternatives,
        calibration=calibration,
        confounders=confounders,
        false_negatives=tuple(_write_uid_csv(fn_path, cases, (y == 1) & ~called)),
        false_positives=tuple(_write_uid_csv(fp_path, cases, (y == 0) & called)),
        explanation_check=(
            explanations(threshold_value, _true_positive_uids(cases, threshold_value))
            if explanations is not None
            else None
        ),
        criteria=evaluation.verdict.as_dict() if evaluation else None,
        flags=tuple(evaluation.flags) if evaluation else (),
        burden=(
            deployment_plan(result.prevalence, result.sensitivity, result.specificity, context.volume_per_day)
            if context.volume_per_day
            else None
        ),
        software=_software(),
        limitations=_limitations(result, confounders, context),
    )
    figures: dict[str, Figure] = {"roc": roc_figure(roc_curve(y, s), result, boot.ci, context.synthetic)}
    if curves:
        figures["calibration"] = calibration_figure(curves, context.synthetic)
    forest = forest_figure(result, context.synthetic)
    if forest is not None:
        figures["forest"] = forest
    images = {name: figure_png_base64(f) for name, f in figures.items()}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        r=sections, images=images, synthetic_notice=SYNTHETIC_NOTICE, not_a_device=NOT_A_DEVICE
    )
    html_path, pdf_path, json_path = (
        out_dir / "validation-report.html",
        out_dir / "validation-report.pdf",
        out_dir / "validation.json",
    )
    html_path.write_text(html, encoding="utf-8")
    try:
        _write_pdf(pdf_path, sections, figures.values())
    finally:
        close_figures(figures.values())
    report = sections.to_json()
    json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return ReportFiles(html_path, pdf_path, json_path, fn_path, fp_path, report, sections)


def build_report_from_records(
    records: Iterable[CaseRecord], columns: Sequence[str], out_dir: Path, **kwargs: Any
) -> ReportFiles:
    """:func:`build_report` from plain records (e.g. predictions joined with the final reads from the DB)."""
    return build_report(CaseSet.from_records(records, columns, source="records"), out_dir, **kwargs)
