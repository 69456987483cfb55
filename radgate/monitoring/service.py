"""Monitoring runs: periods per deployment x site against the baseline, the rules, and the alerts they raise.

:func:`analyse` reads (never writes) and returns a :class:`MonitoringSummary`; :func:`run_monitoring`
analyses, reconciles the findings with the ``alerts`` table (one open alert per rule x deployment x
scope), records the run's summary, and after the commit delivers webhook messages. :class:`MonitoringService`
runs it periodically under ``radgate serve``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radgate.background import PeriodicService
from radgate.clock import utcnow
from radgate.config import MonitoringSettings, Settings
from radgate.db import Database
from radgate.monitoring import alerts as alert_store
from radgate.monitoring.alerts import Alert
from radgate.monitoring.data import CaseTable, DeploymentInfo, read_cases, read_deployments, synthetic_models
from radgate.monitoring.metrics import GroupMetrics, fit_calibration, group_metrics
from radgate.monitoring.periods import (
    PeriodUnit,
    parse_period,
    period_index,
    period_of_index,
    periods_between,
)
from radgate.monitoring.rules import Baseline, BaselineSource, Finding, RuleContext, feature_drift, load_rules
from radgate.monitoring.webhook import deliver_pending

__all__ = [
    "DeploymentSummary",
    "MonitoringRun",
    "MonitoringService",
    "MonitoringSummary",
    "analyse",
    "run_monitoring",
]

log = logging.getLogger(__name__)


@dataclass
class DeploymentSummary:
    deployment: str
    site: str
    model: str
    baseline: dict[str, Any]
    baseline_metrics: GroupMetrics
    periods: list[GroupMetrics]
    breakdown: list[GroupMetrics]  # by scanner and by each subgroup column
    drift: list[dict[str, Any]]
    scanner_mix: list[dict[str, Any]]
    findings: list[Finding]


@dataclass
class MonitoringSummary:
    generated_at: str
    until: str
    period_unit: str
    synthetic: bool
    rules: list[dict[str, Any]]
    predictions: int
    deployments: list[DeploymentSummary] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(_plain(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MonitoringSummary:
        raw = json.loads(text)
        deployments = []
        for d in raw.pop("deployments"):
            d["baseline_metrics"] = _metrics(d["baseline_metrics"])
            d["periods"] = [_metrics(m) for m in d["periods"]]
            d["breakdown"] = [_metrics(m) for m in d["breakdown"]]
            d["findings"] = [
                Finding(
                    **{
                        **f,
                        "detected_on": dt.date.fromisoformat(f["detected_on"]),
                        "change_point": dt.date.fromisoformat(f["change_point"])
                        if f["change_point"]
                        else None,
                    }
                )
                for f in d["findings"]
            ]
            deployments.append(DeploymentSummary(**d))
        return cls(**raw, deployments=deployments)


def _metrics(raw: dict[str, Any]) -> GroupMetrics:
    for key in ("auc_ci", "sensitivity_ci", "specificity_ci", "ppv_ci"):
        if raw.get(key) is not None:
            raw[key] = tuple(raw[key])
    return GroupMetrics(**raw)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


@dataclass
class MonitoringRun:
    """What one run found and changed."""

    summary: MonitoringSummary
    findings: list[Finding]
    opened: list[Alert]
    updated: list[Alert]
    seconds: float

    @property
    def alerts(self) -> list[Alert]:
        return self.opened + self.updated


def _baseline(
    cases: CaseTable,
    info: DeploymentInfo | None,
    settings: MonitoringSettings,
    unit: PeriodUnit,
    period_of_row: np.ndarray,
    metrics_for: Any,
) -> Baseline:
    dates = cases.study_date
    if settings.reference_period:
        first_text, sep, last_text = settings.reference_period.partition("..")
        first = parse_period(first_text, unit)
        last = parse_period(last_text if sep else first_text, unit)
        start = dt.date.fromisoformat(first_text) if len(first_text.strip()) == 10 else first.start
        end = dt.date.fromisoformat(last_text.strip()) if sep and len(last_text.strip()) == 10 else last.end
        mask = (dates >= np.datetime64(start, "D")) & (dates <= np.datetime64(end, "D"))
        source, text = BaselineSource.CONFIGURED, f"configured reference period {settings.reference_period}"
    else:
        silent = np.asarray(cases.mode.values() == "silent") if len(cases) else np.zeros(0, bool)
        if info is not None and info.went_live is not None and (silent & (cases.label >= 0)).any():
            mask = silent
            start, end = dates[mask].min().astype(dt.date), dates[mask].max().astype(dt.date)
            source = BaselineSource.GO_LIVE
            text = (
                f"go-live validation: the {int(mask.sum())} silent-mode predictions before the deployment "
                f"went live on {info.went_live:%Y-%m-%d}"
            )
        else:
            first_index = int(period_of_row.min())
            last_index = first_index + settings.reference_periods - 1
            mask = period_of_row <= last_index
            start, end = period_of_index(first_index, unit).start, period_of_index(last_index, unit).end
            source = BaselineSource.FIRST_PERIODS
            text = (
                f"first {settings.reference_periods} {unit.value}s "
                f"({start.isoformat()} to {end.isoformat()}): "
                "no go-live validation is recorded for this deployment"
            )
    return Baseline(source, text, start, end, mask, metrics_for(mask))


def _context(
    name: str,
    site: str,
    cases: CaseTable,
    info: DeploymentInfo | None,
    settings: MonitoringSettings,
    until: dt.date,
) -> RuleContext:
    unit = PeriodUnit(settings.period)
    idx = period_index(cases.study_date, unit)
    last = int(period_index(np.array([until], dtype="datetime64[D]"), unit)[0])
    periods = periods_between(int(idx.min()), max(last, int(idx.max())), unit)

    def reference_metrics(mask: np.ndarray) -> GroupMetrics:
        return group_metrics("baseline", cases.score[mask], cases.flag[mask], cases.label[mask])

    baseline = _baseline(cases, info, settings, unit, idx, reference_metrics)
    calibration = fit_calibration(cases.label[baseline.mask], cases.score[baseline.mask])
    ref = baseline.mask
    baseline_metrics = group_metrics(
        "baseline", cases.score[ref], cases.flag[ref], cases.label[ref], calibration
    )
    baseline = dataclasses.replace(baseline, metrics=baseline_metrics)
    metrics = {}
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], [p.index for p in periods] + [periods[-1].index + 1])
    for i, p in enumerate(periods):
        rows = order[bounds[i] : bounds[i + 1]]
        if rows.size:
            metrics[p.key] = group_metrics(
                p.key, cases.score[rows], cases.flag[rows], cases.label[rows], calibration
            )
    model = cases.model.levels[int(np.bincount(cases.model.codes).argmax())] if len(cases) else ""
    return RuleContext(
        name, site, model, cases, unit, idx, periods, baseline, metrics, calibration, settings, until
    )


def _breakdown(
    context: RuleContext, settings: MonitoringSettings
) -> tuple[list[GroupMetrics], list[dict[str, Any]]]:
    cases = context.cases
    scanners = np.array(
        [
            f"{a} {b}".strip() or "unknown"
            for a, b in zip(
                cases.categorical["Manufacturer"].values(),
                cases.categorical["ManufacturerModelName"].values(),
                strict=True,
            )
        ]
    )
    columns: dict[str, np.ndarray] = {"scanner": scanners}
    for name in settings.subgroups:
        try:
            columns[name] = np.asarray(cases.feature_values(name)).astype(str)
        except KeyError:
            log.warning("monitoring.subgroups names %r, which is not a header feature; skipped", name)
    out: list[GroupMetrics] = []
    mix: list[dict[str, Any]] = []
    for p in context.periods:
        rows = context.rows(p)
        if rows.size == 0:
            continue
        for by, values in columns.items():
            sub = values[rows]
            for level in np.unique(sub).tolist():
                r = rows[sub == level]
                out.append(
                    group_metrics(
                        p.key,
                        cases.score[r],
                        cases.flag[r],
                        cases.label[r],
                        context.calibration,
                        by,
                        level or "unknown",
                    )
                )
                if by == "scanner":
                    mix.append({"period": p.key, "scanner": level, "n": int(r.size)})
    return out, mix


def analyse(
    db: Database, settings: MonitoringSettings, until: dt.date | None = None, cases: CaseTable | None = None
) -> MonitoringSummary:
    """Every deployment x site's periods, breakdowns, drift and findings, up to ``until`` (default today)."""
    until = until or utcnow().date()
    rules = load_rules(settings)
    table = read_cases(db, until) if cases is None else cases
    deployments = read_deployments(db)
    synthetic = synthetic_models(db)
    summary = MonitoringSummary(
        generated_at=utcnow().isoformat(timespec="seconds"),
        until=until.isoformat(),
        period_unit=settings.period,
        synthetic=False,
        rules=[{"name": r.name, "sound": r.sound, "description": r.description} for r in rules],
        predictions=len(table),
    )
    if len(table) == 0:
        return summary
    pairs = sorted(
        {(d, s) for d, s in zip(table.deployment.codes.tolist(), table.site.codes.tolist(), strict=True)}
    )
    for dep_code, site_code in pairs:
        name, site = table.deployment.levels[dep_code], table.site.levels[site_code]
        sub = table.take(
            np.flatnonzero((table.deployment.codes == dep_code) & (table.site.codes == site_code))
        )
        context = _context(name, site, sub, deployments.get(name), settings, until)
        findings: list[Finding] = []
        for rule in rules:
            try:
                findings.extend(rule.evaluate(context))
            except Exception:  # a plug-in's bug must not stop the other rules
                log.exception(
                    "monitoring rule %s failed for deployment %s; the other rules still ran", rule.name, name
                )
        findings.sort(key=lambda f: (f.detected_on, f.rule, f.scope))
        breakdown, mix = _breakdown(context, settings)
        summary.synthetic = summary.synthetic or context.model in synthetic
        summary.deployments.append(
            DeploymentSummary(
                deployment=name,
                site=site,
                model=context.model,
                baseline=context.baseline.as_dict(),
                baseline_metrics=context.baseline.metrics,
                periods=[context.metrics[p.key] for p in context.periods if p.key in context.metrics],
                breakdown=breakdown,
                drift=[dict(d) for d in feature_drift(context, settings)],
                scanner_mix=mix,
                findings=findings,
            )
        )
    return summary


