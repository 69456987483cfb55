"""``radgate validate``, ``plan``, ``trial start|evaluate``, ``truth import`` and ``report validation``.

Each command parses its options and calls a service in :mod:`radgate.validation`; ``--json`` prints one
JSON object (no NaN: missing numbers are ``null``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from

if TYPE_CHECKING:
    from radgate.config import Settings
    from radgate.db import Database
    from radgate.validation.cases import CaseSet
    from radgate.validation.report import ReportContext
    from radgate.validation.trial import TrialEvaluation

trial_app = typer.Typer(
    help="Silent trials: register acceptance criteria, evaluate against them.", no_args_is_help=True
)
truth_app = typer.Typer(help="Ground truth (reference labels) in the database.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
app.add_typer(trial_app, name="trial")
app.add_typer(truth_app, name="truth")
app.add_typer(report_app, name="report")



def _error_types() -> tuple[type[Exception], ...]:
    # Imported when an error happens: `radgate validate` on a CSV needs neither SQLAlchemy nor the trials.
    from radgate.errors import RadgateError
    from radgate.stats import StatisticsInputError
    from radgate.validation.cases import CaseTableError
    from radgate.validation.criteria import CriteriaError
    from radgate.validation.trial import TrialError
    from radgate.validation.truth import TruthImportError

    return (
        StatisticsInputError,
        CaseTableError,
        CriteriaError,
        TrialError,
        TruthImportError,
        LookupError,
        RadgateError,
    )

CsvArg = Annotated[Path, typer.Argument(help="CSV file, one case per row, with a header row.")]
ScoreOpt = Annotated[
    str, typer.Option("--score-col", help="Column with the model score (higher = more likely positive).")
]
LabelOpt = Annotated[
    str | None,
    typer.Option(
        "--label-col",
        help="Column with the reference label, 0 or 1. Omitted: labels from `radgate truth import`.",
    ),
]
UidOpt = Annotated[
    str | None,
    typer.Option(
        "--uid-col", help="Column with the case UID (default: StudyInstanceUID, SeriesInstanceUID, uid)."
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Operating threshold: score >= threshold is positive. Default: the deployment's operating point "
        "when known (a report from the database, or an exported predictions CSV), else 0.5; the output says "
        "which.",
    ),
]
PrevalenceOpt = Annotated[
    float | None, typer.Option("--prevalence", help="Site prevalence for PPV/NPV (default: the sample's).")
]
SubgroupOpt = Annotated[list[str] | None, typer.Option("--subgroup", help="Subgroup column (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the services' input errors into a clear message and exit code 1."""
    try:
        yield
    except (ValueError, LookupError) as exc:  # every one of _error_types() is one of these
        if isinstance(exc, _error_types()):
            raise fail(str(exc)) from exc
        raise


@contextmanager
def _maybe_database(settings: Settings, needed: bool) -> Iterator[Database | None]:
    """The database when a command needs it (trial lookups, labels from the ground-truth table), else None."""
    if not needed:
        yield None
        return
    from radgate.db import database_for

    db = database_for(settings)
    try:
        yield db
    finally:
        db.dispose()


def _uid_column(path: Path, uid_col: str | None) -> tuple[str, list[str]]:
    """The UID column of a case table (``uid_col``, else the first of UID_COLUMNS) and its values."""
    from radgate.validation.cases import UID_COLUMNS, CaseTableError

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            col = uid_col or next((c for c in UID_COLUMNS if c in header), None)
            if col is None:
                raise CaseTableError(f"{path.name}: labels from the ground-truth table need a UID column")
            return col, [(row.get(col) or "").strip() for row in reader]
    except OSError as exc:
        raise CaseTableError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _uids_in(path: Path, uid_col: str | None) -> list[str]:
    return _uid_column(path, uid_col)[1]


