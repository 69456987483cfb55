"""``radgate models add|list|show|verify|remove|import``: the model registry, and packaging your own model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radgate.cli.app import (
    ConfigOpt,
    DataDirOpt,
    app,
    cli_errors,
    console,
    err_console,
    fail,
    light_settings_from,
    settings_from,
)

if TYPE_CHECKING:
    from radgate.models.importer import ImportPlan, Question

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

    from radgate.services import models as models_service

    models = models_service.list_installed(light_settings_from(data_dir, config))
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
            ", ".join(m.finding_names),
            m.intended_use_summary,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (registry row + manifest).")] = False,
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
    if as_json:
        import json

        print(
            json.dumps(
                {
                    "name": model.name,
                    "version": model.version,
                    "synthetic": model.synthetic,
                    "sha256": model.sha256,
                    "path": str(model.path),
                    "source": model.source,
                    "registered_at": model.registered_at.isoformat(),
                    "registered_by": model.registered_by,
                    "manifest": m.to_dict(),
                },
                indent=2,
            )
        )
        return
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


def _split(values: list[str] | None) -> list[str] | None:
    """Repeated flags and comma-separated values alike: ``--view PA --view AP`` or ``--view PA,AP``."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _ask(plan: ImportPlan, questions: Sequence[Question], required: bool) -> None:
    """The form: each question until its answer parses (an empty optional answer leaves it out)."""
    from radgate.models.importer import ModelImportError, parse_answer

    for q in questions:
        prompt = q.prompt
        if q.key == "output":
            prompt += f" ({', '.join(t.name for t in plan.signature.outputs)})"
        elif q.choices:
            prompt += f" ({'/'.join(q.choices)})"
        while True:
            default = plan.suggestions.get(q.key, q.default) if required else ""
            text = typer.prompt(prompt, default=default, show_default=bool(default))
            if not required and not str(text).strip():
                break
            try:
                setattr(plan.answers, q.key, parse_answer(q, str(text)))
                break
            except ModelImportError as exc:
                err_console.print(f"[red]Error:[/red] {exc.message}")


