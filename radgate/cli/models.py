"""``radgate models add|list|show|verify|remove``: the model registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, cli_errors, console, settings_from

# The registry and the database are imported inside each command: importing this module stays cheap.

models_app = typer.Typer(help="Model packages: install, list, show, verify, remove.", no_args_is_help=True)
app.add_typer(models_app, name="models")

VersionArg = Annotated[str | None, typer.Argument(help="Version (default: the newest installed).")]


@models_app.command("add")
def add(
    path: Annotated[
        Path, typer.Argument(help="Package folder or .zip (manifest.toml, model.onnx, MODEL_CARD.md).")
    ],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who installs it (default: the OS user).")] = None,
) -> None:
    """Check a package (manifest and SHA-256 of the weights) and install it."""

    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        model = models_service.install(db, settings, path, by)
    console.print(
        f"Installed [bold]{model.name} {model.version}[/bold] ({model.task}), sha256 {model.sha256}."
    )


@models_app.command("list")
def list_(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed model versions (the bundled demo model is registered when present)."""
    from rich.table import Table

    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    models = models_service.list_installed(db, settings)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "version": m.version,
                        "task": m.task,
                        "synthetic": m.synthetic,
                        "sha256": m.sha256,
                        "registered_at": m.registered_at.isoformat(timespec="seconds"),
                        "registered_by": m.registered_by,
                    }
                    for m in models
                ],
                indent=2,
            )
        )
        return
    table = Table(title="Installed models")
    for column in ("Name", "Version", "Task", "Findings", "Intended use", "SHA-256", "Registered"):
        table.add_column(column)
    for m in models:
        table.add_row(
            m.name + (" [yellow](synthetic)[/yellow]" if m.synthetic else ""),
            m.version,
            m.task,
            ", ".join(f.name for f in m.manifest.findings),
            m.manifest.intended_use.summary,
            m.sha256[:12] + "…",
            f"{m.registered_at:%Y-%m-%d %H:%M} by {m.registered_by}",
        )
    console.print(table)


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: VersionArg = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    card: Annotated[bool, typer.Option("--card", help="Also print MODEL_CARD.md.")] = False,
) -> None:
    """Show a model version's manifest (intended use, operating points, outputs ...)."""
    from rich.table import Table

    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        model = models_service.show(db, name, version)
    m = model.manifest
    console.print(f"[bold]{m.name} {m.version}[/bold] — {m.model.task}: {m.model.description}")
    if m.model.synthetic_training_data:
        console.print("[yellow]Trained on synthetic data: a demo model, not for clinical use.[/yellow]")
    console.print(f"Installed at {model.path} from {model.source}; sha256 {model.sha256}")
    console.print(f"Intended use: {m.intended_use.summary}")
    for f in m.findings:
        console.print(
            f"Finding {f.name}: {f.code.meaning} ({f.code.scheme} {f.code.value}), output {f.output!r}"
        )
    table = Table(title="Operating points")
    for column in ("Name", "Threshold", "Claimed sensitivity", "Claimed specificity"):
        table.add_column(column)
    for op in m.operating_points:
        table.add_row(op.name, f"{op.threshold:g}", _opt(op.sensitivity), _opt(op.specificity))
    console.print(table)
    console.print(
        f"Explanation: {m.explanation.method}; licence {m.model.licence}; training data: "
        f"{m.training_data.summary}"
    )
    console.print("Manifest:")
    console.print(m.to_toml(), markup=False)
    if card:
        from radgate.models import open_model

        console.print(open_model(model).model_card, markup=False)


def _opt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@models_app.command("verify")
def verify(
    name: Annotated[str | None, typer.Argument(help="Model name (default: every installed model).")] = None,
    version: VersionArg = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Re-hash installed weights and compare them with the registered SHA-256 (exit 1 on any mismatch)."""

    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        reports = models_service.verify(db, name, version)
    bad = 0
    for report in reports:
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{'ok' if report.ok else 'MISMATCH'}[/{colour}] {report.message}")
        bad += not report.ok
    if bad:
        raise typer.Exit(1)


@models_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to remove.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Unregister a model version and delete its installed copy (stored predictions are kept)."""

    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        model = models_service.remove(db, settings, name, version)
    console.print(f"Removed {model.name} {model.version}.")
