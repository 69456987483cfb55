"""``radgate outbox list|retry|send|destinations``: AI results on their way to the PACS."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, cli_errors, console, settings_from
from radgate.results.tables import OUTBOX_STATUSES  # in an option's help

outbox_app = typer.Typer(
    help="The results outbox: what was sent where, what failed and why.", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list")
def list_(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only rows in this status: {', '.join(OUTBOX_STATUSES)}.")
    ] = None,
    destination: Annotated[
        str | None, typer.Option("--destination", help="Only rows for this destination.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List outbox rows: object, destination, status, attempts, next try and the last error."""
    from rich.table import Table

    from radgate.db import database_for
    from radgate.services.outbox import outbox_rows

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        rows = outbox_rows(db, status=status, destination=destination, limit=limit)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "SOPInstanceUID": r.SOPInstanceUID,
                        "StudyInstanceUID": r.StudyInstanceUID,
                        "destination": r.destination,
                        "status": r.status,
                        "attempts": r.attempts,
                        "max_attempts": r.max_attempts,
                        "next_attempt_at": r.next_attempt_at.isoformat(timespec="seconds"),
                        "sent_at": r.sent_at.isoformat(timespec="seconds") if r.sent_at else None,
                        "last_error": r.last_error,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        console.print("The outbox is empty." if status is None else f"No outbox rows in status {status!r}.")
        return
    table = Table("id", "kind", "destination", "status", "attempts", "next try / sent")
    table.add_column("SOPInstanceUID", overflow="fold")
    table.add_column("last error", overflow="fold")
    for r in rows:
        when = r.sent_at if r.status == "sent" else r.next_attempt_at
        table.add_row(
            str(r.id),
            r.kind,
            r.destination,
            r.status,
            f"{r.attempts}/{r.max_attempts}",
            when.isoformat(sep=" ", timespec="seconds") if when else "",
            r.SOPInstanceUID,
            r.last_error or "",
        )
    console.print(table)


@outbox_app.command("retry")
def retry_(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Outbox row ids (default: every failed row).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    destination: Annotated[
        str | None, typer.Option("--destination", help="Only rows for this destination.")
    ] = None,
) -> None:
    """Give failed rows a fresh set of attempts (after the destination is fixed); sent rows are untouched."""
    from radgate.db import database_for
    from radgate.services.outbox import retry_failed

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    count = retry_failed(db, ids=ids or (), destination=destination)
    console.print(f"{count} failed row(s) queued again.")


@outbox_app.command("send")
def send(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Deliver every due row now to the destinations of results.send_to and results.folder_destination."""
    from radgate.db import database_for
    from radgate.services.outbox import configured_destinations, send_due

    settings = settings_from(data_dir, config)
    with cli_errors():
        configured_destinations(settings)  # a bad destination is reported before the database is opened
        report, destinations = send_due(settings, database_for(settings))
    console.print(
        f"Sent {report.sent}, to retry {report.retried}, failed {report.failed} "
        f"(destinations: {', '.join(d.name for d in destinations)})."
    )
    for line in report.failures:
        console.print(f"[red]failed[/red] {line}")
    if report.failed:
        raise typer.Exit(1)


@outbox_app.command("destinations")
def destinations_(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the destinations the configuration names (results.send_to, results.folder_destination)."""
    from rich.table import Table

    from radgate.services.outbox import configured_destinations

    settings = settings_from(data_dir, config)
    with cli_errors():
        destinations = configured_destinations(settings)
    if as_json:
        print(json.dumps([{"name": d.name, "kind": _kind(d)} for d in destinations], indent=2))
        return
    table = Table("destination", "kind")
    for d in destinations:
        table.add_row(d.name, _kind(d))
    console.print(table)


def _kind(destination: object) -> str:
    return {"CStore": "C-STORE", "StowRs": "STOW-RS"}.get(
        name := type(destination).__name__.removesuffix("Destination"), name.lower()
    )