@models_app.command("import")
def import_(
    onnx: Annotated[
        Path | None, typer.Option("--onnx", help="An ONNX file to package.", metavar="FILE")
    ] = None,
    monai_bundle: Annotated[
        Path | None,
        typer.Option(
            "--monai-bundle",
            help="A MONAI bundle folder (configs/metadata.json); needs the train extra.",
            metavar="DIR",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Package folder to write (default: ./NAME-VERSION).", metavar="DIR"),
    ] = None,
    install: Annotated[
        bool, typer.Option("--install", help="Also install the package (radgate models add).")
    ] = False,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Ask for what flags, graph and bundle leave open (default: when run in a terminal).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name, e.g. cxr-ptx.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Semantic version (default 1.0.0).")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="triage or diagnostic.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="One-line description.")] = None,
    licence: Annotated[str | None, typer.Option("--licence", help="Licence, e.g. Apache-2.0.")] = None,
    intended_use: Annotated[
        str | None, typer.Option("--intended-use", help="Intended use, one sentence.")
    ] = None,
    modality: Annotated[
        list[str] | None, typer.Option("--modality", help="Modality (repeat, or DX,CR).")
    ] = None,
    body_part: Annotated[
        list[str] | None, typer.Option("--body-part", help="BodyPartExamined (repeat).")
    ] = None,
    view: Annotated[list[str] | None, typer.Option("--view", help="ViewPosition (repeat, or PA,AP).")] = None,
    age_min: Annotated[float | None, typer.Option("--age-min", help="Youngest patient age, years.")] = None,
    age_max: Annotated[float | None, typer.Option("--age-max", help="Oldest patient age, years.")] = None,
    sex: Annotated[list[str] | None, typer.Option("--sex", help="PatientSex F, M, O (repeat).")] = None,
    finding: Annotated[
        str | None, typer.Option("--finding", help="The finding scored, e.g. pneumothorax.")
    ] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Its code SCHEME:VALUE:MEANING, e.g. SCT:36118008:Pneumothorax."),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="ONNX output with the finding's score.")
    ] = None,
    output_kind: Annotated[
        str | None, typer.Option("--output-kind", help="probability (default) or score.")
    ] = None,
    cam_output: Annotated[
        str | None, typer.Option("--cam-output", help="ONNX output with a CAM, if any.")
    ] = None,
    explanation: Annotated[
        str | None,
        typer.Option("--explanation", help="cam, occlusion or none (default: cam if a CAM output)."),
    ] = None,
    input_name: Annotated[str | None, typer.Option("--input", help="ONNX input fed the image.")] = None,
    height: Annotated[int | None, typer.Option("--height", help="Input height, pixels.")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Input width, pixels.")] = None,
    channels: Annotated[int | None, typer.Option("--channels", help="Input channels, 1 or 3.")] = None,
    normalisation: Annotated[
        str | None, typer.Option("--normalisation", help="none (values in [0, 1]) or zscore.")
    ] = None,
    mean: Annotated[float | None, typer.Option("--mean", help="zscore mean.")] = None,
    std: Annotated[float | None, typer.Option("--std", help="zscore standard deviation.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Operating point threshold.")] = None,
    operating_point: Annotated[
        str | None, typer.Option("--operating-point", help="Its name (default: default).")
    ] = None,
    sensitivity: Annotated[
        float | None, typer.Option("--sensitivity", help="Claimed sensitivity there.")
    ] = None,
    specificity: Annotated[
        float | None, typer.Option("--specificity", help="Claimed specificity there.")
    ] = None,
    training_data: Annotated[
        str | None, typer.Option("--training-data", help="Training data, one sentence.")
    ] = None,
    training_images: Annotated[
        int | None, typer.Option("--training-images", help="Number of training images.")
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic-training-data", help="The model was trained on synthetic data.")
    ] = False,
    channel: Annotated[
        int | None,
        typer.Option("--channel", help="MONAI: output channel of the finding (default: not background)."),
    ] = None,
    activation: Annotated[
        str | None,
        typer.Option("--activation", help="MONAI: softmax, sigmoid or none (default: by channels)."),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who installs it (default: the OS user).")] = None,
) -> None:
    """Package your own model (an ONNX file or a MONAI bundle): intended use, preprocessing, outputs and
    operating point from flags or a form; the graph's inputs and outputs are checked against them."""
    import sys

    from radgate.models.importer import (
        answers_from_mapping,
        finish_import,
        optional_questions,
        plan_onnx_import,
    )

    if (onnx is None) == (monai_bundle is None):
        raise fail("give one of --onnx FILE or --monai-bundle DIR.", 2)
    with cli_errors():
        given = answers_from_mapping(
            {
                "name": name,
                "version": version,
                "task": task,
                "description": description,
                "licence": licence,
                "intended_use": intended_use,
                "modalities": _split(modality),
                "body_parts": _split(body_part),
                "views": _split(view),
                "age_min": age_min,
                "age_max": age_max,
                "sexes": _split(sex),
                "finding": finding,
                "code": code,
                "output": output,
                "output_kind": output_kind,
                "cam_output": cam_output,
                "explanation": explanation,
                "input": input_name,
                "height": height,
                "width": width,
                "channels": channels,
                "normalisation": normalisation,
                "mean": mean,
                "std": std,
                "threshold": threshold,
                "operating_point": operating_point,
                "sensitivity": sensitivity,
                "specificity": specificity,
                "training_data": training_data,
                "training_images": training_images,
                "synthetic_training_data": synthetic or None,
            }
        )
        if onnx is not None:
            plan = plan_onnx_import(onnx, given)
        else:
            from radgate.models.monai_bundle import plan_monai_import

            assert monai_bundle is not None
            console.print(f"Converting the network of {monai_bundle} to ONNX …")
            plan = plan_monai_import(monai_bundle, given, channel=channel, activation=activation)
    sig = plan.signature
    console.print(
        "Graph: inputs "
        + ", ".join(f"{t.name} {t.describe()}" for t in sig.inputs)
        + "; outputs "
        + ", ".join(f"{t.name} {t.describe()}" for t in sig.outputs),
        markup=False,
    )
    ask = sys.stdin.isatty() if interactive is None else interactive
    if plan.missing and ask:
        console.print("A few answers for the manifest (docs/model-package.md explains each):")
        _ask(plan, plan.missing, required=True)
        _ask(plan, optional_questions(plan.answers), required=False)
    a = plan.answers
    dest = out if out is not None else Path(f"{a.name or 'model'}-{a.version or '1.0.0'}")
    with cli_errors():
        package = finish_import(plan, dest)
    m = package.manifest
    console.print(
        f"Wrote [bold]{m.name} {m.version}[/bold] to {dest}: manifest.toml, {m.weights.file}, MODEL_CARD.md "
        f"(inputs and outputs checked against the graph)."
    )
    if not install:
        console.print(f"Install it with: radgate models add {dest}", markup=False)
        return
    from radgate.db import database_for
    from radgate.services import models as models_service

    settings = settings_from(data_dir, config)
    db = database_for(settings)
    with cli_errors():
        model = models_service.install(db, settings, dest, by)
    console.print(
        f"Installed [bold]{model.name} {model.version}[/bold] ({model.task}), sha256 {model.sha256}."
    )
