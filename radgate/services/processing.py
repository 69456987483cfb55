"""Processing without a server: assemble, route, run the models and publish, to completion.

``radgate serve`` runs the stages behind the network edge as background services that poll the database;
``radgate import`` only stores. :func:`process` runs the same stages once each, in the foreground, until
nothing is left to do: the series that ``import`` left ``receiving`` are assembled, completed series are
routed to every deployment (also to one created after they completed), the queued jobs run, released
results become SR + GSPS objects and the outbox sends them. :class:`Pipeline` is the composition of those
stages (assembler with the engine's hook, engine, results worker) that a gateway can share.

:func:`pending_work` counts what is still unfinished, so that commands that read results (``engine run``,
``predictions export``) can say how to finish it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, func, or_, select

from radgate.assembly import Assembler
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Series
from radgate.db.lease import LeaseStatus
from radgate.engine import Engine, EngineSummary, enqueue_for_series, summarise
from radgate.engine.tables import Job, RoutingDecisionRow
from radgate.policy.tables import PublishIntent
from radgate.results.outbox import DeliveryReport, deliver_pending, results_store
from radgate.results.sink import ResultsWorker, all_destinations, publish_pending
from radgate.results.tables import OutboxItem
from radgate.routing.deployment import DeploymentSpec, list_deployments

__all__ = [
    "STAGES",
    "PendingWork",
    "Pipeline",
    "ProcessReport",
    "Progress",
    "pending_work",
    "process",
]

#: The stages :func:`process` reports progress for, in order.
STAGES = ("assemble", "route", "infer", "publish", "send")

#: ``progress(stage, done, total)``: called when a stage starts (done 0) and as it advances.
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class Pipeline:
    """The stages behind the edge, composed once: the assembler (whose hook routes completed series into
    jobs), the engine and the results worker. ``radgate serve`` runs them as background services;
    :func:`process` drives each to completion in the foreground."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        lock: threading.Lock | None = None,
        deployments: Sequence[DeploymentSpec] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.engine = Engine(settings, db, deployments=deployments)
        self.assembler = Assembler(settings, db, [self.engine.hook], lock=lock)
        self.results = ResultsWorker(settings, db)

    @property
    def services(self) -> list[Assembler | Engine | ResultsWorker]:
        return [self.assembler, self.engine, self.results]


@dataclass
class PendingWork:
    """What is not finished yet: series not assembled, jobs and publish intents queued, outbox rows due."""

    receiving: int = 0
    waiting: int = 0  # receiving, with a known count not reached (assembly.incomplete_policy = wait)
    unrouted: int = 0  # completed series with no routing decision for some current deployment
    jobs: int = 0
    intents: int = 0
    outbox: int = 0

    @property
    def total(self) -> int:
        return self.receiving + self.unrouted + self.jobs + self.intents + self.outbox

    def hint(self) -> str | None:
        """One sentence saying what is unfinished and how to finish it; ``None`` when nothing is."""
        parts = []
        if self.receiving:
            parts.append(f"{self.receiving} series not assembled yet")
        if self.unrouted:
            parts.append(f"{self.unrouted} completed series not routed to every deployment")
        if self.jobs:
            parts.append(f"{self.jobs} job(s) queued")
        if self.intents:
            parts.append(f"{self.intents} result(s) not published yet")
        if self.outbox:
            parts.append(f"{self.outbox} outbox row(s) not sent yet")
        if not parts:
            return None
        return (
            f"{'; '.join(parts)}. Run `radgate process` to finish them now "
            "(or keep `radgate serve` running, which does the same in the background)."
        )


def _routable() -> ColumnElement[bool]:
    """Series that the assembler handed (or would hand) to the engine: complete, or partial by policy."""
    return or_(
        Series.status == "complete",
        (Series.status == "incomplete") & Series.note.like("processed partially%"),
    )


