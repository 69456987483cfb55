"""What the ``/monitoring`` page shows, assembled once (the route only renders it).

The page draws the summary the last monitoring run stored (``monitoring_runs``); before any run it analyses
on the fly without writing anything. Figures are inline SVG made on the server, so the page needs nothing
from the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from radgate.config import MonitoringSettings
from radgate.db import Database
from radgate.monitoring.alerts import Alert, AlertStatus, latest_summary_json, list_alerts
from radgate.monitoring.plots import deployment_figures, figure_svg
from radgate.monitoring.report import metric_rows
from radgate.monitoring.service import DeploymentSummary, MonitoringSummary, analyse

__all__ = ["DashboardView", "DeploymentPanel", "dashboard_view"]


@dataclass
class DeploymentPanel:
    deployment: str
    site: str
    model: str
    baseline: dict[str, Any]
    latest_period: str | None
    rows: list[tuple[str, str, str]]
    svgs: dict[str, str]
    drifted: list[dict[str, Any]]
    alerts: list[Alert]


@dataclass
class DashboardView:
    generated_at: str
    until: str
    from_stored_run: bool
    synthetic: bool
    rules: list[dict[str, Any]]
    panels: list[DeploymentPanel] = field(default_factory=list)
    open_alerts: int = 0


def _panel(dep: DeploymentSummary, synthetic: bool, alerts: list[Alert]) -> DeploymentPanel:
    figures = deployment_figures(dep, synthetic)
    latest = dep.periods[-1] if dep.periods else None
    return DeploymentPanel(
        deployment=dep.deployment,
        site=dep.site,
        model=dep.model,
        baseline=dep.baseline,
        latest_period=latest.period if latest else None,
        rows=metric_rows(latest, dep.baseline_metrics),
        svgs={name: figure_svg(fig) for name, fig in figures.items()},
        drifted=[d for d in dep.drift if d["drifted"]],
        alerts=[a for a in alerts if a.deployment == dep.deployment],
    )


def dashboard_view(db: Database, settings: MonitoringSettings) -> DashboardView:
    stored = latest_summary_json(db)
    summary = MonitoringSummary.from_json(stored) if stored else analyse(db, settings)
    alerts = [a for a in list_alerts(db) if a.status is not AlertStatus.RESOLVED]
    view = DashboardView(
        summary.generated_at,
        summary.until,
        stored is not None,
        summary.synthetic,
        summary.rules,
        open_alerts=len(alerts),
    )
    view.panels = [_panel(dep, summary.synthetic, alerts) for dep in summary.deployments]
    return view
