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
        typer.Option(
            help="Synthetic studies of the silent phase (three months); each of the year's other nine months "
            "has as many as one of these."
        ),
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
                "monitor": "Monitoring, month by month",
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
    from rich.markup import escape
    from rich.table import Table

    from radgate.demo import DEMO_MIN_CASES, DEPLOYMENT, NOT_CLINICAL, OVERRIDE, TRUTH_LAG_DAYS

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
    table.add_row("Time (of which monitoring)", f"{r.seconds:.0f} s ({r.monitoring_seconds:.0f} s)")
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
    if r.monthly:
        monthly = Table(
            title=f"Monitoring {DEPLOYMENT} by month (ground truth {TRUTH_LAG_DAYS} days after each study)"
        )
        heads = ("month", "cases", "labelled +/-", "AUC (95% CI)", "sensitivity", "specificity", "flag rate")
        for name in heads:
            monthly.add_column(name, justify="right")
        for m in r.monthly:
            auc = "-"
            if m.auc is not None and m.auc_ci is not None:
                auc = f"{m.auc:.3f} ({m.auc_ci[0]:.2f}-{m.auc_ci[1]:.2f})"
            monthly.add_row(
                m.period,
                str(m.n),
                f"{m.n_positive}/{m.n_negative}",
                auc,
                "-" if m.sensitivity is None else f"{m.sensitivity:.2f}",
                "-" if m.specificity is None else f"{m.specificity:.2f}",
                "-" if m.flag_rate is None else f"{m.flag_rate:.1%}",
            )
        console.print(monthly)
    console.print("[bold]Monitoring alerts: which fired, and in which month's run[/bold]")
    for month, line in r.alerts:
        console.print(f"- run of {month}: {escape(line)}", soft_wrap=True)
    if not r.alerts:
        console.print("- no alert fired")
    t = r.retraining
    if t is not None:
        from radgate.demo import CHALLENGER, LABEL_BUDGET

        console.print(f"[bold]The retraining loop (after the {t.after} alerts)[/bold]")
        console.print(
            f"- learn queue --strategy {t.strategy} --budget {LABEL_BUDGET}: {t.queued} case(s) requested; a "
            f"(simulated) radiologist labelled {t.labelled} ({t.labelled_positive} positive)",
            soft_wrap=True,
        )
        if t.method_note:
            console.print(f"- {escape(t.method_note)}", soft_wrap=True)
        if t.version:
            held = (
                f"; held-out AUC {t.heldout_auc[0]:.3f} -> {t.heldout_auc[1]:.3f} (optimistic)"
                if t.heldout_auc
                else ""
            )
            console.print(
                f"- models {t.method}: demo-pneumothorax {t.version} from {t.trained_on} labelled cases in "
                f"{t.train_seconds:.0f} s{held}; deployed in shadow as {CHALLENGER} with promotion criteria "
                "locked first",
                soft_wrap=True,
            )
        if t.n_pairs:
            console.print(
                f"- compare on {t.n_pairs} paired cases of the year's rest: AUC champion "
                f"{_num(t.auc_champion)}, challenger {_num(t.auc_challenger)} (paired DeLong p "
                f"{_num(t.delong_p)})",
                soft_wrap=True,
            )
            scanners = Table(title="AUC per scanner, champion vs challenger (paired cases after retraining)")
            for name in ("scanner", "cases", "champion", "challenger"):
                scanners.add_column(name, justify="right")
            for scanner, n, a, b in t.per_scanner:
                scanners.add_row(scanner, str(n), _num(a), _num(b))
            console.print(scanners)
        console.print(f"- decision: {escape(t.decision)}", soft_wrap=True)
    console.print(f"Results (DICOM SR + GSPS) were delivered to [bold]{r.results_dir}[/bold]")
    if r.report_dir is not None:
        console.print(f"The local validation report is in [bold]{r.report_dir}[/bold]")
    console.print(f"The synthetic site (DICOM + labels.csv) is in [bold]{r.site_dir}[/bold]")
    console.print(f"Inspect with: .venv/bin/radgate predictions export --format csv --data-dir {r.data_dir}")
    console.print(f"[yellow]{NOT_CLINICAL}[/yellow]")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