def _unrouted(db: Database) -> list[str]:
    """Routable series that lack a routing decision for at least one current deployment."""
    with db.session() as s:
        names = [d.name for d in list_deployments(s)]
        if not names:
            return []
        routed = (
            select(RoutingDecisionRow.SeriesInstanceUID)
            .where(RoutingDecisionRow.deployment.in_(names))
            .group_by(RoutingDecisionRow.SeriesInstanceUID)
            .having(func.count(func.distinct(RoutingDecisionRow.deployment)) == len(names))
        )
        query = (
            select(Series.SeriesInstanceUID)
            .where(_routable(), Series.SeriesInstanceUID.not_in(routed))
            .order_by(Series.SeriesInstanceUID)
        )
        return list(s.scalars(query))


def pending_work(db: Database) -> PendingWork:
    """Count what :func:`process` (or a running server) still has to do."""
    work = PendingWork()
    with db.session() as s:
        work.receiving = int(s.scalar(select(func.count()).where(Series.status == "receiving")) or 0)
        work.waiting = int(
            s.scalar(
                select(func.count()).where(Series.status == "receiving", Series.note.like("waiting:%"))
            )
            or 0
        )
        work.jobs = int(
            s.scalar(select(func.count(Job.id)).where(Job.status.in_(("queued", "running")))) or 0
        )
        work.intents = int(
            s.scalar(
                select(func.count(PublishIntent.id)).where(
                    PublishIntent.status.in_((LeaseStatus.QUEUED.value, LeaseStatus.RUNNING.value))
                )
            )
            or 0
        )
        work.outbox = int(
            s.scalar(
                select(func.count(OutboxItem.id)).where(OutboxItem.status.in_(("pending", "sending")))
            )
            or 0
        )
    work.unrouted = len(_unrouted(db))
    return work


@dataclass
class ProcessReport:
    """What one :func:`process` run did, and what it left (with why)."""

    completed: int = 0
    partial: int = 0
    skipped: int = 0
    waiting: list[str] = field(default_factory=list)
    routed: int = 0
    jobs_run: int = 0
    published: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    deployments: int = 0
    timed_out: bool = False
    summary: EngineSummary = field(default_factory=EngineSummary)
    left: PendingWork = field(default_factory=PendingWork)

    def lines(self) -> list[str]:
        out = [
            f"assembled: {self.completed} series complete, {self.partial} partial, {self.skipped} skipped "
            f"by assembly.incomplete_policy, {len(self.waiting)} waiting for missing instances",
            f"routed: {self.routed} series; jobs run: {self.jobs_run}; results published: {self.published}",
            f"outbox: sent {self.delivery.sent}, to retry {self.delivery.retried}, "
            f"failed {self.delivery.failed}",
        ]
        out += [f"  failed: {line}" for line in self.delivery.failures]
        return out

    def advice(self) -> list[str]:
        """What to do about what is left, one sentence each (empty when everything is done)."""
        out = []
        if self.deployments == 0:
            out.append(
                "No deployment exists, so no model ran: add one (a [[deployments]] table in the config, or "
                "`radgate deployments add NAME --model M --version V`), then run `radgate process` again."
            )
        if self.waiting:
            out.append(
                f"{len(self.waiting)} series wait for instances they announced (e.g. {self.waiting[0]}): "
                "send the rest, or set the count with `radgate expect SERIES N`, or set "
                "assembly.incomplete_policy = \"process_partial\"."
            )
        if self.timed_out:
            out.append("Stopped at --timeout with work left; run `radgate process` again to continue.")
        if self.delivery.retried or self.left.outbox:
            out.append(
                f"{self.left.outbox} outbox row(s) wait for a retry (backoff); `radgate outbox list` shows "
                "why, `radgate outbox send` tries again."
            )
        if self.summary.failed:
            out.append(
                f"{self.summary.failed} job(s) failed; `radgate predictions export` gives each one's reason."
            )
        return out


def _count(db: Database, query: Select[int]) -> int:
    with db.session() as s:
        return int(s.scalar(query) or 0)