def run_monitoring(
    db: Database,
    settings: Settings | MonitoringSettings,
    until: dt.date | None = None,
    now: dt.datetime | None = None,
    deliver: bool = True,
) -> MonitoringRun:
    """Analyse, open or update alerts (and queue their webhook messages), store the summary, then deliver.

    This is the function the demo and ``radgate monitor run`` call; it returns typed alerts.
    """
    m = settings.monitoring if isinstance(settings, Settings) else settings
    started = time.perf_counter()
    now = now or utcnow()
    summary = analyse(db, m, until)
    findings = [f for d in summary.deployments for f in d.findings]
    opened, updated = alert_store.reconcile(db, findings, m, summary, now)
    for alert in opened:
        log.warning(
            "monitoring alert %d opened: rule=%s deployment=%s scope=%s period=%s: %s",
            alert.id,
            alert.rule,
            alert.deployment,
            alert.scope,
            alert.period,
            alert.summary,
        )
    if deliver and m.webhook_url:
        deliver_pending(db, m, now=now)
    return MonitoringRun(summary, findings, opened, updated, time.perf_counter() - started)


class MonitoringService(PeriodicService):
    """``radgate serve``: monitoring every ``monitoring.interval_s``; webhook retries in between."""

    thread_name = "radgate-monitoring"

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__()
        self.db = db
        self.settings = settings
        self.interval_s = min(settings.monitoring.interval_s, max(1.0, settings.monitoring.webhook_backoff_s))
        self._next_run = 0.0

    def tick(self) -> None:
        if time.monotonic() >= self._next_run:
            self._next_run = time.monotonic() + self.settings.monitoring.interval_s
            run = run_monitoring(self.db, self.settings, deliver=False)
            log.info(
                "monitoring: %d predictions, %d alerts opened, %d updated in %.1f s",
                run.summary.predictions,
                len(run.opened),
                len(run.updated),
                run.seconds,
            )
        if self.settings.monitoring.webhook_url:
            deliver_pending(self.db, self.settings.monitoring)
