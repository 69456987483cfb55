"""``radgate deployments ...``, ``radgate predictions ...`` and ``radgate engine run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from radgate.cli.app import (
    ConfigOpt,
    DataDirOpt,
    app,
    cli_errors,
    console,
    err_console,
    fail,
    settings_from,
)
from radgate.config import Settings
from radgate.db.engine import Database
from radgate.engine.service import prepare
from radgate.models import RegistryError
from radgate.models.registry import whoami
from radgate.routing import DeploymentError
from radgate.services.deployments import deployment_readiness, list_all, set_deployment_mode, show
from radgate.services.predictions import (
    empty_export_reason,
    export_predictions,
    run_engine,
    summary,
    unfinished_work,
)

deployments_app = typer.Typer(help="Deployments: model version x site x rules x mode.", no_args_is_help=True)
predictions_app = typer.Typer(help="Stored predictions and routing decisions.", no_args_is_help=True)
engine_app = typer.Typer(help="The inference engine.", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")
app.add_typer(predictions_app, name="predictions")
app.add_typer(engine_app, name="engine")


def _open(data_dir: Path | None, config: Path | None) -> tuple[Settings, Database]:
    from radgate.db import database_for

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


    _, db = _open(data_dir, config)
    deployments = list_all(db)
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
                        "operating_point": d.operating_point,
                        "findings": sorted(d.declared_findings),
                        "incidental": d.incidental.value,
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


    _, db = _open(data_dir, config)
    with cli_errors():
        d, history = show(db, name)
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
    mode: Annotated[str, typer.Argument(help="off | silent | shadow | live", metavar="MODE")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who makes the change (default: the OS user).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the audit).")] = None,
    override: Annotated[
        str | None,
        typer.Option(
            "--override",
            metavar="REASON",
            help="Go live although the readiness checks fail; the reason is recorded with who and when.",
        ),
    ] = None,
) -> None:
    """Change a deployment's mode now, without a restart; the change is recorded with who and when.

    Going live runs the go-live checks (`radgate readiness`) first and refuses while any fails, unless
    --override "REASON" is given.
    """
    settings, db = _open(data_dir, config)
    with cli_errors():
        change = set_deployment_mode(
            db, settings, name, mode, by=by or whoami(), note=note, override=override
        )
    if change.override is not None and change.readiness is not None:
        failed = ", ".join(c.name for c in change.readiness.failed)
        err_console.print(f"[yellow]Readiness overridden[/yellow] ({failed}): {change.override}")
    console.print(f"Deployment {change.deployment.name} is now [bold]{change.deployment.mode}[/bold].")


@app.command("readiness")
def readiness_command(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The go-live gate: is this deployment ready to go live at its site? (exit 1 when not)."""
    settings, db = _open(data_dir, config)
    with cli_errors():
        verdict = deployment_readiness(db, settings, name)
    if as_json:
        print(json.dumps(verdict.to_json(), indent=2, default=str))
    else:
        from rich.table import Table

        table = Table(title=f"Readiness of {name}: {'READY' if verdict.ready else 'NOT READY'}")
        for column in ("Check", "Verdict", "Detail"):
            table.add_column(column, overflow="fold")
        for c in verdict.checks:
            table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]fails[/red]", c.detail)
        console.print(table)
    if not verdict.ready:
        raise typer.Exit(1)


@predictions_app.command("export")
def predictions_export(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    format_: Annotated[str, typer.Option("--format", help="Output format: csv.")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: standard output).")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Only results of this mode: off, silent, shadow or live.")
    ] = None,
) -> None:
    """Export one row per series x deployment: UIDs, model, mode, score, flag, decision, reason, policy,
    used instances, latencies."""
    if format_ != "csv":
        raise fail(f"--format {format_!r} is not supported; expected csv.", 2)
    _, db = _open(data_dir, config)  # the config's [[deployments]] applied, as `deployments list` sees them
    with cli_errors():
        if out is None:
            count = export_predictions(db, sys.stdout, mode, actor=f"cli:{whoami()}")
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                count = export_predictions(db, fh, mode, actor=f"cli:{whoami()}", destination=out.name)
            console.print(f"Wrote {count} rows to {out}.")
        # stdout carries the CSV alone; the explanation goes to stderr
        note = empty_export_reason(db, mode) if count == 0 else unfinished_work(db)
    if note:
        err_console.print(f"[yellow]{'0 rows' if count == 0 else 'Note'}:[/yellow] {escape(note)}")


@predictions_app.command("summary")
def predictions_summary(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Processed, flagged, not applicable (with reasons), queued and failed counts."""
    from radgate.db import database_for

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    for line in summary(db).lines():
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

    settings, db = _open(data_dir, config)
    handled, result = run_engine(settings, db, timeout_s)
    console.print(f"Handled {handled} job(s).")
    for line in result.lines():
        console.print(line, markup=False)
    note = unfinished_work(db)  # `engine run` only runs queued jobs: say what it leaves and how to finish
    if note:
        err_console.print(f"[yellow]Note:[/yellow] {escape(note)}")
