"""``radgate demo``: the whole flow on a synthetic site, in one process (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail

if TYPE_CHECKING:
    from radgate.demo import DemoReport


@app.command()
def demo(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    studies: Annotated[
        int,
        typer.Option(help="Synthetic studies of the silent phase (three months); the live month adds half."),
    ] = 90,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic site.")] = 2026,
) -> None:
    """Generate a synthetic site, send it to a gateway, run the demo model and deliver its results.

    Each run starts from scratch in its data directory (default radgate-data/demo): a previous demo run there
    is removed first, and the demo says so before it does; a directory the demo did not make is refused.
    """
    from rich.panel import Panel
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from radgate.demo import NOT_CLINICAL, run_demo

    if config is not None:
        console.print("[yellow]The demo builds its own configuration; --config is ignored.[/yellow]")
    target = data_dir or Path("radgate-data/demo")
    console.print(Panel(NOT_CLINICAL + " Everything in this demo is synthetic.", style="yellow"))
    console.print(reset_notice(target), markup=False)
    with Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(task: str, done: int, total: int) -> None:
            label = {
                "synth": "Rendering phantoms",
                "send": "C-STORE, silent phase",
                "send-live": "C-STORE, live phase",
            }.get(task, task)
            if task not in tasks:
                tasks[task] = bar.add_task(label, total=total)
            bar.update(tasks[task], completed=done, total=total)

        try:
            report = run_demo(
                target,
                studies=studies,
                seed=seed,
                step=lambda m: bar.console.print(f"- {m}"),
                progress=progress,
            )
        except (FileExistsError, FileNotFoundError, TimeoutError) as exc:
            raise fail(str(exc)) from exc
    print_report(report)


def reset_notice(target: Path) -> str:
    """What the demo is about to do to ``target``, said before it does it (issue 16: it wiped silently)."""
    from radgate.demo import DEMO_MARKER

    if not target.exists() or not any(target.iterdir()):
        return f"Creating the demo's data directory {target}."
    if (target / DEMO_MARKER).exists():
        entries = sorted(p.name for p in target.iterdir() if p.name != DEMO_MARKER)
        shown = ", ".join(entries[:8]) + (f" and {len(entries) - 8} more" if len(entries) > 8 else "")
        return (
            f"Resetting {target}: the previous demo run there is removed ({shown}) and rebuilt from scratch. "
            "Only that directory is touched; give --data-dir DIR to keep it and run the demo elsewhere."
        )
    return f"{target} is not empty and was not made by the demo: the demo will refuse to touch it."


def print_report(r: DemoReport) -> None:
    from rich.table import Table

    from radgate.demo import DEMO_MIN_CASES, DEPLOYMENT, NOT_CLINICAL, OVERRIDE

    table = Table(
        title="radgate demo: one synthetic site, silent -> local validation -> live", show_header=False
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("Studies / images generated", f"{r.studies} / {r.images}")
    table.add_row("Images stored (C-STORE success)", str(r.stored))
    table.add_row("Images refused", str(r.rejected))
    table.add_row("Series assembled", str(r.series))
    table.add_row("Series routed to the model", str(r.matched))
    table.add_row("Series not applicable", str(sum(r.not_applicable.values())))
    table.add_row("Silent phase: results stored, none shown or sent", str(r.silent_predictions))
    table.add_row("Live phase: results released (inside validated subgroups)", str(r.released))
    table.add_row("Live phase: results withheld (outside them)", str(r.withheld))
    table.add_row("Flagged at the operating point (all phases)", str(r.flagged))
    table.add_row("Jobs failed", str(r.failed_jobs))
    table.add_row("Result objects delivered (SR + GSPS)", str(r.delivered))
    if r.auc is not None and r.auc_ci is not None and r.auc_n is not None:
        table.add_row(
            "AUC on this site (DeLong 95% CI)",
            f"{r.auc:.3f} ({r.auc_ci[0]:.3f}-{r.auc_ci[1]:.3f}), {r.auc_n[0]} pos / {r.auc_n[1]} neg",
        )
    table.add_row("Time", f"{r.seconds:.0f} s")
    console.print(table)
    console.print(
        "Validated at this site (demo minimum: "
        f"{DEMO_MIN_CASES} positives and {DEMO_MIN_CASES} negatives per level; radgate's default is 100 and "
        "100): " + ("; ".join(r.validated) or "nothing")
    )
    if r.readiness is not None:
        gate = Table(title=f"Go-live gate for {DEPLOYMENT}: {'ready' if r.readiness.ready else 'NOT ready'}")
        gate.add_column("check")
        gate.add_column("verdict")
        gate.add_column("detail", overflow="fold")
        for c in r.readiness.checks:
            gate.add_row(c.name, "ok" if c.ok else "fails", c.detail)
        console.print(gate)
        if not r.readiness.ready:
            console.print(f"Went live with a recorded override: [italic]{OVERRIDE}[/italic]")
    if r.withheld_reasons:
        reasons = Table(title="Withheld: why (never sent, never shown as a score)")
        reasons.add_column("reason")
        reasons.add_column("results", justify="right")
        for reason, n in r.withheld_reasons.most_common():
            reasons.add_row(reason, str(n))
        console.print(reasons)
    if r.not_applicable:
        reasons = Table(title="Not applicable: why")
        reasons.add_column("reason")
        reasons.add_column("series", justify="right")
        for reason, n in r.not_applicable.most_common():
            reasons.add_row(reason, str(n))
        console.print(reasons)
    console.print(f"Results (DICOM SR + GSPS) were delivered to [bold]{r.results_dir}[/bold]")
    if r.report_dir is not None:
        console.print(f"The local validation report is in [bold]{r.report_dir}[/bold]")
    console.print(f"The synthetic site (DICOM + labels.csv) is in [bold]{r.site_dir}[/bold]")
    console.print(f"Inspect with: .venv/bin/radgate predictions export --format csv --data-dir {r.data_dir}")
    console.print(f"[yellow]{NOT_CLINICAL}[/yellow]")