def _load_cases(
    db: Database | None,
    path: Path,
    score_col: str,
    label_col: str | None,
    uid_col: str | None,
    columns: list[str],
    compare: str | None = None,
) -> CaseSet:
    """Read the cases; without a label column, take each UID's label from the ground-truth table. When no
    case can be analysed, exit with the reason (:func:`_no_cases`)."""
    from radgate.validation.cases import read_cases_csv
    from radgate.validation.truth import reference_labels

    labels = None
    if label_col is None:
        assert db is not None
        labels = reference_labels(db, _uids_in(path, uid_col))
    cases = read_cases_csv(path, score_col, label_col, columns, uid_col, compare, labels_by_uid=labels)
    if cases.flow.analysed == 0:
        raise fail(_no_cases(db, cases, path, label_col, uid_col))
    return cases


def _with_registry(
    context: ReportContext, db: Database, model_name: str, model_version: str | None
) -> tuple[ReportContext, float | None]:
    from radgate.services.validation import report_context_from_registry

    return report_context_from_registry(db, context, model_name, model_version)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _ci(c: Any, spec: str = ".3f") -> str:
    return "n/a" if not c else f"{_fmt(c[0], spec)}–{_fmt(c[1], spec)}"


def _print_json(obj: Mapping[str, Any]) -> None:
    typer.echo(json.dumps(obj, indent=2, allow_nan=False))


