"""``radgate deployments ...``, ``radgate predictions ...`` and ``radgate engine run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
from radgate.errors import RadgateError
from radgate.models import RegistryError
from radgate.models.registry import whoami
from radgate.routing import DeploymentError
from radgate.routing.deployment import Deployment
from radgate.services.deployments import (
    add_deployment,
    deployment_readiness,
    list_all,
    remove_deployment,
    set_deployment_mode,
    show,
)
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


def _deployment_json(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "model": d.model_name,
        "version": d.model_version,
        "site": d.site,
        "mode": d.mode,
        "managed_by": d.managed_by,
        "operating_point": d.operating_point,
        "findings": sorted(d.declared_findings),
        "incidental": d.incidental.value,
        "destinations": list(d.destinations),
        "rules": [r.describe() for r in d.rules],
    }


def _open(data_dir: Path | None, config: Path | None) -> tuple[Settings, Database]:
    from radgate.db import database_for

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    try:
        for change in prepare(db, settings, config):
            err_console.print(change, style="dim", markup=False)  # stdout stays clean for --json
    except (DeploymentError, RegistryError) as exc:
        raise fail(str(exc), 2) from exc
    except RadgateError as exc:  # a config entry's mode = "live" refused by the go-live gate
        raise fail(exc.message, exc.kind.exit_code) from exc
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
        print(json.dumps([_deployment_json(d) for d in deployments], indent=2))
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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the deployment and its changes).")
    ] = False,
) -> None:
    """Show a deployment: its model, rules in force, destinations and the history of changes."""
    from rich.table import Table


    _, db = _open(data_dir, config)
    with cli_errors():
        d, history = show(db, name)
    if as_json:
        changes = [
            {
                "at": c.at.isoformat(),
                "field": c.field,
                "from": c.old_value,
                "to": c.new_value,
                "by": c.changed_by,
                "note": c.note,
            }
            for c in history
        ]
        out = {**_deployment_json(d), "drop_rules": list(d.drop_rules), "changes": changes}
        print(json.dumps(out, indent=2))
        return
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


@deployments_app.command("add")
def deployments_add(
    name: Annotated[str, typer.Argument(help="Deployment name: lower-case letters, digits and '-'.")],
    model: Annotated[
        str, typer.Option("--model", metavar="MODEL", help="An installed model (radgate models list).")
    ],
    version: Annotated[str, typer.Option("--version", metavar="VERSION", help="The model's version.")],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="off | silent | shadow | live; live passes the go-live gate (refused for a new deployment "
            "unless --override).",
        ),
    ] = "silent",
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            metavar="ATTR=A,B|ATTR=MIN..MAX|ATTR~REGEX",
            help="A routing rule replacing the intended-use rule on the same attribute (repeatable), e.g. "
            "ViewPosition=PA,AP or PatientAge=16..120.",
        ),
    ] = None,
    site: Annotated[
        str | None, typer.Option("--site", metavar="SITE", help="Site (default: the site setting).")
    ] = None,
    destination: Annotated[
        list[str] | None,
        typer.Option(
            "--destination", metavar="AET@HOST:PORT", help="Where its live results go (repeatable)."
        ),
    ] = None,
    operating_point: Annotated[
        str | None,
        typer.Option("--operating-point", metavar="NAME", help="One of the model's (default: its first)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="Who makes the change (default: the OS user).")
    ] = None,
    override: Annotated[
        str | None,
        typer.Option(
            "--override", metavar="REASON", help="With --mode live: go live although the checks fail."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deployment as JSON.")] = False,
) -> None:
    """Create a deployment managed from the command line (the config file manages only its own entries).

    The config file and the command line each manage their own deployments: a name the config declares is
    refused here, and `deployments remove` removes only the ones created here (see docs/configuration.md).
    """
    from radgate.engine.service import resolve_config_path

    settings, db = _open(data_dir, config)
    with cli_errors():
        change = add_deployment(
            db,
            settings,
            name,
            model,
            version,
            by=by or whoami(),
            mode=mode,
            site=site,
            rules=rule or (),
            destinations=destination or (),
            operating_point=operating_point,
            override=override,
            config=resolve_config_path(config, settings.data_dir),
        )
    d = change.deployment
    if change.override is not None and change.readiness is not None:
        failed = ", ".join(c.name for c in change.readiness.failed)
        err_console.print(f"[yellow]Readiness overridden[/yellow] ({failed}): ", end="")
        err_console.print(change.override, markup=False)
    if as_json:
        print(json.dumps(_deployment_json(d), indent=2))
        return
    console.print(
        f"Deployment {d.name} created: {d.model_name} {d.model_version} at site {d.site}, mode {d.mode}.",
        markup=False,
    )
    if d.mode == "silent":
        console.print(
            "Its results are stored, never shown or sent; go live with "
            f"`radgate deployments set-mode {d.name} live` once `radgate readiness` passes.",
            markup=False,
        )


@deployments_app.command("remove")
def deployments_remove(
    name: Annotated[str, typer.Argument(help="Deployment name (one created with `deployments add`).")],
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="Who makes the change (default: the OS user).")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", metavar="TEXT", help="Why (kept in the audit).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove a deployment created with `deployments add`: deleted, or turned off when results refer to it."""
    _, db = _open(data_dir, config)
    with cli_errors():
        removal = remove_deployment(db, name, by=by or whoami(), note=note)
    if removal.outcome == "deleted":
        console.print(f"Deployment {removal.name} removed.", markup=False)
    else:
        console.print(
            f"Deployment {removal.name} turned off: {removal.results} result(s) and job(s) refer to it and "
            "keep its name; its history stays.",
            markup=False,
        )


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
def predictions_summary(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Processed, flagged, not applicable (with reasons), queued and failed counts."""
    import dataclasses

    from radgate.db import database_for

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    result = summary(db)
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2, default=str))
        return
    for line in result.lines():
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
