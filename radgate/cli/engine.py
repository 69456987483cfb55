"""``radgate deployments ...``, ``radgate predictions ...`` and ``radgate engine run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, err_console, fail, settings_from

if TYPE_CHECKING:
    from radgate.config import Settings
    from radgate.db.engine import Database

deployments_app = typer.Typer(help="Deployments: model version x site x rules x mode.", no_args_is_help=True)
predictions_app = typer.Typer(help="Stored predictions and routing decisions.", no_args_is_help=True)
engine_app = typer.Typer(help="The inference engine.", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")
app.add_typer(predictions_app, name="predictions")
app.add_typer(engine_app, name="engine")


def _open(data_dir: Path | None, config: Path | None) -> tuple[Settings, Database]:
    from radgate.db import database_for
    from radgate.engine.service import prepare
    from radgate.models import RegistryError
    from radgate.routing import DeploymentError

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    try:
        for change in prepare(db, settings, config):
            err_console.print(f"[dim]{change}[/dim]")  # stdout stays clean for --json
    except (DeploymentError, RegistryError) as exc:
        raise fail(str(exc), 2) from exc
    return settings, db


@deployments_app.command("list")
def deployments_list(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List deployments and their modes (after applying the config's [[deployments]])."""
    from rich.table import Table

    from radgate.routing import list_deployments

    _, db = _open(data_dir, config)
    with db.session() as s:
        deployments = list_deployments(s)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": d.name,
                        "model": d.model_name,
                        "version": d.model_version,
                        "site": d.site,
                        "mode": d.mode,
                        "destinations": list(d.destinations),
                        "rules": [r.describe() for r in d.rules],
                    }
                    for d in deployments
                ],
                indent=2,
            )
        )
        return
    table = Table(title="Deployments")
    for column in ("Name", "Model", "Site", "Mode", "Rules", "Destinations", "Updated"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.name,
            f"{d.model_name} {d.model_version}",
            d.site,
            d.mode,
            "; ".join(r.describe() for r in d.rules),
            ", ".join(d.destinations) or "—",
            f"{d.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@deployments_app.command("show")
def deployments_show(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show a deployment: its model, rules in force, destinations and the history of changes."""
    from rich.table import Table

    from radgate.routing import DeploymentError, deployment_history, get_deployment

    _, db = _open(data_dir, config)
    try:
        with db.session() as s:
            d = get_deployment(s, name)
            history = deployment_history(s, name)
    except DeploymentError as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"[bold]{d.name}[/bold]: {d.model_name} {d.model_version} at site {d.site}, "
        f"mode [bold]{d.mode}[/bold]"
    )
    console.print(f"Destinations: {', '.join(d.destinations) or 'none'}")
    console.print("Rules in force (intended use, with this deployment's overrides):")
    for rule in d.rules:
        console.print(f"  - {rule.describe()}")
    if d.drop_rules:
        console.print(f"Intended-use checks dropped here: {', '.join(d.drop_rules)}")
    table = Table(title="Changes")
    for column in ("When (UTC)", "Field", "From", "To", "By", "Note"):
        table.add_column(column)
    for change in history:
        table.add_row(
            f"{change.at:%Y-%m-%d %H:%M:%S}",
            change.field,
            change.old_value or "—",
            change.new_value or "—",
            change.changed_by,
            change.note or "",
        )
    console.print(table)


@deployments_app.command("set-mode")
def deployments_set_mode(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    mode: Annotated[str, typer.Argument(help="off | silent | live")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who makes the change (default: the OS user).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the audit).")] = None,
) -> None:
    """Change a deployment's mode now, without a restart; the change is recorded with who and when."""
    from radgate.models.registry import whoami
    from radgate.routing import DeploymentError, set_mode

    _, db = _open(data_dir, config)
    try:
        with db.session() as s:
            d = set_mode(s, name, mode, changed_by=by or whoami(), note=note)
    except DeploymentError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Deployment {d.name} is now [bold]{d.mode}[/bold].")


@predictions_app.command("export")
def predictions_export(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    format_: Annotated[str, typer.Option("--format", help="Output format: csv.")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: standard output).")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Only silent or live results.")] = None,
) -> None:
    """Export one row per series x model: UIDs, model, mode, score, flag, decision, reason, latencies."""
    from radgate.db import database_for
    from radgate.engine import export_csv

    if format_ != "csv":
        raise fail(f"--format {format_!r} is not supported; expected csv.", 2)
    if mode not in (None, "off", "silent", "live"):
        raise fail(f"--mode {mode!r}; expected off, silent or live.", 2)
    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with db.session() as s:
        if out is None:
            export_csv(s, sys.stdout, mode)
            return
        with out.open("w", encoding="utf-8", newline="") as fh:
            count = export_csv(s, fh, mode)
    console.print(f"Wrote {count} rows to {out}.")


@predictions_app.command("summary")
def predictions_summary(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Processed, flagged, not applicable (with reasons), queued and failed counts."""
    from radgate.db import database_for
    from radgate.engine import summarise

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with db.session() as s:
        summary = summarise(s)
    for line in summary.lines():
        console.print(line, markup=False)


@engine_app.command("run")
def engine_run(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Stop after this many seconds at most.")
    ] = 600.0,
) -> None:
    """Run queued jobs in the foreground until none is left (the server runs the same engine in threads)."""
    from radgate.engine import Engine, summarise

    settings, db = _open(data_dir, config)
    engine = Engine(settings, db)
    handled = engine.run_until_idle(timeout_s)
    console.print(f"Handled {handled} job(s).")
    with db.session() as s:
        for line in summarise(s).lines():
            console.print(line, markup=False)
