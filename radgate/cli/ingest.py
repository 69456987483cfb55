"""``radgate serve``, ``radgate import`` and the ingest status commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radgate.cli.app import (
    ConfigOpt,
    DataDirOpt,
    app,
    cli_errors,
    console,
    light_settings_from,
    settings_from,
)

# The services are imported inside each command, so that importing this module (to run one command) stays
# cheap: `radgate series` does not load pydicom, numpy or pynetdicom.


@app.command()
def serve(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    dicom_port: Annotated[
        int | None,
        typer.Option(
            "--dicom-port", metavar="PORT", help="DIMSE port; 0: any free. Default: server.dicom_port, 11112."
        ),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            "--http-port", metavar="PORT", help="HTTP port; 0: any free. Default: server.http_port (11180)."
        ),
    ] = None,
    ae_title: Annotated[
        str | None, typer.Option("--ae-title", metavar="AET", help="This gateway's AE title.")
    ] = None,
    allow_ae: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-ae", metavar="AET[@HOST]", help="Calling AE allowed, as AET or AET@HOST (repeatable)."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="ADDRESS", help="Address to listen on. Default: server.host."),
    ] = None,
    send_to: Annotated[
        list[str] | None,
        typer.Option(
            "--send-to",
            metavar="AET@HOST:PORT",
            help="Default C-STORE destination for live results (repeatable).",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="human|json",
            help="human: one line per event; json: one JSON object per line. Default: log_format.",
        ),
    ] = None,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="Run the network edge alone (store, assembly, HTTP); engine, results and monitoring run as "
            "`radgate worker` processes.",
        ),
    ] = False,
) -> None:
    """Run the gateway: DIMSE C-ECHO/C-STORE SCP and the HTTP app (DICOMweb, API, pages)."""
    from radgate.cli.serving import run_serve

    run_serve(
        data_dir,
        config,
        server__dicom_port=dicom_port,
        server__http_port=http_port,
        server__ae_title=ae_title,
        server__allow_ae=allow_ae or None,
        server__host=host,
        results__send_to=send_to or None,
        log_format=log_format,
        workers=not no_workers,
    )


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Import DICOM files from folders, with a progress bar and a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from radgate.db import database_for
    from radgate.services.ingest import count_files, import_files

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        total = count_files(paths)
        with Progress(
            TextColumn("[bold]Importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("import", total=total)
            summary = import_files(settings, db, paths, progress=lambda: progress.advance(task))
    table = Table(title="Import summary")
    table.add_column("Outcome")
    table.add_column("Files", justify="right")
    for key in ("stored", "revision", "duplicate", "rejected"):
        table.add_row(key, str(summary.counts.get(key, 0)))
    console.print(table)
    for path, reason in summary.rejected[:50]:
        console.print(f"[red]rejected[/red] {path}: {reason}")
    if len(summary.rejected) > 50:
        console.print(f"... and {len(summary.rejected) - 50} more (see `radgate rejections`).")
    if summary.counts.get("stored", 0) + summary.counts.get("revision", 0):
        console.print(
            "Stored, not processed yet: `radgate process` assembles, scores and publishes them now "
            "(a running `radgate serve` does it by itself)."
        )


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) if r[c] is not None else "" for c in columns))
    console.print(table)


@app.command()
def rejections(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List recent rejections and quarantined instances with their reasons."""
    from radgate.db import database_for
    from radgate.services.ingest import rejections as recent_rejections

    db = database_for(settings_from(data_dir, config))
    rows = recent_rejections(db, limit)
    columns = ("at", "source", "calling_ae", "SOPInstanceUID", "status", "reason")
    _print_rows(rows, columns, "Recent rejections", as_json)


@app.command()
def series(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(help="How many, most recent first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List received series with their assembly status (receiving, complete, incomplete)."""
    from radgate.services.ingest import series as series_status

    rows = series_status(light_settings_from(data_dir, config), limit)
    columns = ("SeriesInstanceUID", "Modality", "num_instances", "expected_instances", "status", "note")
    _print_rows(rows, columns, "Series", as_json)


@app.command()
def expect(
    series_uid: Annotated[str, typer.Argument(help="SeriesInstanceUID.")],
    count: Annotated[int, typer.Argument(help="How many instances the series will have (>= 1).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a series' expected instance count: it completes as soon as that many have arrived."""
    from radgate.db import database_for
    from radgate.services.ingest import expect_instances

    db = database_for(settings_from(data_dir, config))
    with cli_errors():
        expect_instances(db, series_uid, count)
    console.print(f"Series {series_uid}: expecting {count} instance(s).")
