"""``radgate compare``, ``deployments lock-criteria|promote|rollback|changes``, ``learn queue|requests``,
``pool`` (the retraining loop: radgate.learning). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from radgate.cli.app import ConfigOpt, DataDirOpt, app, cli_errors, console, err_console, fail
from radgate.cli.engine import _open, deployments_app

learn_app = typer.Typer(help="Active learning: annotation queue and label requests.", no_args_is_help=True)
app.add_typer(learn_app, name="learn")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does this (default: the OS user).")]


def _by(by: str | None) -> str:
    from radgate.models.registry import whoami

    return by or whoami()


def _num(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@app.command("compare")
def compare_command(
    champion: Annotated[str, typer.Argument(help="The live deployment (champion).")],
    challenger: Annotated[str, typer.Argument(help="The deployment beside it, usually shadow (challenger).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Challenger against champion on paired cases: ΔAUC (paired DeLong), McNemar, subgroups, calibration.

    Paired cases are the same series scored by both deployments and labelled; the tables are per scanner and
    subgroup."""
    from radgate.learning.compare import compare_deployments

    _, db = _open(data_dir, config)
    with cli_errors():
        values = compare_deployments(db, champion, challenger).as_dict()
    if as_json:
        print(json.dumps(values, indent=2, default=str))
        return
    console.print(
        f"[bold]{challenger}[/bold] against [bold]{champion}[/bold] on {values['n_pairs']} paired cases "
        f"({values['positives']}+ / {values['negatives']}-). Synthetic model: not a medical device."
    )
    lo, hi = values["delta_auc_ci"]
    console.print(
        f"AUC champion {values['auc_champion']:.3f}, challenger {values['auc_challenger']:.3f}; "
        f"ΔAUC {values['delta_auc']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}), "
        f"DeLong p = {values['delong_p']:.3g}; "
        f"McNemar (correct calls) p = {values['mcnemar_p']:.3g}"
    )
    for title, rows in (
        ("Per scanner", values["per_scanner"]),
        *((f"By {k}", v) for k, v in values["subgroups"].items()),
    ):
        table = Table(title=title)
        for column in ("Level", "n", "+/-", "AUC champion", "AUC challenger", "ΔAUC", "p"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["level"],
                str(r["n"]),
                f"{r['positives']}/{r['negatives']}",
                _num(r["auc_champion"]),
                _num(r["auc_challenger"]),
                _num(r["delta_auc"]),
                _num(r["delong_p"], 3),
            )
        console.print(table)
    cal = values["calibration"]
    console.print(
        f"Calibration (ECE, Brier): champion {cal['champion']['ece']:.3f}, {cal['champion']['brier']:.3f}; "
        f"challenger {cal['challenger']['ece']:.3f}, {cal['challenger']['brier']:.3f}"
    )


