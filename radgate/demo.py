"""The demo: a synthetic site sent through a real gateway, end to end, on one machine with no services.

``radgate demo`` (``make demo``) does what a site does in its first months, with everything synthetic, and
goes live only through the policy stage's gate:

1. generates a synthetic site: a year of phantom chest radiographs from several vendors (the ``demo-site``
   scenario: a new Agfa DR room takes over much of the work from month 8), ``labels.csv`` ground truth;
2. starts a gateway on SQLite with the bundled demo model deployed **silent**, and sends the first three
   months by DICOM C-STORE, like the modalities would: everything is scored, nothing is shown or sent;
3. imports the site's ground truth and runs the **local validation** (the go-live report from the
   database), which records the subgroups the site validated with enough cases (the model card validates
   only SIEMENS; this site has none);
4. runs the **go-live gate** (``radgate readiness``) and, since a three-month synthetic site cannot pass
   every check, goes **live with an override** whose reason is recorded with who and when;
5. sends the live months: results for the validated subgroups are released (SR + GSPS delivered), the
   others are withheld with their reason;
6. **monitors** the deployment month by month (:func:`radgate.monitoring.run_monitoring` with ``until`` the
   month's last day), with the ground truth arriving ``TRUTH_LAG_DAYS`` after each study (its
   ``reference_date``), so each run sees only the labels that had arrived; the alerts each run opened are
   kept with the month of the run;
7. after the ``RETRAIN_AFTER`` month's run (the Agfa room has arrived and the alerts have fired), the
   **retraining loop**: ``learn queue`` picks ``LABEL_BUDGET`` unlabelled cases by uncertainty, a simulated
   radiologist labels them from the synthetic truth (``truth import``, source ``radiologist``), ``models
   finetune`` fine-tunes the demo model on every labelled case of the site (the ``train`` extra; without
   it, ``models recalibrate`` instead, which cannot change an AUC), the new version is deployed in
   **shadow** beside the champion with promotion criteria locked before it scores anything, the rest of
   the year is scored by both, and at the year's end ``compare`` and ``deployments promote`` decide (or
   refuse, with the failed criteria);
8. reports all of it, with the model's AUC on this site and its DeLong CI, which alerts fired when, and the
   AUC on the new scanner before and after.

The demo model is trained on synthetic phantoms of one vendor and has no clinical validity.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select

from radgate.config import Settings, load_settings
from radgate.db import Series, database_for
from radgate.engine import Job, Prediction, RoutingDecisionRow
from radgate.gateway import Gateway
from radgate.models.registry import BUNDLED_MODELS
from radgate.monitoring.alerts import alert_lines
from radgate.monitoring.metrics import GroupMetrics
from radgate.monitoring.service import run_monitoring
from radgate.policy.readiness import Readiness
from radgate.policy.tables import PublishIntent
from radgate.results.send import CStoreDestination
from radgate.results.tables import OutboxItem
from radgate.services.deployments import deployment_readiness, set_deployment_mode
from radgate.services.validation import (
    deployment_threshold,
    explanation_check_from_db,
    record_go_live_subgroups,
    validated_attributes,
)
from radgate.stats import delong
from radgate.synth import builtin_scenario, generate_site
from radgate.validation.from_db import cases_from_database
from radgate.validation.report import ReportContext, build_report
from radgate.validation.truth import import_ground_truth

__all__ = ["DEMO_MARKER", "DemoReport", "run_demo"]

DEMO_MARKER = ".radgate-demo"
NOT_CLINICAL = "Synthetic demo model trained on phantoms - not for clinical use."
DEPLOYMENT = "demo-ptx"
#: The demo's local-validation minimum per subgroup level (radgate's default is 100 positives and 100
#: negatives; a demo site of a few hundred images cannot reach it, and the summary says so).
DEMO_MIN_CASES = 10
#: Months of the demo year sent silent before go-live.
SILENT_MONTHS = 3
#: Days from a study to its ground truth (the ``date`` column of the truth import; monitoring's ``until``
#: sees a label only from then on).
TRUTH_LAG_DAYS = 30
#: The retraining loop runs after this month's monitoring (the Agfa room arrives in month 8).
RETRAIN_AFTER = "2025-08"
LABEL_BUDGET = 40
CHALLENGER = "demo-ptx-site"
CHALLENGER_VERSION = "1.0.0-site.1"
#: Locked before the challenger scores anything (radgate.learning.promotion).
PROMOTION_CRITERIA = """[promotion]
min_pairs = 40
min_positives = 10
min_negatives = 10
delta_auc_min = 0.0
delta_auc_ci_lower_min = -0.05
sensitivity_drop_max = 0.05
scanner_delta_auc_min = -0.05
"""
OVERRIDE = (
    "demo on a synthetic site: three months of history cannot pass every check; "
    "results outside the validated subgroups stay withheld"
)


@dataclass
class DemoReport:
    data_dir: Path
    site_dir: Path
    results_dir: Path
    images: int = 0
    studies: int = 0
    stored: int = 0
    rejected: int = 0
    series: int = 0
    matched: int = 0
    not_applicable: Counter[str] = field(default_factory=Counter)
    predictions: int = 0
    flagged: int = 0
    failed_jobs: int = 0
    delivered: int = 0
    silent_predictions: int = 0
    validated: list[str] = field(default_factory=list)
    readiness: Readiness | None = None
    live_images: int = 0
    released: int = 0
    withheld: int = 0
    withheld_reasons: Counter[str] = field(default_factory=Counter)
    report_dir: Path | None = None
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None
    auc_n: tuple[int, int] | None = None
    by_profile: dict[str, tuple[int, int]] = field(default_factory=dict)
    months: list[str] = field(default_factory=list)
    #: (month of the monitoring run, one line per alert it opened: rule, scope, period, summary)
    alerts: list[tuple[str, str]] = field(default_factory=list)
    #: the champion's months as the last monitoring run saw them (all labels arrived by then)
    monthly: list[GroupMetrics] = field(default_factory=list)
    monitoring_seconds: float = 0.0
    retraining: RetrainingStep | None = None
    seconds: float = 0.0


@dataclass
class RetrainingStep:
    """The retraining loop of the demo: what was queued, labelled, trained, compared and decided."""

    after: str  # the month whose alerts started it
    queued: int = 0
    strategy: str = "uncertainty"
    labelled: int = 0
    labelled_positive: int = 0
    method: str = ""  # finetune | recalibrate
    method_note: str = ""
    version: str = ""
    trained_on: int = 0
    heldout_auc: tuple[float, float] | None = None
    train_seconds: float = 0.0
    n_pairs: int = 0
    auc_champion: float | None = None
    auc_challenger: float | None = None
    delong_p: float | None = None
    #: per scanner: (scanner, cases, champion AUC, challenger AUC), on the paired cases
    per_scanner: list[tuple[str, int, float | None, float | None]] = field(default_factory=list)
    promoted: bool = False
    decision: str = ""


def demo_settings(data_dir: Path) -> Settings:
    settings = load_settings(
        data_dir=data_dir,
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        assembly__quiet_period_s=1.0,
        assembly__poll_interval_s=0.2,
        results__folder_destination=str(data_dir / "pacs-folder"),
    )
    settings.site = "synthetic-general-hospital"
    settings.deployments = [
        {"name": DEPLOYMENT, "model": "demo-pneumothorax", "version": "1.0.0", "mode": "silent"}
    ]
    settings.policy.min_positives = settings.policy.min_negatives = DEMO_MIN_CASES
    return settings


def _prepare_dir(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            raise FileExistsError(
                f"{data_dir} exists and is not a radgate demo directory; choose an empty folder for the demo."
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("Created by `radgate demo`; removed and rebuilt by the next run.\n")


def run_demo(
    data_dir: Path,
    studies: int = 40,
    seed: int = 2026,
    step: Callable[[str], None] = lambda _msg: None,
    progress: Callable[[str, int, int], None] = lambda _task, _done, _total: None,
    timeout_s: float = 600.0,
    retrain: bool = True,
) -> DemoReport:
    """Run the whole demo in ``data_dir`` (rebuilt from scratch); returns the report to print."""
    start = time.monotonic()
    if not any((path / "manifest.toml").is_file() for path in BUNDLED_MODELS):
        raise FileNotFoundError("The bundled demo model package is missing from radgate/data/models.")
    _prepare_dir(data_dir)
    settings = demo_settings(data_dir)
    database_for(settings, migrate=True).dispose()  # the demo creates its own data directory
    site_dir = data_dir / "site"
    report = DemoReport(data_dir, site_dir, data_dir / "pacs-folder")

    step("Generating the synthetic site (a year; a new Agfa DR room from month 8)")
    base = builtin_scenario("demo-site")
    per_month = max(1, -(-studies // SILENT_MONTHS))
    scenario = replace(
        base, studies_per_month=(per_month,) * base.months, prevalence=(0.3,) * base.months
    )
    summary = generate_site(site_dir, scenario, seed, progress=lambda d, t: progress("synth", d, t))
    report.images, report.studies = summary.images, summary.studies
    months = sorted(p.name for p in (site_dir / "dicom").iterdir() if p.is_dir())
    report.months = months
    files = {m: sorted((site_dir / "dicom" / m).rglob("*.dcm")) for m in months}
    silent_files = [f for m in months[:SILENT_MONTHS] for f in files[m]]
    truth = _truth_rows(site_dir)

    step(f"Starting the gateway (SQLite, demo model deployed silent as {DEPLOYMENT})")
    with Gateway(settings) as gateway:
        sender = CStoreDestination(settings.server.ae_title, "127.0.0.1", gateway.dicom.port, "DEMO-MODALITY")
        step(f"Silent phase: months {months[0]} to {months[SILENT_MONTHS - 1]} ({len(silent_files)} images) "
             "by C-STORE")
        _send(sender, silent_files, report, progress, "send")
        _wait_until_done(gateway, timeout_s)
        with gateway.db.session() as s:
            report.silent_predictions = s.scalar(select(func.count(Prediction.id))) or 0

        step("Local validation: the site's ground truth against the silent results")
        imported: set[str] = set()
        _import_truth(gateway, data_dir, truth, imported, lambda r: r.month in months[:SILENT_MONTHS])
        columns = validated_attributes(gateway.db, DEPLOYMENT)
        cases = cases_from_database(gateway.db, columns=columns, deployment=DEPLOYMENT)
        report.report_dir = data_dir / "go-live-report"
        build_report(
            cases,
            report.report_dir,
            ReportContext(model_name="demo-pneumothorax", model_version="1.0.0", site=settings.site,
                          synthetic=True, deployment=DEPLOYMENT, reference_standard="synthetic truth"),
            subgroups=columns,
            threshold=deployment_threshold(gateway.db, DEPLOYMENT)[0],
            threshold_source=deployment_threshold(gateway.db, DEPLOYMENT)[1],
            explanations=explanation_check_from_db(gateway.db, settings, DEPLOYMENT, site_dir / "labels.csv"),
        )
        recorded = record_go_live_subgroups(
            gateway.db, DEPLOYMENT, cases, recorded_by="radgate-demo", source=str(report.report_dir),
            min_positives=settings.policy.min_positives, min_negatives=settings.policy.min_negatives,
        )
        report.validated = [f"{r.attribute} = {r.value} ({r.positives}+ / {r.negatives}-)" for r in recorded]

        step("The go-live gate (radgate readiness), then live with a recorded override")
        report.readiness = deployment_readiness(gateway.db, settings, DEPLOYMENT)
        set_deployment_mode(gateway.db, settings, DEPLOYMENT, "live", by="radgate-demo", override=OVERRIDE)

        live = months[SILENT_MONTHS:]
        first, rest = [m for m in live if m <= RETRAIN_AFTER], [m for m in live if m > RETRAIN_AFTER]
        report.live_images = sum(len(files[m]) for m in live)
        started = 0.0
        for part in (first, rest):
            if not part:
                continue
            part_files = [f for m in part for f in files[m]]
            step(f"Live phase: sending months {part[0]} to {part[-1]} ({len(part_files)} images)")
            _send(sender, part_files, report, progress, "send-live")
            _wait_until_done(gateway, timeout_s)
            step(f"Monitoring month by month (ground truth arrives {TRUTH_LAG_DAYS} days after each study)")
            started = time.monotonic()
            runs = months[: months.index(part[-1]) + 1] if part is first else part
            for month in runs:
                end = _month_end(month)
                _import_truth(gateway, data_dir, truth, imported, _arrived_by(end))
                run = run_monitoring(
                    gateway.db, settings, until=end, now=dt.datetime.combine(end, dt.time(23, 0), dt.UTC)
                )
                mine = [a for a in run.opened if a.deployment == DEPLOYMENT]
                report.alerts += [(month, line) for line in alert_lines(mine)]
                for d in run.summary.deployments:
                    if d.deployment == DEPLOYMENT:
                        report.monthly = d.periods
                progress("monitor", months.index(month) + 1, len(months))
            report.monitoring_seconds += time.monotonic() - started
            if part is first and retrain and rest:
                report.retraining = _retrain(gateway, settings, data_dir, truth, imported, step)
        _collect(gateway, report)
        if report.retraining is not None and report.retraining.version:
            step("Year end: all ground truth in; compare the challenger with the champion; promote or not")
            _import_truth(gateway, data_dir, truth, imported, lambda _r: True)
            _decide(gateway, settings, report.retraining)
    _score_against_truth(settings, site_dir, report)
    report.seconds = time.monotonic() - start
    return report


@dataclass(frozen=True)
class _Truth:
    study: str
    series: str
    label: int
    month: str
    available: dt.date  # the study date + TRUTH_LAG_DAYS: when the reference label arrives


def _truth_rows(site_dir: Path) -> list[_Truth]:
    """One reference label per series from the site's per-image ``labels.csv`` (positive when any image
    shows a pneumothorax), dated ``TRUTH_LAG_DAYS`` after the study."""
    labels: dict[tuple[str, str], tuple[int, str, dt.date]] = {}
    with (site_dir / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["StudyInstanceUID"], row["SeriesInstanceUID"])
            previous = labels.get(key, (0, "", dt.date.min))[0]
            study_date = dt.date.fromisoformat(row["study_date"])
            labels[key] = (max(previous, int(row["label"])), row["month"], study_date)
    return [
        _Truth(study, series, label, month, day + dt.timedelta(days=TRUTH_LAG_DAYS))
        for (study, series), (label, month, day) in labels.items()
    ]


def _import_truth(
    gateway: Gateway, data_dir: Path, rows: list[_Truth], imported: set[str], which: Callable[[_Truth], bool]
) -> int:
    """``radgate truth import`` of the rows ``which`` selects that were not imported yet (with their date)."""
    chosen = [r for r in rows if r.series not in imported and which(r)]
    if not chosen:
        return 0
    out = data_dir / "ground-truth" / f"truth-{len(imported):06d}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["StudyInstanceUID", "SeriesInstanceUID", "label", "date"])
        for r in chosen:
            writer.writerow([r.study, r.series, r.label, r.available.isoformat()])
    import_ground_truth(gateway.db, out, default_source="synthetic")
    imported.update(r.series for r in chosen)
    return len(chosen)


def _retrain(
    gateway: Gateway,
    settings: Settings,
    data_dir: Path,
    truth: list[_Truth],
    imported: set[str],
    step: Callable[[str], None],
) -> RetrainingStep:
    """Queue -> label -> fine-tune (or recalibrate) -> deploy in shadow with criteria locked."""
    from radgate.errors import RadgateError
    from radgate.learning.promotion import lock_criteria
    from radgate.learning.queue import queue_cases
    from radgate.routing import DeploymentSpec, parse_deployments, sync_deployments

    r = RetrainingStep(after=RETRAIN_AFTER)
    db = gateway.db
    step(f"Retraining loop: learn queue --budget {LABEL_BUDGET} --strategy {r.strategy}")
    _, picked = queue_cases(db, DEPLOYMENT, LABEL_BUDGET, r.strategy, by="radgate-demo", seed=0)
    r.queued = len(picked)
    by_series = {t.series: t for t in truth}
    answered = [by_series[c.SeriesInstanceUID] for c in picked if c.SeriesInstanceUID in by_series]
    out = data_dir / "ground-truth" / "label-requests-answered.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    labelled_on = _month_end(RETRAIN_AFTER)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["StudyInstanceUID", "SeriesInstanceUID", "label", "source", "date"])
        for t in answered:
            writer.writerow([t.study, t.series, t.label, "radiologist", labelled_on.isoformat()])
    import_ground_truth(db, out)
    imported.update(t.series for t in answered)
    r.labelled, r.labelled_positive = len(answered), sum(t.label for t in answered)
    step(f"A (simulated) radiologist labelled {r.labelled} requested cases; fine-tuning on the site's labels")
    started = time.monotonic()
    try:
        from radgate.learning.finetune import finetune_model

        tuned = finetune_model(
            db, settings, "demo-pneumothorax", "1.0.0", settings.site, by="radgate-demo",
            new_version=CHALLENGER_VERSION, epochs=8, seed=0,
        )
        r.method, r.version, r.trained_on = "finetune", tuned.version, tuned.n
        r.heldout_auc = (tuned.auc_before, tuned.auc_after)
    except RadgateError as exc:  # no train extra (or too few labels): recalibrate instead
        from radgate.learning.recalibrate import recalibrate_model

        r.method_note = f"fine-tuning not possible ({exc}); recalibrated instead, which keeps every AUC"
        try:
            cal = recalibrate_model(
                db, settings, "demo-pneumothorax", "1.0.0", "platt", settings.site, by="radgate-demo",
                new_version=CHALLENGER_VERSION,
            )
        except RadgateError as exc2:
            r.decision = f"no challenger: {exc2}"
            return r
        r.method, r.version, r.trained_on = "recalibrate", cal.version, cal.n
    r.train_seconds = time.monotonic() - started
    specs = parse_deployments(settings.deployments, settings.site)
    with db.session() as s:
        sync_deployments(
            s, [*specs, DeploymentSpec(CHALLENGER, "demo-pneumothorax", r.version, site=settings.site,
                                       mode="shadow")],
            changed_by="radgate-demo",
        )
    criteria = data_dir / "promotion-criteria.toml"
    criteria.write_text(PROMOTION_CRITERIA)
    lock_criteria(db, CHALLENGER, DEPLOYMENT, criteria, by="radgate-demo")
    step(f"Challenger {CHALLENGER} ({r.version}) deployed in shadow; promotion criteria locked")
    return r


def _decide(gateway: Gateway, settings: Settings, r: RetrainingStep) -> None:
    from radgate.errors import RadgateError
    from radgate.learning.compare import compare_deployments
    from radgate.learning.promotion import promote

    try:
        values = compare_deployments(gateway.db, DEPLOYMENT, CHALLENGER).values
    except RadgateError as exc:
        r.decision = f"not compared: {exc}"
        return
    r.n_pairs = int(values["n_pairs"])
    r.auc_champion, r.auc_challenger = values["auc_champion"], values["auc_challenger"]
    r.delong_p = values["delong_p"]
    r.per_scanner = [
        (row["level"], int(row["n"]), row["auc_champion"], row["auc_challenger"])
        for row in values["per_scanner"]
    ]
    try:
        promotion = promote(
            gateway.db, settings, CHALLENGER, by="radgate-demo",
            override="demo on a synthetic site: the challenger's go-live checks are overridden as the "
            "champion's were; the locked promotion criteria are not",
        )
    except RadgateError as exc:
        r.decision = f"not promoted: {exc}"
        return
    r.promoted = promotion.passed
    r.decision = f"promoted (change record {promotion.record_id}); {DEPLOYMENT} now shadow"


def _arrived_by(day: dt.date) -> Callable[[_Truth], bool]:
    return lambda r: r.available <= day


def _month_end(month: str) -> dt.date:
    year, mon = (int(x) for x in month.split("-"))
    first_next = dt.date(year + mon // 12, mon % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _send(
    sender: CStoreDestination,
    files: list[Path],
    report: DemoReport,
    progress: Callable[[str, int, int], None],
    task: str,
) -> None:
    for i in range(0, len(files), 25):
        outcomes = sender.send(files[i : i + 25])
        report.stored += sum(1 for o in outcomes if o.ok)
        report.rejected += sum(1 for o in outcomes if not o.ok)
        progress(task, min(i + 25, len(files)), len(files))


def _wait_until_done(gateway: Gateway, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        with gateway.db.session() as s:
            receiving = s.scalar(
                select(func.count(Series.SeriesInstanceUID)).where(Series.status == "receiving")
            )
            active = s.scalar(select(func.count(Job.id)).where(Job.status.in_(("queued", "running"))))
            outbox = s.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == "pending"))
            intents = s.scalar(
                select(func.count(PublishIntent.id)).where(PublishIntent.status.in_(("queued", "running")))
            )
        if not receiving and not active and not outbox and not intents:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 2.0:
                return
        else:
            quiet_since = None
        time.sleep(0.3)
    raise TimeoutError(f"The demo pipeline did not finish within {timeout_s:.0f} s.")


def _collect(gateway: Gateway, report: DemoReport) -> None:
    with gateway.db.session() as s:
        report.series = s.scalar(select(func.count(Series.SeriesInstanceUID))) or 0
        # the champion's (a challenger in shadow routes and scores the same series again)
        for d in s.scalars(select(RoutingDecisionRow).where(RoutingDecisionRow.deployment == DEPLOYMENT)):
            if d.decision == "matched":
                report.matched += 1
            else:
                report.not_applicable[d.reason or "not applicable"] += 1
        predictions = s.scalars(select(Prediction).where(Prediction.deployment == DEPLOYMENT)).all()
        report.predictions = len(predictions)
        report.flagged = sum(1 for p in predictions if p.flag)
        for p in predictions:
            if p.policy == "released":
                report.released += 1
            elif p.policy == "withheld":
                report.withheld += 1
                report.withheld_reasons[p.policy_reason] += 1
        report.failed_jobs = s.scalar(select(func.count(Job.id)).where(Job.status == "failed")) or 0
        report.delivered = s.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == "sent")) or 0


def _score_against_truth(settings: Settings, site_dir: Path, report: DemoReport) -> None:
    """AUC of the stored predictions against the synthetic site's labels (a series is positive when any
    of its images shows a pneumothorax)."""
    truth: dict[str, tuple[int, str]] = {}
    with (site_dir / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            label = max(int(row["label"]), truth.get(row["SeriesInstanceUID"], (0, ""))[0])
            truth[row["SeriesInstanceUID"]] = (label, row["profile"])
    db = database_for(settings)
    try:
        with db.session() as s:
            scored = [
                (p.score, *truth[p.SeriesInstanceUID])
                for p in s.scalars(select(Prediction).where(Prediction.deployment == DEPLOYMENT))
                if p.SeriesInstanceUID in truth
            ]
    finally:
        db.dispose()
    labels = [label for _, label, _ in scored]
    if sum(labels) >= 2 and len(labels) - sum(labels) >= 2:
        result = delong(labels, [score for score, _, _ in scored])
        report.auc, report.auc_ci = float(result.auc), (float(result.ci[0]), float(result.ci[1]))
        report.auc_n = (int(result.n_positive), int(result.n_negative))
    counts: dict[str, list[int]] = {}
    for _, label, profile in scored:
        c = counts.setdefault(profile, [0, 0])
        c[0 if label else 1] += 1
    report.by_profile = {k: (v[0], v[1]) for k, v in sorted(counts.items())}