def process(
    settings: Settings,
    db: Database,
    *,
    progress: Progress | None = None,
    timeout_s: float = 3600.0,
    finish_receiving: bool = True,
    deployments: Sequence[DeploymentSpec] | None = None,
) -> ProcessReport:
    """Assemble, route, infer, publish and send until nothing is left (or ``timeout_s`` has passed).

    ``finish_receiving``: the import is over, so series still ``receiving`` are assembled now instead of
    after ``assembly.quiet_period_s`` (expected counts and ``assembly.incomplete_policy`` still apply).
    With ``False``, a series that received an instance within the quiet period is left for later (a
    server may still be receiving it). ``deployments``: synced first, as the server does with the
    config's ``[[deployments]]`` (``None`` leaves the database's deployments as they are).
    """
    report_progress = progress or _no_progress
    deadline = time.monotonic() + timeout_s
    pipeline = Pipeline(settings, db, deployments=deployments)
    pipeline.engine.bootstrap()  # bundled models registered, config deployments applied
    report = ProcessReport()
    with db.session() as s:
        report.deployments = len(list_deployments(s))

    # 1. assembly: every series the import left receiving
    receiving = _count(db, select(func.count()).where(Series.status == "receiving"))
    report_progress("assemble", 0, receiving)
    now = utcnow()
    if finish_receiving:
        now += timedelta(seconds=settings.assembly.quiet_period_s)
    assembled = pipeline.assembler.run_once(now=now)
    report.completed, report.partial = len(assembled.completed), len(assembled.partial)
    report.skipped, report.waiting = len(assembled.skipped), list(assembled.waiting)
    report_progress("assemble", receiving - len(assembled.waiting), receiving)

    # 2. routing of completed series that some deployment has not seen (it was added after they completed)
    unrouted = _unrouted(db)
    report_progress("route", 0, len(unrouted))
    for i, uid in enumerate(unrouted, 1):
        with db.session() as s:
            enqueue_for_series(s, uid, pipeline.engine.options.max_attempts)
        report_progress("route", i, len(unrouted))
    report.routed = len(assembled.completed) + len(assembled.partial) + len(unrouted)

    # 3. inference: every queued job (retries after a backoff included)
    active = select(func.count(Job.id)).where(Job.status.in_(("queued", "running")))
    total = _count(db, active)
    report_progress("infer", 0, total)
    while time.monotonic() < deadline:
        done = pipeline.engine.run_once()
        report.jobs_run += done
        report_progress("infer", min(report.jobs_run, total), total)
        if done == 0:
            if not _count(db, active):
                break
            time.sleep(pipeline.engine.options.poll_interval_s)  # a job waits out its backoff
    else:
        report.timed_out = True

    # 4. publishing: released results become SR + GSPS in the outbox
    open_intents = select(func.count(PublishIntent.id)).where(
        PublishIntent.status.in_((LeaseStatus.QUEUED.value, LeaseStatus.RUNNING.value))
    )
    total = _count(db, open_intents)
    report_progress("publish", 0, total)
    while time.monotonic() < deadline:
        before = _count(db, open_intents)
        if not before:
            break
        report.published += publish_pending(db, pipeline.results.publisher, worker="process")
        after = _count(db, open_intents)
        report_progress("publish", total - after, total)
        if after == before:  # only intents waiting out a backoff are left: the server retries them
            break
    else:
        report.timed_out = True

    # 5. delivery: what is due now (a failed send is retried with backoff by `outbox send` or the server)
    due = select(func.count(OutboxItem.id)).where(
        OutboxItem.status == "pending", OutboxItem.next_attempt_at <= utcnow()
    )
    total = _count(db, due)
    report_progress("send", 0, total)
    if total:
        report.delivery = deliver_pending(
            db,
            all_destinations(settings, db),
            utcnow(),
            results_dir=results_store(settings.data_dir),
            backoff_s=settings.results.outbox_backoff_s,
            batch_size=max(total, 1),
        )
    report_progress("send", total, total)

    with db.session() as s:
        report.summary = summarise(s)
    report.left = pending_work(db)
    return report
