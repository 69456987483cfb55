"""``radgate monitor report --period 2025-09 --out DIR``: one period's monitoring report, HTML and PDF.

As the go-live report does (:mod:`radgate.validation.report`): a self-contained HTML page with the figures
embedded as base64 PNG, a PDF with text pages then the vector figures (matplotlib ``PdfPages``), and the
numbers behind both as JSON. Sections per deployment: the baseline and where it came from, the period
against the baseline (AUC with DeLong CI, sensitivity/specificity/PPV with Wilson CIs, flag rate, false
positives per true positive, CBPE), breakdowns by scanner and subgroup, the rules that fired, the alerts
open in the period, and the trend figures.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

import radgate
from radgate.config import MonitoringSettings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.monitoring.alerts import list_alerts
from radgate.monitoring.metrics import GroupMetrics
from radgate.monitoring.periods import PeriodUnit, parse_period
from radgate.monitoring.plots import deployment_figures, figure_png_base64
from radgate.monitoring.service import DeploymentSummary, _plain, analyse
from radgate.validation.report_pdf import write_text_pdf

__all__ = ["MonitoringReport", "build_monitoring_report", "metric_rows"]

NOTICE = "radgate is infrastructure, not a medical device."
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA AND DEMO MODEL: not for clinical use; the figures say nothing about patients."
)


@dataclass(frozen=True)
class MonitoringReport:
    html: Path
    pdf: Path
    json: Path
    period: str
    deployments: int


def _fmt(value: float | None, ci: tuple[float, float] | None = None, pct: bool = False) -> str:
    if value is None:
        return "—"
    f = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.3f}")
    return f(value) + (f" ({f(ci[0])}–{f(ci[1])})" if ci else "")


def metric_rows(m: GroupMetrics | None, base: GroupMetrics) -> list[tuple[str, str, str]]:
    """(measure, this period, baseline) rows as the report and the dashboard show them."""

    def cells(x: GroupMetrics | None) -> list[str]:
        if x is None:
            return ["—"] * 10
        return [
            f"{x.n} ({x.n_labelled} labelled: {x.n_positive} positive, {x.n_negative} negative)",
            _fmt(x.auc, x.auc_ci),
            _fmt(x.sensitivity, x.sensitivity_ci, True),
            _fmt(x.specificity, x.specificity_ci, True),
            _fmt(x.ppv, x.ppv_ci, True),
            _fmt(x.flag_rate, pct=True),
            "—" if x.fp_per_tp is None else f"{x.fp_per_tp:.2f}",
            _fmt(x.cbpe_auc),
            _fmt(x.cbpe_sensitivity, pct=True),
            _fmt(x.cbpe_specificity, pct=True),
        ]

    names = [
        "cases",
        "AUC (95% DeLong CI)",
        "sensitivity (95% Wilson CI)",
        "specificity (95% Wilson CI)",
        "PPV (95% Wilson CI)",
        "flag rate (all scored cases)",
        "false positives per true positive",
        "CBPE AUC estimate (no labels)",
        "CBPE sensitivity estimate",
        "CBPE specificity estimate",
    ]
    return list(zip(names, cells(m), cells(base), strict=True))


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("radgate.monitoring", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )


def _section(dep: DeploymentSummary, period: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    current = next((m for m in dep.periods if m.period == period), None)
    return {
        "deployment": dep.deployment,
        "site": dep.site,
        "model": dep.model,
        "baseline": dep.baseline,
        "rows": metric_rows(current, dep.baseline_metrics),
        "breakdown": [g for g in dep.breakdown if g.period == period],
        "findings": [f for f in dep.findings if f.period == period],
        "alerts": alerts,
        "drifted": [d for d in dep.drift if d["period"] == period and d["drifted"]],
    }


def build_monitoring_report(
    db: Database, settings: MonitoringSettings, period: str, out_dir: Path
) -> MonitoringReport:
    """Analyse up to the end of ``period`` and write the report into ``out_dir``."""
    unit = PeriodUnit(settings.period)
    target = parse_period(period, unit)
    summary = analyse(db, settings, target.end)
    if not summary.deployments:
        raise Invalid(
            f"no predictions acquired up to {target.end.isoformat()}; nothing to report for {period}"
        )
    if not any(any(m.period == target.key for m in d.periods) for d in summary.deployments):
        raise Invalid(
            f"no predictions acquired in {target.key}; periods with data: "
            + ", ".join(sorted({m.period for d in summary.deployments for m in d.periods}))
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = [a.as_dict() for a in list_alerts(db)]
    sections: list[dict[str, Any]] = []
    figures: list[Figure] = []
    for dep in summary.deployments:
        alerts = [
            a
            for a in stored
            if a["deployment"] == dep.deployment and a["period"] <= target.key <= a["last_period"]
        ]
        section = _section(dep, target.key, alerts)
        figs = deployment_figures(dep, summary.synthetic)
        section["images"] = {name: figure_png_base64(fig) for name, fig in figs.items()}
        sections.append(section)
        figures.extend(figs.values())
    context = {
        "title": f"Monitoring report {target.key}",
        "period": target,
        "generated": summary.generated_at,
        "synthetic": summary.synthetic,
        "notice": NOTICE,
        "synthetic_notice": SYNTHETIC_NOTICE,
        "rules": summary.rules,
        "sections": sections,
        "version": radgate.__version__,
    }
    html = out_dir / "monitoring-report.html"
    html.write_text(_env().get_template("report.html").render(**context), encoding="utf-8")
    pdf = out_dir / "monitoring-report.pdf"
    _write_pdf(pdf, context, figures)
    data = out_dir / "monitoring.json"
    data.write_text(
        json.dumps({"period": target.as_dict(), "summary": _plain(summary)}, indent=1, default=str),
        encoding="utf-8",
    )
    for fig in figures:
        fig.clear()
    return MonitoringReport(html, pdf, data, target.key, len(sections))


def _pdf_lines(context: dict[str, Any]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = [("h1", context["title"])]
    p = context["period"]
    lines.append(
        ("text", f"Period {p.key}: {p.start.isoformat()} to {p.end.isoformat()} (acquisition date).")
    )
    lines.append(
        ("text", f"Generated {context['generated']} by radgate {context['version']}. {context['notice']}")
    )
    if context["synthetic"]:
        lines.append(("warn", context["synthetic_notice"]))
    for s in context["sections"]:
        lines.append(("h2", f"{s['deployment']} at {s['site']} ({s['model']})"))
        lines.append(("text", f"Baseline: {s['baseline']['description']}."))
        for name, now, base in s["rows"]:
            lines.append(("text", f"{name:36s} {now:44s} baseline {base}"))
        lines.append(("h2", "Rules that fired in this period"))
        for f in s["findings"] or []:
            lines.append(("text", f"{f.rule} [{f.scope}] {f.summary}"))
        if not s["findings"]:
            lines.append(("text", "none"))
        lines.append(("h2", "Alerts covering this period"))
        for a in s["alerts"] or []:
            lines.append(
                ("text", f"#{a['id']} {a['rule']} [{a['scope']}] {a['status']}, opened {a['opened_at']}")
            )
        if not s["alerts"]:
            lines.append(("text", "none"))
        lines.append(("h2", "By scanner and subgroup"))
        for g in s["breakdown"]:
            lines.append(
                (
                    "text",
                    f"{g.group_by}={g.group}: n={g.n}, AUC {_fmt(g.auc)}, "
                    f"sens {_fmt(g.sensitivity, pct=True)}, "
                    f"spec {_fmt(g.specificity, pct=True)}, flag rate {_fmt(g.flag_rate, pct=True)}",
                )
            )
    lines.append(("h2", "Rules"))
    for r in context["rules"]:
        lines.append(("text", f"{r['name']} ({'sound' if r['sound'] else 'heuristic'}): {r['description']}"))
    return lines


def _write_pdf(path: Path, context: dict[str, Any], figures: list[Figure]) -> None:
    write_text_pdf(
        path,
        _pdf_lines(context),
        figures,
        title=context["title"],
        subject=SYNTHETIC_NOTICE if context["synthetic"] else "Monitoring",
        footer="radgate monitoring report",
        banner=SYNTHETIC_NOTICE if context["synthetic"] else None,
        text_size=7.0,
        text_step=0.0145,
        text_width=125,
    )


def period_end(period: str, settings: MonitoringSettings) -> dt.date:
    return parse_period(period, PeriodUnit(settings.period)).end
