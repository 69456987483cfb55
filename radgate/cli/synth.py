"""``radgate synth``: write a synthetic site (phantom chest radiographs + labels.csv); list its profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from
from radgate.synth import PROFILES, builtin_scenario_names  # in the options' help

synth_app = typer.Typer(
    help="Synthetic site: phantom chest radiographs with realistic headers (not patient data).",
    invoke_without_command=True,
)
app.add_typer(synth_app, name="synth")


@synth_app.callback()
def synth(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (dicom/, labels.csv, site.json).")
    ] = None,
    studies: Annotated[
        int | None,
        typer.Option(
            "--studies", min=1, help="Number of studies (default: the scenario's volume; 20 with --profile)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: same seed and options, same bytes.")
    ] = 0,
    profile: Annotated[
        str | None, typer.Option("--profile", help=f"One vendor profile: {', '.join(PROFILES)}.")
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help=f"Scenario TOML file or built-in name ({', '.join(builtin_scenario_names())}); "
            "default demo-site.",
        ),
    ] = None,
    prevalence: Annotated[
        float, typer.Option("--prevalence", min=0.0, max=1.0, help="Pneumothorax prevalence with --profile.")
    ] = 0.15,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a site already in --out.")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Generate a synthetic site (phantom chest radiographs, labels.csv); or list profiles/scenarios."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from radgate.synth import ScenarioError, generate_site, resolve_scenario

    if ctx.invoked_subcommand is not None:
        return
    settings_from(data_dir, config)
    if out is None:
        raise fail("--out DIR is required to generate a site (or run 'radgate synth profiles').", code=2)
    try:
        chosen = resolve_scenario(scenario, profile, studies, prevalence)
    except ScenarioError as exc:
        raise fail(str(exc), code=2) from exc

    console.print(
        f"Generating synthetic site [bold]{chosen.name}[/bold]: {chosen.total_studies} studies over "
        f"{chosen.months} month(s), seed {seed} -> {out}"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("images", total=None, rate="")

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:.1f} img/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        try:
            summary = generate_site(out, chosen, seed, overwrite=overwrite, progress=progress)
        except FileExistsError as exc:
            raise fail(str(exc)) from exc

    table = Table(title=f"Synthetic site {chosen.name} (synthetic phantoms - not patient data)")
    table.add_column("profile")
    table.add_column("images", justify="right")
    for name, n in sorted(summary.by_profile.items()):
        table.add_row(name, str(n))
    console.print(table)
    views = ", ".join(f"{v} {n}" for v, n in sorted(summary.by_view.items()))
    console.print(
        f"{summary.studies} studies, {summary.images} images ({views}), "
        f"{summary.positives} with pneumothorax, "
        f"{summary.missing_instances} instance(s) withheld from incomplete series; "
        f"{summary.images_per_second:.1f} images/s.\nLabels: {Path(out) / 'labels.csv'}"
    )


@synth_app.command("profiles")
def profiles(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the vendor/detector profiles and their header character."""
    from rich.table import Table

    from radgate.synth import describe_profiles

    settings_from(data_dir, config)
    rows = describe_profiles()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Synthetic vendor profiles")
    for col in (
        "profile",
        "modality",
        "manufacturer",
        "model",
        "photometric",
        "bits",
        "voi",
        "matrix",
        "mm/px",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["profile"],
            r["modality"],
            r["manufacturer"],
            r["model"],
            r["photometric"],
            r["bits_stored"],
            r["voi"],
            r["matrix"],
            r["pixel_spacing_mm"],
        )
    console.print(table)


@synth_app.command("scenarios")
def scenarios(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the built-in scenarios."""
    from rich.table import Table

    from radgate.synth import builtin_scenario

    settings_from(data_dir, config)
    if as_json:
        rows = []
        for name in builtin_scenario_names():
            sc = builtin_scenario(name)
            rows.append(
                {
                    "scenario": name,
                    "months": sc.months,
                    "studies": sc.total_studies,
                    "prevalence": sorted(set(sc.prevalence)),
                    "vendors": [{"from_month": v.from_month, "mix": sorted(v.mix)} for v in sc.vendors],
                    "description": sc.description,
                }
            )
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Built-in synthetic scenarios")
    for col in ("scenario", "months", "studies", "prevalence", "vendors", "description"):
        table.add_column(col)
    for name in builtin_scenario_names():
        s = builtin_scenario(name)
        phases = "; ".join(f"m{v.from_month}: " + ", ".join(sorted(v.mix)) for v in s.vendors)
        prev = sorted(set(s.prevalence))
        table.add_row(
            name, str(s.months), str(s.total_studies), "/".join(f"{p:g}" for p in prev), phases, s.description
        )
    console.print(table)
