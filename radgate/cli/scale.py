"""``radgate init``, ``radgate worker``, ``radgate score`` and ``radgate db upgrade|status``.

Data directories and migrations are explicit (:mod:`radgate.db.datadir`): ``init`` creates one, ``db upgrade``
migrates it; every other command refuses a directory without a radgate database and a schema that is behind.
A :class:`radgate.errors.RadgateError` raised here is shown by the root group (:mod:`radgate.cli.lazy`) as
one red line with its kind's exit code.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from

db_app = typer.Typer(help="The database schema: migrations to the newest revision, and where it stands.")


@app.command("init")
def init(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="The data directory to create (default: --data-dir or RADGATE_DATA_DIR).",
            metavar="DIR",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a data directory: its database at the newest schema, the instance store, a radgate.toml."""
    from radgate.db.datadir import init_data_dir

    settings = settings_from(directory or data_dir, config)
    result = init_data_dir(settings)
    console.print(
        f"Created radgate data directory {result.data_dir} (database {result.database}).",
        markup=False,
        soft_wrap=True,
    )
    if result.wrote_config:
        console.print(
            f"Settings: {result.data_dir / 'radgate.toml'} (every key commented).",
            markup=False,
            soft_wrap=True,
        )


@app.command("worker")
def worker(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="engine, results or monitoring (repeatable; default: all three). Run one monitoring worker.",
            metavar="KIND",
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", min=1, help="Worker processes to run (each runs every --kind).")
    ] = 1,
) -> None:
    """Run engine, results and monitoring workers as their own processes (beside `serve --no-workers`)."""
    from radgate.workers import WorkerKind, run_workers, supervise

    kinds: list[WorkerKind] = []
    for name in kind or [k.value for k in WorkerKind]:
        try:
            kinds.append(WorkerKind(name))
        except ValueError:
            allowed = ", ".join(k.value for k in WorkerKind)
            raise fail(f"--kind {name!r} is not a worker kind; expected one of {allowed}.", 2) from None
    settings = settings_from(data_dir, config)
    from radgate.db import database_for

    db = database_for(settings)  # refuses a missing data directory and a schema that is behind
    from radgate.services.startup import check_store

    check_store(settings)  # an S3 bucket that is missing or out of reach: one line, nothing started
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if count > 1:
        db.dispose()
        command = [sys.executable, "-m", "radgate", "worker", "--data-dir", str(settings.data_dir)]
        if config is not None:
            command += ["--config", str(config)]
        for k in kinds:
            command += ["--kind", k.value]
        names = ", ".join(k.value for k in kinds)
        console.print(f"radgate: {count} worker processes ({names}). Ctrl-C stops.")
        supervise(command, count, stop)
        return
    console.print(f"radgate worker ({', '.join(k.value for k in kinds)}) running. Ctrl-C stops.")
    run_workers(settings, db, kinds, stop)
    db.dispose()


@app.command("score")
def score_(
    model: Annotated[str, typer.Option("--model", help="Installed model name.", metavar="M")],
    version: Annotated[str, typer.Option("--version", help="Installed model version.", metavar="V")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write (one row per series).")],
    folder: Annotated[
        Path | None, typer.Option("--folder", help="Score the DICOM files below this folder.", metavar="DIR")
    ] = None,
    study_list: Annotated[
        Path | None,
        typer.Option(
            "--study-list", help="Score these stored studies (StudyInstanceUID, one a line).", metavar="FILE"
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Score the stored studies acquired on or after this date.", metavar="YYYY-MM-DD"
        ),
    ] = None,
    into_db: Annotated[
        bool,
        typer.Option(
            "--into-db", help="Also store predictions in mode `retrospective` (never sent, never shown)."
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="A Ray cluster (ray://HOST:10001 or HOST:6379); default: a local Ray."
        ),
    ] = None,
    actors: Annotated[
        int, typer.Option("--actors", min=1, help="ONNX Runtime actors (one session each).")
    ] = 1,
    num_cpus: Annotated[
        int | None,
        typer.Option(
            "--num-cpus", min=1, help="CPUs of the local Ray started without --ray-address (default: all)."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Score images with one model version on Ray Data; write Parquet (and retrospective predictions)."""
    from datetime import date

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from radgate.db import database_for
    from radgate.scoring import ScoreRequest, score

    since_date = None
    if since is not None:
        try:
            since_date = date.fromisoformat(since)
        except ValueError:
            raise fail(f"--since {since!r} is not a date; expected YYYY-MM-DD.", 2) from None
    settings = settings_from(data_dir, config)
    request = ScoreRequest(
        model=model,
        version=version,
        out=out,
        folder=folder,
        study_list=study_list,
        since=since_date,
        into_db=into_db,
        ray_address=ray_address,
        actors=actors,
        num_cpus=num_cpus,
    )
    db = database_for(settings)
    with Progress(
        TextColumn("[bold]Scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("score", total=None)
        report = score(
            settings, db, request, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    db.dispose()
    for line in report.lines():
        console.print(line, markup=False, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Migrate the database to the newest revision of every migration branch (creating it if needed)."""
    from radgate.db.datadir import SchemaState, display_url, upgrade

    settings = settings_from(data_dir, config)
    before, after = upgrade(settings)
    where = display_url(settings.database_url)
    if before.state is SchemaState.AT_HEADS:
        heads = ", ".join(sorted(after.current))
        console.print(f"{where}: already at the newest revisions ({heads}).", markup=False, soft_wrap=True)
        return
    was = ", ".join(sorted(before.current)) or "empty"
    now = ", ".join(sorted(after.current))
    console.print(f"{where}: migrated from {was} to {now}.", markup=False, soft_wrap=True)


@db_app.command("status")
def db_status(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The database's current revisions against the newest ones (exit 1 when it needs `db upgrade`)."""
    from radgate.db.datadir import SchemaState, check_dir, display_url, schema_status
    from radgate.db.engine import Database

    settings = settings_from(data_dir, config)
    check_dir(settings)
    db = Database(settings.database_url)
    try:
        status = schema_status(db)
    finally:
        db.dispose()
    if as_json:
        import json

        print(
            json.dumps(
                {
                    "database": display_url(settings.database_url),
                    "current": sorted(status.current),
                    "heads": sorted(status.heads),
                    "state": status.state.value,
                }
            )
        )
        if status.state is not SchemaState.AT_HEADS:
            raise typer.Exit(1)
        return
    console.print(f"database: {display_url(settings.database_url)}", markup=False, soft_wrap=True)
    current = ", ".join(sorted(status.current)) or "(none)"
    console.print(f"current:  {current}", markup=False, soft_wrap=True)
    console.print(f"heads:    {', '.join(sorted(status.heads))}", markup=False, soft_wrap=True)
    hint = {
        SchemaState.AT_HEADS: "at the newest revisions",
        SchemaState.BEHIND: "behind: run `radgate db upgrade`",
        SchemaState.EMPTY: "empty: run `radgate db upgrade` (or `radgate init`)",
        SchemaState.AHEAD: "ahead: migrated by a newer radgate",
    }[status.state]
    console.print(f"state:    {status.state.value} ({hint})", markup=False, soft_wrap=True)
    if status.state is not SchemaState.AT_HEADS:
        raise typer.Exit(1)


app.add_typer(db_app, name="db")
