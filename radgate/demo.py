"""The demo: a synthetic site sent through a real gateway, end to end, on one machine with no services.

``radgate demo`` (``make demo``) does what a site does on its first day, with everything synthetic:

1. generates a synthetic site (phantom chest radiographs from several vendors, ``labels.csv`` ground truth);
2. starts a gateway on SQLite with the bundled demo model deployed live;
3. sends every image to it by DICOM C-STORE, like a modality;
4. waits for assembly, routing, inference and delivery of the SR + GSPS to the destination;
5. reports what happened: received, not applicable (with reasons), flagged, delivered, and - because the
   site is synthetic and its truth is known - the model's AUC on this site with its DeLong CI.

The demo model is trained on synthetic phantoms of one vendor and has no clinical validity.
"""

from __future__ import annotations

import csv
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
from radgate.results.send import CStoreDestination
from radgate.results.tables import OutboxItem
from radgate.stats import delong
from radgate.synth import builtin_scenario, generate_site

__all__ = ["DEMO_MARKER", "DemoReport", "run_demo"]

DEMO_MARKER = ".radgate-demo"
NOT_CLINICAL = "Synthetic demo model trained on phantoms - not for clinical use."


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
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None
    auc_n: tuple[int, int] | None = None
    by_profile: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: float = 0.0


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
        {"name": "demo-ptx-live", "model": "demo-pneumothorax", "version": "1.0.0", "mode": "live"}
    ]
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
) -> DemoReport:
    """Run the whole demo in ``data_dir`` (rebuilt from scratch); returns the report to print."""
    start = time.monotonic()
    if not any((path / "manifest.toml").is_file() for path in BUNDLED_MODELS):
        raise FileNotFoundError("The bundled demo model package is missing from radgate/data/models.")
    _prepare_dir(data_dir)
    settings = demo_settings(data_dir)
    site_dir = data_dir / "site"
    report = DemoReport(data_dir, site_dir, data_dir / "pacs-folder")

    step("Generating the synthetic site")
    base = builtin_scenario("demo-site")
    per_month = max(1, -(-studies // 3))
    scenario = replace(base, months=3, studies_per_month=(per_month,) * 3, prevalence=(0.3,) * 3)
    summary = generate_site(site_dir, scenario, seed, progress=lambda d, t: progress("synth", d, t))
    report.images, report.studies = summary.images, summary.studies

    step("Starting the gateway (SQLite, demo model deployed live)")
    with Gateway(settings) as gateway:
        step(f"Sending {report.images} images by C-STORE to {settings.server.ae_title}:{gateway.dicom.port}")
        files = sorted((site_dir / "dicom").rglob("*.dcm"))
        sender = CStoreDestination(settings.server.ae_title, "127.0.0.1", gateway.dicom.port, "DEMO-MODALITY")
        for i in range(0, len(files), 25):
            outcomes = sender.send(files[i : i + 25])
            report.stored += sum(1 for o in outcomes if o.ok)
            report.rejected += sum(1 for o in outcomes if not o.ok)
            progress("send", min(i + 25, len(files)), len(files))

        step("Waiting for assembly, routing, inference and delivery")
        _wait_until_done(gateway, timeout_s)
        _collect(gateway, report)
    _score_against_truth(settings, site_dir, report)
    report.seconds = time.monotonic() - start
    return report


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
        if not receiving and not active and not outbox:
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
        for d in s.scalars(select(RoutingDecisionRow)).all():
            if d.decision == "matched":
                report.matched += 1
            else:
                report.not_applicable[d.reason or "not applicable"] += 1
        predictions = s.scalars(select(Prediction)).all()
        report.predictions = len(predictions)
        report.flagged = sum(1 for p in predictions if p.flag)
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
                for p in s.scalars(select(Prediction))
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
