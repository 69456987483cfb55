"""``radgate monitor run|report``, ``radgate alerts list|ack|resolve``: thin calls into radgate.monitoring."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from
from radgate.config import Settings
from radgate.db import Database, database_for
from radgate.errors import RadgateError

monitor_app = typer.Typer(
    help="Monitoring: periods against the baseline, drift, alerts.", no_args_is_help=True
)
alerts_app = typer.Typer(help="Monitoring alerts: list, acknowledge, resolve.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
NoteOpt = Annotated[str, typer.Option("--note", help="What was checked or done (required).")]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who acts (default: the login name). Directors only, once auth lands."),
]


@contextmanager
def _database(data_dir: Path | None, config: Path | None) -> Iterator[tuple[Database, Settings]]:
    settings = settings_from(data_dir, config)
    db = database_for(settings)
    try:
        yield db, settings
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    finally:
        db.dispose()


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--until {value!r} is not an ISO date; use YYYY-MM-DD, e.g. 2025-09-30", 2) from exc


@monitor_app.command("run")
def monitor_run(
    until: Annotated[
        str | None,
        typer.Option("--until", help="Use data acquired and labels known up to this date (YYYY-MM-DD)."),
    ] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run every monitoring rule over every deployment; open alerts; send webhooks."""
    from radgate.monitoring.service import run_monitoring

    day = _date(until)
    with _database(data_dir, config) as (db, settings):
        run = run_monitoring(db, settings, until=day)
    if as_json:
        payload = {
            "until": run.summary.until,
            "predictions": run.summary.predictions,
            "seconds": round(run.seconds, 3),
            "opened": [a.as_dict() for a in run.opened],
            "updated": [a.as_dict() for a in run.updated],
            "deployments": [
                {
                    "deployment": d.deployment,
                    "site": d.site,
                    "model": d.model,
                    "baseline": d.baseline,
                    "periods": [
                        {
                            "period": m.period,
                            "n": m.n,
                            "n_labelled": m.n_labelled,
                            "auc": m.auc,
                            "auc_ci": m.auc_ci,
                            "sensitivity": m.sensitivity,
                            "specificity": m.specificity,
                            "ppv": m.ppv,
                            "flag_rate": m.flag_rate,
                            "fp_per_tp": m.fp_per_tp,
                            "cbpe_auc": m.cbpe_auc,
                        }
                        for m in d.periods
                    ],
                }
                for d in run.summary.deployments
            ],
        }
        console.print_json(json.dumps(payload))
        return
    for d in run.summary.deployments:
        table = Table(title=f"{d.deployment} at {d.site} — baseline: {d.baseline['description']}")
        for col in ("period", "cases", "labelled", "AUC (95% CI)", "sens", "spec", "flag rate", "CBPE AUC"):
            table.add_column(col)
        for m in d.periods:
            table.add_row(
                m.period,
                str(m.n),
                str(m.n_labelled),
                "—"
                if m.auc is None or m.auc_ci is None
                else f"{m.auc:.3f} ({m.auc_ci[0]:.3f}–{m.auc_ci[1]:.3f})",
                "—" if m.sensitivity is None else f"{m.sensitivity:.1%}",
                "—" if m.specificity is None else f"{m.specificity:.1%}",
                "—" if m.flag_rate is None else f"{m.flag_rate:.1%}",
                "—" if m.cbpe_auc is None else f"{m.cbpe_auc:.3f}",
            )
        console.print(table)
    console.print(
        f"{run.summary.predictions} predictions up to {run.summary.until}: {len(run.opened)} alert(s) "
        "opened, "
        f"{len(run.updated)} updated ({run.seconds:.1f} s). Synthetic demo model: not for clinical use."
        if run.summary.synthetic
        else f"{run.summary.predictions} predictions up to {run.summary.until}: {len(run.opened)} alert(s) "
        f"opened, {len(run.updated)} updated ({run.seconds:.1f} s)."
    )
    for a in run.opened:
        console.print(
            f"[red]alert {a.id}[/red] "
            + escape(f"{a.rule} {a.deployment} [{a.scope}] {a.period}: {a.summary}")
        )


@monitor_app.command("report")
def monitor_report(
    period: Annotated[
        str, typer.Option("--period", help="The period to report, e.g. 2025-09 (or 2025-W05, 2025-Q3).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for monitoring-report.html, .pdf and monitoring.json.")
    ],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write one period's monitoring report (HTML + PDF with plots)."""
    from radgate.monitoring.report import build_monitoring_report

    with _database(data_dir, config) as (db, settings):
        report = build_monitoring_report(db, settings.monitoring, period, out)
    console.print(
        f"Wrote {report.html} and {report.pdf} ({report.deployments} deployment(s), period {report.period})."
    )


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option("--status", help="open, acknowledged or resolved.")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List alerts (oldest first)."""
    from radgate.monitoring.alerts import AlertStatus, list_alerts

    try:
        wanted = None if status is None else AlertStatus(status)
    except ValueError as exc:
        raise fail(f"--status {status!r} is not one of open, acknowledged, resolved", 2) from exc
    with _database(data_dir, config) as (db, _):
        alerts = list_alerts(db, wanted)
    if as_json:
        console.print_json(json.dumps({"alerts": [a.as_dict() for a in alerts]}))
        return
    table = Table(title="Monitoring alerts")
    for col in ("id", "rule", "deployment", "scope", "period", "opened_at", "status", "summary"):
        table.add_column(col)
    for a in alerts:
        table.add_row(
            str(a.id),
            a.rule,
            a.deployment,
            escape(a.scope),
            a.period,
            a.opened_at.isoformat(timespec="minutes"),
            a.status.value,
            escape(a.summary),
        )
    console.print(table)


def _actor(by: str | None) -> str:
    return (by or getpass.getuser() or "unknown")[:64]


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `radgate alerts list`).")],
    note: NoteOpt,
    by: ByOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Acknowledge an open alert with a note."""
    from radgate.monitoring.alerts import acknowledge

    with _database(data_dir, config) as (db, settings):
        alert = acknowledge(db, alert_id, note, _actor(by), settings.monitoring)
    console.print(f"alert {alert.id} acknowledged by {alert.acknowledged_by}")


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `radgate alerts list`).")],
    note: NoteOpt,
    by: ByOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Resolve an alert with a note (a later firing opens a new one)."""
    from radgate.monitoring.alerts import resolve

    with _database(data_dir, config) as (db, settings):
        alert = resolve(db, alert_id, note, _actor(by), settings.monitoring)
    console.print(f"alert {alert.id} resolved by {alert.resolved_by}")
