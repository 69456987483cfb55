"""``radgate process``: assemble, route, run the models and publish to completion, without a server."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, err_console, fail, settings_from

_LABELS = {
    "assemble": "Assembling series",
    "route": "Routing to deployments",
    "infer": "Running models",
    "publish": "Building SR + GSPS",
    "send": "Sending results",
}


@app.command("process")
def process_command(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Stop after this many seconds at most.")
    ] = 3600.0,
    keep_receiving: Annotated[
        bool,
        typer.Option(
            "--keep-receiving",
            help="Leave series that received an instance within assembly.quiet_period_s for later (a "
            "server is still receiving them); by default the import is taken as finished.",
        ),
    ] = False,
) -> None:
    """Assemble, route, run the models and publish to completion, without a server."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from radgate.db import database_for
    from radgate.engine.service import prepare
    from radgate.models import RegistryError
    from radgate.routing import DeploymentError
    from radgate.services.processing import process

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    try:
        for change in prepare(db, settings, config):  # bundled models, the config's [[deployments]]
            err_console.print(f"[dim]{change}[/dim]")
    except (DeploymentError, RegistryError) as exc:
        raise fail(str(exc), 2) from exc
    # The bar and the summary say what happened to each series; per-series INFO lines would only break
    # the bar (warnings and errors still show; log_level = "DEBUG" shows everything).
    quiet = logging.getLogger("radgate")
    level = quiet.level
    if quiet.getEffectiveLevel() >= logging.INFO:
        quiet.setLevel(logging.WARNING)
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_LABELS.get(stage, stage), total=max(total, 0))
            bar.update(tasks[stage], completed=done, total=max(total, 0))

        try:
            report = process(
                settings, db, progress=on_progress, timeout_s=timeout_s, finish_receiving=not keep_receiving
            )
        finally:
            quiet.setLevel(level)
    for line in report.lines():
        console.print(line, markup=False)
    for line in report.summary.lines():
        console.print(line, markup=False)
    for line in report.advice():
        err_console.print(f"[yellow]Note:[/yellow] {escape(line)}")
    db.dispose()
    if report.delivery.failed or report.summary.failed or report.timed_out:
        raise typer.Exit(1)