def _print_validation(result: Mapping[str, Any]) -> None:
    from rich.table import Table

    flow = result.get("case_flow")
    table = Table(title="Validation", show_header=True)
    table.add_column("Measure")
    table.add_column("Estimate", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("Method")
    table.add_row("Cases", f"{result['n']} ({result['n_positive']}+ / {result['n_negative']}−)", "", "")
    table.add_row("AUC", _fmt(result["auc"]), _ci(result["auc_ci"]), "DeLong")
    c = result["confusion"]
    table.add_row(
        f"Threshold ({result['threshold_source']})",
        f"{result['threshold']:g}",
        "",
        f"TP {c['tp']} FP {c['fp']} TN {c['tn']} FN {c['fn']}",
    )
    table.add_row("Sensitivity", _fmt(result["sensitivity"]), _ci(result["sensitivity_ci"]), "Wilson")
    table.add_row("Specificity", _fmt(result["specificity"]), _ci(result["specificity_ci"]), "Wilson")
    prev = f"prevalence {result['prevalence']:.4g} ({result['prevalence_source']})"
    table.add_row("PPV", _fmt(result["ppv"]), _ci(result["ppv_ci"]), prev)
    table.add_row("NPV", _fmt(result["npv"]), _ci(result["npv_ci"]), result["predictive_ci_method"])
    table.add_row("FP per TP", _fmt(result["fp_per_tp"], ".2f"), "", "at that prevalence")
    console.print(table)
    if flow:
        excluded = ", ".join(f"{k}: {v}" for k, v in flow["excluded"].items()) or "none"
        console.print(
            f"Case flow: received {flow['received']}, analysed {flow['analysed']}; not analysed: {excluded}"
        )
    for column, levels in result["subgroups"].items():
        sub = Table(title=f"Subgroups by {column}")
        for head in ("Level", "n (+/−)", "AUC (95% CI)", "Sensitivity", "Specificity", "Status"):
            sub.add_column(head, justify="left" if head in ("Level", "Status") else "right")
        for level, s in levels.items():
            sub.add_row(
                level or "(missing)",
                f"{s['n']} ({s['n_positive']}/{s['n_negative']})",
                f"{_fmt(s['auc'])} ({_ci(s['auc_ci'])})",
                _fmt(s["sensitivity"]),
                _fmt(s["specificity"]),
                "[yellow]insufficient data[/yellow]" if s["insufficient"] else "ok",
            )
        console.print(sub)
    comp = result.get("comparison")
    if comp:
        console.print(
            f"Paired DeLong vs {comp['column']!r} on {comp['n']} cases: AUC {comp['auc']:.3f} vs "
            f"{comp['auc_other']:.3f}, difference {comp['auc_difference']:+.3f} "
            f"({_ci(comp['difference_ci'])}), z {comp['z']:.2f}, p {comp['p']:.3g}"
        )
    for warning in result["warnings"]:
        console.print(f"[yellow]Note:[/yellow] {warning}")


@app.command()
def validate(
    csv_files: Annotated[
        list[Path],
        typer.Argument(
            help="CSV file, one case per row, with a header row (with --pool: one file per site).",
            metavar="CSV_FILE...",
        ),
    ],
    score_col: Annotated[
        str | None,
        typer.Option(
            "--score-col",
            help="Column with the model score (higher = more likely positive). Required, except with --pool "
            "(default there: score).",
        ),
    ] = None,
    label_col: LabelOpt = None,
    uid_col: UidOpt = None,
    threshold: ThresholdOpt = None,
    prevalence: PrevalenceOpt = None,
    subgroup: SubgroupOpt = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Second score column: paired DeLong test and McNemar.")
    ] = None,
    pool: Annotated[
        bool,
        typer.Option(
            "--pool",
            help="Pool de-identified exports of several sites (the same as `radgate pool`): per-site and "
            "pooled AUC, Se, Sp with CIs; Cochran's Q and I². Labels from --label-col (default: label).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Validate scores against reference labels: AUC (DeLong), Se/Sp (Wilson), PPV/NPV, subgroups."""
    if pool:
        from radgate.cli.learning import pool_command

        if prevalence is not None or subgroup or compare or uid_col:
            raise fail("--pool takes --score-col, --label-col, --threshold and --json only.", 2)
        pool_command(
            csv_files,
            threshold=0.5 if threshold is None else threshold,
            score_col=score_col or "score",
            label_col=label_col or "label",
            data_dir=data_dir,
            config=config,
            as_json=as_json,
        )
        return
    if len(csv_files) != 1:
        raise fail(f"give one CSV file ({len(csv_files)} given); several only with --pool.", 2)
    if score_col is None:
        raise fail("--score-col is required: the column with the model score (e.g. --score-col score).", 2)
    [csv_file] = csv_files
    from radgate.validation.metrics import export_threshold, resolve_threshold, validate_cases

    settings = settings_from(data_dir, config)
    subgroups = subgroup or []
    with _errors(), _maybe_database(settings, label_col is None) as db:
        cases = _load_cases(db, csv_file, score_col, label_col, uid_col, subgroups, compare)
        value, source = resolve_threshold(threshold, export_threshold(csv_file))
        result = validate_cases(cases, value, prevalence, subgroups, compare, threshold_source=source)
    if as_json:
        _print_json(result)
    else:
        _print_validation(result)


def _no_cases(
    db: Database | None, cases: CaseSet, path: Path, label_col: str | None, uid_col: str | None
) -> str:
    """Why no case of ``path`` can be analysed (an empty file, an empty label column, UIDs matching no
    reference label, an empty ground-truth table ...), with the counts and an example UID."""
    from radgate.validation.cases import no_cases_reason

    truth, example, column = None, None, uid_col
    uids: list[str] = []
    if label_col is None and db is not None:
        from radgate.services.validation import truth_overview

        truth, example = truth_overview(db)
        column, uids = _uid_column(path, uid_col)
    return no_cases_reason(
        cases, path.name, label_col=label_col, uid_col=column, file_uids=uids, truth_labels=truth,
        truth_example=example,
    )


@app.command()
def plan(
    prevalence: Annotated[float, typer.Option("--prevalence", help="Site prevalence, e.g. 0.001 for 0.1%.")],
    sensitivity: Annotated[
        float, typer.Option("--sensitivity", help="Model sensitivity at the operating point.")
    ],
    specificity: Annotated[
        float, typer.Option("--specificity", help="Model specificity at the operating point.")
    ],
    volume: Annotated[float, typer.Option("--volume", help="Studies per day.")],
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Expected true positives, false positives and misses per day, and false positives per true positive."""
    from rich.table import Table

    from radgate.validation.plan import deployment_plan

    settings_from(data_dir, config)
    with _errors():
        p = deployment_plan(prevalence, sensitivity, specificity, volume)
    if as_json:
        _print_json(p)
        return
    table = Table(title=f"Deployment plan: {volume:g} studies/day at {prevalence:.3%} prevalence")
    table.add_column("Per day")
    table.add_column("Expected", justify="right")
    for label, key in (
        ("True positives", "tp_per_day"),
        ("False positives", "fp_per_day"),
        ("Missed (false negatives)", "fn_per_day"),
        ("Flags raised", "flags_per_day"),
    ):
        table.add_row(label, f"{p[key]:.2f}")
    table.add_row("False positives per true positive", _fmt(p["fp_per_tp"], ".2f"))
    table.add_row("PPV", _fmt(p["ppv"]))
    table.add_row("NPV", _fmt(p["npv"], ".5f"))
    console.print(table)
    if p["warning"]:
        console.print(f"[yellow]Warning:[/yellow] {p['warning']}")


@trial_app.command("start")
def trial_start(
    criteria: Annotated[
        Path, typer.Option("--criteria", help="Acceptance criteria TOML, written before the trial.")
    ],
    model: Annotated[str, typer.Option("--model", help="Model name.")],
    name: Annotated[str | None, typer.Option("--name", help="Trial name (default MODEL-YYYYMMDD).")] = None,
    model_version: Annotated[str | None, typer.Option("--model-version", help="Model version.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Site (default: the configured site).")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start a silent trial: record the criteria's text, SHA-256 and the start date in the database."""
    from radgate.validation.trial import start_trial

    settings = settings_from(data_dir, config)
    with _errors(), _maybe_database(settings, True) as db:
        assert db is not None
        info = start_trial(db, criteria, model, name, model_version, site or settings.site)
    if as_json:
        _print_json(info.as_dict())
    else:
        console.print(
            f"Trial [bold]{info.name}[/bold] started {info.started_at:%Y-%m-%d %H:%M} for model "
            f"{info.model_name}; criteria sha256 {info.criteria_sha256}"
        )


def _print_evaluation(ev: TrialEvaluation) -> None:
    from rich.table import Table

    v = ev.verdict
    color = {"go live": "green", "extend the trial": "yellow"}.get(v.recommendation, "red")
    if ev.trial:
        console.print(
            f"Trial {ev.trial.name} (started {ev.trial.started_at:%Y-%m-%d}), model {ev.trial.model_name}"
        )
    for flag in ev.flags:
        console.print(f"[red]Flag:[/red] {flag}")
    table = Table(title="Acceptance criteria")
    for head in ("Criterion", "Subgroup", "Outcome", "Observed", "95% CI", "Detail"):
        table.add_column(head)
    for r in v.results:
        style = {"pass": "green", "fail": "red"}.get(r.outcome, "yellow")
        table.add_row(
            r.requirement,
            r.subgroup or "",
            f"[{style}]{r.outcome}{' (decisive)' if r.decisive else ''}[/{style}]",
            _fmt(r.observed),
            _ci(r.ci),
            r.detail,
        )
    console.print(table)
    console.print(f"Recommendation: [bold {color}]{v.recommendation.upper()}[/bold {color}]")
    for reason in v.reasons:
        console.print(f"  - {reason}")


@trial_app.command("evaluate")
def trial_evaluate(
    csv_file: CsvArg,
    score_col: ScoreOpt,
    label_col: LabelOpt = None,
    uid_col: UidOpt = None,
    trial: Annotated[
        str | None, typer.Option("--trial", help="Trial name from `radgate trial start`.")
    ] = None,
    criteria: Annotated[
        Path | None, typer.Option("--criteria", help="Criteria TOML (checked against the trial's record).")
    ] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Judge the trial's cases against its acceptance criteria: pass/fail with CIs, and a recommendation."""
    from radgate.validation.criteria import AcceptanceCriteria
    from radgate.validation.trial import evaluate_cases, evaluate_trial, get_trial

    if trial is None and criteria is None:
        raise fail("give --trial NAME (criteria recorded at start) or --criteria FILE", 2)
    settings = settings_from(data_dir, config)
    from_db = csv_file is None
    with _errors(), _maybe_database(settings, from_db or trial is not None or label_col is None) as db:
        if trial is not None:
            assert db is not None
            recorded = AcceptanceCriteria.from_text(get_trial(db, trial).criteria_text)
            cases = _load_cases(
                db, csv_file, score_col, label_col, uid_col, list(recorded.analysis.subgroups)
            )
            ev = evaluate_trial(db, trial, cases, criteria)
        else:
            assert criteria is not None
            crit = AcceptanceCriteria.load(criteria)
            cases = _load_cases(db, csv_file, score_col, label_col, uid_col, list(crit.analysis.subgroups))
            ev = evaluate_cases(cases, crit)
    if as_json:
        _print_json(ev.as_dict())
    else:
        _print_evaluation(ev)


@truth_app.command("import")
def truth_import(
    csv_file: Annotated[
        Path,
        typer.Argument(help="CSV: StudyInstanceUID and/or SeriesInstanceUID, label (0/1), source, date."),
    ],
    source: Annotated[
        str | None,
        typer.Option("--source", help="Reference standard for rows without a 'source' (e.g. synthetic)."),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Import reference labels (radiologist, biopsy, follow-up ...) into the ground-truth table."""
    from radgate.validation.truth import import_ground_truth

    settings = settings_from(data_dir, config)
    with _errors(), _maybe_database(settings, True) as db:
        assert db is not None
        summary = import_ground_truth(db, csv_file, default_source=source)
    console.print(
        f"Imported {summary.rows} reference label(s) from {csv_file.name}: {summary.inserted} new, "
        f"{summary.updated} updated, {summary.unchanged} unchanged"
    )


@report_app.command("validation")
def report_validation(
    out: Annotated[Path, typer.Option("--out", help="Directory for the HTML, PDF, JSON and FN/FP lists.")],
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Cases CSV (one row per case). Omitted: radgate's predictions of --model-name."
        ),
    ] = None,
    score_col: Annotated[
        str | None, typer.Option("--score-col", help="Score column of the CSV (required with --csv).")
    ] = None,
    label_col: LabelOpt = None,
    uid_col: UidOpt = None,
    threshold: ThresholdOpt = None,
    prevalence: PrevalenceOpt = None,
    subgroup: SubgroupOpt = None,
    metadata_col: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata-col", help="Column checked as a confounder (default: the subgroup columns)."
        ),
    ] = None,
    trial: Annotated[
        str | None, typer.Option("--trial", help="Include this trial's criteria verdict.")
    ] = None,
    criteria: Annotated[
        Path | None, typer.Option("--criteria", help="Include a verdict on these criteria.")
    ] = None,
    model_name: Annotated[str | None, typer.Option("--model-name", help="Model name.")] = None,
    model_version: Annotated[str | None, typer.Option("--model-version", help="Model version.")] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            help="The deployment whose results to report (needed when a model has several).",
        ),
    ] = None,
    region_truth: Annotated[
        Path | None,
        typer.Option(
            "--region-truth",
            help="Labels CSV with SeriesInstanceUID, side and location (radgate synth's labels.csv): "
            "adds the explanation check to a report from the database.",
        ),
    ] = None,
    model_hash: Annotated[str | None, typer.Option("--model-hash", help="Model package SHA-256.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Site (default: the configured site).")] = None,
    intended_use: Annotated[
        str | None, typer.Option("--intended-use", help="Intended use statement.")
    ] = None,
    sampling: Annotated[str | None, typer.Option("--sampling", help="How the cases were sampled.")] = None,
    reference_standard: Annotated[
        str | None, typer.Option("--reference-standard", help="How the reference labels were established.")
    ] = None,
    data_period: Annotated[str | None, typer.Option("--data-period", help="Dates the cases cover.")] = None,
    volume: Annotated[
        float | None, typer.Option("--volume", help="Studies per day, for the daily burden.")
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="The data/model are synthetic: every page says so.")
    ] = False,
    limitation: Annotated[
        list[str] | None, typer.Option("--limitation", help="Extra limitation (repeatable).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the go-live report (HTML + PDF) with ROC, calibration, subgroups, confounders and criteria.

    From a CSV (``--csv``, ``--score-col``), or from radgate's own predictions of ``--model-name`` with the
    reference labels of ``radgate truth import`` (and the radiologists' final reads, which land there too).
    """
    from radgate.models.registry import whoami
    from radgate.services.validation import (
        deployment_threshold,
        explanation_check_from_db,
        record_go_live_subgroups,
        validated_attributes,
    )
    from radgate.validation.criteria import AcceptanceCriteria
    from radgate.validation.from_db import cases_from_database, resolve_deployment
    from radgate.validation.metrics import export_threshold, resolve_threshold
    from radgate.validation.report import ReportContext, build_report
    from radgate.validation.trial import evaluate_cases, evaluate_trial, get_trial

    settings = settings_from(data_dir, config)
    if csv_file is None and model_name is None and deployment is None:
        raise fail(
            "Give --csv FILE --score-col COL, or --deployment NAME (or --model-name NAME) to report on "
            "radgate's predictions.",
            2,
        )
    if csv_file is not None and score_col is None:
        raise fail("--csv needs --score-col (the column holding the model's score).", 2)
    context = ReportContext(
        model_name,
        model_version,
        model_hash,
        site or settings.site,
        intended_use,
        sampling,
        reference_standard,
        data_period,
        volume,
        synthetic,
        tuple(limitation or ()),
    )
    from_db = csv_file is None
    with _errors(), _maybe_database(settings, from_db or trial is not None or label_col is None) as db:
        crit = AcceptanceCriteria.load(criteria) if criteria is not None and trial is None else None
        if trial is not None:
            assert db is not None
            crit = AcceptanceCriteria.from_text(get_trial(db, trial).criteria_text)
        # With criteria, the analysis (threshold, prevalence, subgroups) is the one they fix.
        subgroups = list(crit.analysis.subgroups) if crit is not None else list(subgroup or [])
        columns = list(dict.fromkeys([*subgroups, *(metadata_col or [])]))
        threshold_source = None
        if csv_file is None:
            assert db is not None
            src = resolve_deployment(db, model_name, model_version, deployment)
            go_live_columns = validated_attributes(db, src.deployment)
            columns = list(dict.fromkeys([*columns, *go_live_columns]))
            cases = cases_from_database(
                db, src.model_name, src.model_version, columns, deployment=src.deployment
            )
            context = replace(context, model_name=src.model_name, site=src.site, deployment=src.deployment)
            context, _ = _with_registry(context, db, src.model_name, src.model_version)
            # One rule: --threshold, else the deployment's operating point (and the report says which).
            threshold, threshold_source = resolve_threshold(
                threshold, deployment_threshold(db, src.deployment)
            )
        else:
            assert score_col is not None
            cases = _load_cases(db, csv_file, score_col, label_col, uid_col, columns)
            threshold, threshold_source = resolve_threshold(threshold, export_threshold(csv_file))
        evaluation = None
        if trial is not None:
            assert db is not None
            evaluation = evaluate_trial(db, trial, cases, criteria)
        elif crit is not None:
            evaluation = evaluate_cases(cases, crit)
        explanations = None
        if region_truth is not None:
            if csv_file is not None:
                raise fail("--region-truth needs a report from the database (--deployment), not --csv.", 2)
            assert db is not None
            explanations = explanation_check_from_db(db, settings, src.deployment, region_truth)
        files = build_report(
            cases, out, context, threshold, prevalence, subgroups, metadata_col, evaluation,
            threshold_source=threshold_source, explanations=explanations,
        )
        recorded = []
        if csv_file is None:
            assert db is not None
            recorded = record_go_live_subgroups(
                db,
                src.deployment,
                cases,
                recorded_by=whoami(),
                source=f"radgate report validation --out {out}",
                min_positives=settings.policy.min_positives,
                min_negatives=settings.policy.min_negatives,
            )
    console.print(f"Report written: {files.html} and {files.pdf} (numbers in {files.json.name})")
    for row in recorded:
        console.print(
            f"Validated at site {row.site}: {row.attribute} = {row.value} ({row.positives}+ / "
            f"{row.negatives}-, AUC {row.auc:.3f}); deployment {row.deployment}'s live results for it are "
            "released from now on."
        )