@deployments_app.command("lock-criteria")
def lock_criteria_command(
    challenger: Annotated[str, typer.Argument(help="The challenger deployment.")],
    champion: Annotated[str, typer.Option("--champion", help="The champion it must beat.")],
    criteria: Annotated[Path, typer.Option("--criteria", help="Promotion criteria (TOML [promotion]).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
) -> None:
    """Lock the promotion criteria (text + SHA-256) before comparing; `deployments promote` judges these."""
    from radgate.learning.promotion import lock_criteria

    _, db = _open(data_dir, config)
    with cli_errors():
        locked = lock_criteria(db, challenger, champion, criteria, by=_by(by))
    console.print(f"Criteria for {challenger} against {champion} locked: sha256 {locked.sha256}")
    if locked.challenger_results_at_lock:
        err_console.print(
            f"[yellow]{challenger} already has {locked.challenger_results_at_lock} result(s);[/yellow] "
            "the change record will say the criteria were locked after results existed."
        )


@deployments_app.command("promote")
def promote_command(
    challenger: Annotated[str, typer.Argument(help="The challenger deployment to make live.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    override: Annotated[
        str | None,
        typer.Option(
            "--override",
            metavar="REASON",
            help="Go live although the go-live gate fails (recorded); never passes a failed criterion.",
        ),
    ] = None,
    champion_mode: Annotated[
        str, typer.Option("--champion-mode", help="What the champion becomes: shadow | silent | off.")
    ] = "shadow",
    as_json: JsonOpt = False,
) -> None:
    """Promote a challenger over its champion when every locked criterion passes; writes a change record."""
    from radgate.learning.promotion import promote

    settings, db = _open(data_dir, config)
    with cli_errors():
        result = promote(db, settings, challenger, by=_by(by), override=override, champion_mode=champion_mode)
    if as_json:
        print(json.dumps({"change_record": result.record_id, **result.record}, indent=2, default=str))
        return
    for flag in result.flags:
        err_console.print(f"[yellow]Note:[/yellow] {flag}")
    what = result.record["what"]
    champion = what["champion"]["deployment"]
    console.print(
        f"{challenger} is now live; {champion} is {what['modes_after'][champion]}. "
        f"Change record {result.record_id} (sha256 {result.record['record_sha256'][:12]}...)."
    )


@deployments_app.command("rollback")
def rollback_command(
    deployment: Annotated[str, typer.Argument(help="A deployment of the promotion to undo.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the change record).")] = None,
    override: Annotated[
        str | None,
        typer.Option("--override", metavar="REASON", help="Pass the go-live gate for the champion."),
    ] = None,
) -> None:
    """Undo the latest promotion of or over DEPLOYMENT: both deployments get their modes back."""
    from radgate.learning.promotion import rollback

    settings, db = _open(data_dir, config)
    with cli_errors():
        result = rollback(db, settings, deployment, by=_by(by), note=note, override=override)
    modes = ", ".join(f"{k} {v}" for k, v in result.modes.items())
    console.print(f"Change record {result.record_id} rolled back: {modes}.")


@deployments_app.command("changes")
def changes_command(
    deployment: Annotated[str | None, typer.Argument(help="Only records involving this deployment.")] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change records (promotions and their rollbacks) under the change control plan."""
    from radgate.learning.promotion import change_records

    _, db = _open(data_dir, config)
    records = change_records(db, deployment)
    if as_json:
        print(json.dumps(records, indent=2, default=str))
        return
    table = Table(title="Change records")
    for column in ("Id", "When (UTC)", "Challenger", "Champion", "ΔAUC", "Approved by", "Status"):
        table.add_column(column)
    for r in records:
        table.add_row(
            str(r["id"]),
            r["created_at"][:19],
            r["challenger"],
            r["champion"],
            _num(r["metrics"]["delta_auc"]),
            r["approved_by"],
            r["status"],
        )
    console.print(table)


@learn_app.command("queue")
def queue_command(
    deployment: Annotated[
        str, typer.Option("--deployment", help="Deployment whose predictions to pick from.")
    ],
    budget: Annotated[int, typer.Option("--budget", help="How many cases to request labels for.")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="uncertainty | margin | entropy | diversity | hybrid | random")
    ] = "hybrid",
    subgroup: Annotated[
        str, typer.Option("--subgroup", help="Stratify by scanner and this column ('' for scanner only).")
    ] = "PatientSex",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random strategy.")] = 0,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pick unlabelled cases for labelling and store them as label requests (labels come back through the
    review UI or `radgate truth import`)."""
    from radgate.learning.queue import queue_cases

    _, db = _open(data_dir, config)
    with cli_errors():
        batch, cases = queue_cases(
            db, deployment, budget, strategy, by=_by(by), subgroup=subgroup or None, seed=seed
        )
    if as_json:
        print(json.dumps([c.as_dict() for c in cases], indent=2))
        return
    table = Table(title=f"Label requests, batch {batch} ({strategy})")
    for column in ("#", "SeriesInstanceUID", "Score", "Reason"):
        table.add_column(column, overflow="fold")
    for c in cases:
        table.add_row(str(c.rank), c.SeriesInstanceUID, f"{c.score:.3f}", c.reason)
    console.print(table)


@learn_app.command("requests")
def requests_command(
    deployment: Annotated[str | None, typer.Option("--deployment", help="Only this deployment.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open | labelled | cancelled")] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List label requests; a request is labelled once ground truth exists for its series or study."""
    from radgate.learning.queue import label_requests

    _, db = _open(data_dir, config)
    rows = label_requests(db, deployment, status)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Label requests")
    for column in ("Id", "Batch", "Deployment", "SeriesInstanceUID", "Strategy", "Status"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"]), r["batch"], r["deployment"], r["SeriesInstanceUID"], r["strategy"], r["status"]
        )
    console.print(table)


@app.command("pool")
def pool_command(
    files: Annotated[list[Path], typer.Argument(help="One CSV per site (score and label columns).")],
    threshold: Annotated[
        float, typer.Option("--threshold", help="Operating point: score >= is positive.")
    ] = 0.5,
    score_col: Annotated[str, typer.Option("--score-col", help="Score column.")] = "score",
    label_col: Annotated[str, typer.Option("--label-col", help="Label column (0/1).")] = "label",
    data_dir: DataDirOpt = None,  # accepted like every command; pooling reads only the files given
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pool exports from several sites: per-site and pooled AUC, Se, Sp with CIs; Cochran's Q and I².

    The exports are de-identified predictions and labels of each site."""
    from radgate.learning.pool import pool_files

    if not 0.0 <= threshold <= 1.0:
        raise fail(f"--threshold must be in [0, 1], got {threshold}", 2)
    with cli_errors():
        out = pool_files(files, threshold, score_col, label_col)
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return
    table = Table(title=f"Sites (threshold {threshold:g})")
    for column in ("Site", "n", "+/-", "AUC (95% CI)", "Sensitivity (95% CI)", "Specificity (95% CI)"):
        table.add_column(column)

    def ci(est: Any, interval: Any) -> str:
        return "—" if est is None else f"{est:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"

    for r in out["sites"]:
        table.add_row(
            r["site"],
            str(r["n"]),
            f"{r['positives']}/{r['negatives']}",
            ci(r["auc"], r["auc_ci"]),
            ci(r["sensitivity"]["estimate"], r["sensitivity"]["ci"]),
            ci(r["specificity"]["estimate"], r["specificity"]["ci"]),
        )
    meta = out["auc_meta"]
    if meta:
        table.add_row(
            "pooled (random effects)",
            str(out["n"]),
            "",
            ci(meta["random"], meta["random_ci"]),
            ci(out["sensitivity_meta"]["random"], out["sensitivity_meta"]["random_ci"])
            if out["sensitivity_meta"]
            else "—",
            ci(out["specificity_meta"]["random"], out["specificity_meta"]["random_ci"])
            if out["specificity_meta"]
            else "—",
        )
    console.print(table)
    if meta:
        console.print(
            f"Heterogeneity of the AUCs: Cochran's Q = {meta['cochran_q']:.2f} (df {meta['df']}, "
            f"p = {meta['q_p']:.3g}), I² = {100 * meta['i2']:.0f}%, τ² = {meta['tau2']:.2g}"
        )


export_app = typer.Typer(help="De-identified exports (DICOM PS3.15 Annex E).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("dataset")
def export_dataset_command(
    deployment: Annotated[str, typer.Option("--deployment", help="Whose scored series to export.")],
    out: Annotated[Path, typer.Option("--out", help="New or empty directory to write.")],
    labels: Annotated[
        bool, typer.Option("--labels", help="Also write labels.csv keyed by the new UIDs.")
    ] = False,
    profile: Annotated[str, typer.Option("--profile", help="basic (Annex E Basic Profile).")] = "basic",
    retain_device_identity: Annotated[
        bool, typer.Option("--retain-device-identity", help="Retain Device Identity Option.")
    ] = False,
    retain_dates: Annotated[
        str | None,
        typer.Option(
            "--retain-dates", help="modified: Retain Longitudinal Temporal Information, Modified Dates."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a deployment's images and radgate's SR/GSPS, de-identified (Basic Profile, Clean Graphics and
    Clean Structured Content for radgate's own objects), UIDs remapped consistently."""
    from radgate.learning.export import export_dataset

    settings, db = _open(data_dir, config)
    with cli_errors():
        summary = export_dataset(
            db,
            settings,
            deployment,
            out,
            by=_by(by),
            labels=labels,
            profile=profile,
            retain_device_identity=retain_device_identity,
            retain_dates=retain_dates,
        )
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
        return
    console.print(
        f"Exported {summary.images} image(s) and {summary.results} radgate result object(s) of "
        f"{summary.series} series to {out}" + (f"; {summary.labels} label(s) in labels.csv" if labels else "")
    )
    for skipped in summary.skipped:
        err_console.print(f"[yellow]Left out[/yellow] {skipped['what']}: {skipped['reason']}")


def _models_app() -> typer.Typer:
    from radgate.cli.models import models_app

    return models_app


@_models_app().command("recalibrate")
def recalibrate_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version whose stored site scores to recalibrate.")],
    site: Annotated[str, typer.Option("--site", help="Site whose labelled cases fit the map.")],
    method: Annotated[str, typer.Option("--method", help="platt | isotonic")] = "platt",
    new_version: Annotated[
        str | None, typer.Option("--new-version", help="Version of the result (default VERSION-METHOD.SITE).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a new model version with the same weights and a site calibration map the runtime applies; its
    cross-validated calibration goes into the model card."""
    from radgate.learning.recalibrate import recalibrate_model

    settings, db = _open(data_dir, config)
    with cli_errors():
        result = recalibrate_model(
            db, settings, model, version, method, site, by=_by(by), new_version=new_version
        )
    if as_json:
        print(json.dumps(dataclasses_asdict(result), indent=2))
        return
    console.print(
        f"Installed {result.name} {result.version} (same weights, sha256 {result.sha256[:12]}...): "
        f"ECE {result.before['ece']:.3f} before, {result.after['ece']:.3f} after ({result.n} cases, "
        "5-fold cross-validated)."
    )


@_models_app().command("finetune")
def finetune_command(
    model: Annotated[str | None, typer.Argument(help="Model name (or give --deployment).")] = None,
    version: Annotated[str | None, typer.Argument(help="Version to start from (or --deployment).")] = None,
    site: Annotated[
        str | None, typer.Option("--site", help="Site whose labelled cases to train on (with MODEL VERSION).")
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="Start from this deployment's model version, on its site's cases."),
    ] = None,
    new_version: Annotated[
        str | None, typer.Option("--new-version", help="Version of the result (default VERSION-ft.SITE).")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training split.")] = 12,
    layers: Annotated[
        int, typer.Option("--layers", help="Last convolutions trained (earlier ones frozen).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the training.")] = 0,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a model version on a site's labelled cases (the train extra) and install the result as a
    new ONNX version with its model card; then deploy it in shadow, compare and promote."""
    from radgate.learning.finetune import deployment_target, finetune_model

    settings, db = _open(data_dir, config)
    with cli_errors():
        if deployment is not None:
            if model is not None or site is not None:
                raise fail("give either --deployment D or MODEL VERSION --site S, not both")
            model, version, site = deployment_target(db, deployment)
        elif model is None or version is None or site is None:
            raise fail("give MODEL VERSION --site S, or --deployment D")
        result = finetune_model(
            db,
            settings,
            model,
            version,
            site,
            by=_by(by),
            new_version=new_version,
            epochs=epochs,
            trainable_layers=layers,
            seed=seed,
        )
    if as_json:
        print(json.dumps(dataclasses_asdict(result), indent=2))
        return
    console.print(
        f"Installed {result.name} {result.version} (new weights, sha256 {result.sha256[:12]}...): fine-tuned "
        f"from {result.from_version} on {result.n} labelled cases of {result.site} ({result.positives} "
        f"positive); held-out AUC {result.auc_before:.3f} before, {result.auc_after:.3f} after "
        f"({result.n_validation} cases; optimistic: they chose the epoch). Deploy it in shadow and run "
        "`radgate compare`."
    )


def dataclasses_asdict(value: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(value)
