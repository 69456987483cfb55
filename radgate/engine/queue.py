"""The durable job queue: routing a completed series into jobs, claiming under leases, finishing, retrying.

Every state change is one conditional ``UPDATE ... WHERE`` whose row count says whether it happened, which
is atomic on SQLite and PostgreSQL alike (no ``SELECT ... FOR UPDATE`` needed):

- claim: ``status='queued' AND available_at <= now`` (or a ``running`` job whose lease expired: its worker
  died) becomes ``running`` with this worker as ``lease_owner`` until ``lease_expires_at``;
- finish, retry or fail: only ``WHERE lease_owner = me AND status = 'running'``, so a worker that lost its
  lease (too slow, or presumed dead) cannot overwrite the work of the one that took over.

Together with the unique constraint on ``predictions`` (series, model, version) this gives at most one stored
result, and lease expiry gives at least one: exactly one per series and model version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session

from radgate.db.queries import newest_instances
from radgate.db.schema import Instance, Series
from radgate.engine.tables import Job, RoutingDecisionRow
from radgate.models.registry import utcnow
from radgate.routing.deployment import list_deployments
from radgate.routing.features import FEATURE_KEYWORDS
from radgate.routing.router import decide

__all__ = [
    "JOBS_QUEUED",
    "ClaimedJob",
    "EnqueueHook",
    "claim_jobs",
    "enqueue_for_series",
    "extend_leases",
    "finish_job",
    "reap_expired",
    "release_job",
    "series_features",
    "series_instances",
]

log = logging.getLogger(__name__)

#: Set when a transaction that queued jobs commits: workers in this process wake at once instead of
#: waiting for their next poll (workers in other processes still find the jobs by polling).
JOBS_QUEUED = threading.Event()


def _wake(session: Session) -> None:
    JOBS_QUEUED.set()


def series_instances(session: Session, SeriesInstanceUID: str) -> list[Instance]:
    """The newest revision of every instance of a series, in InstanceNumber order."""
    query = newest_instances(SeriesInstanceUID).order_by(
        Instance.InstanceNumber.is_(None), Instance.InstanceNumber, Instance.id
    )
    return list(session.scalars(query))


def series_features(series: Series, instance: Instance | None) -> dict[str, Any]:
    """The header features routing looks at: the first instance's index values plus the series' own."""
    features: dict[str, Any] = {}
    if instance is not None:
        for keyword in FEATURE_KEYWORDS:
            features[keyword] = getattr(instance, keyword, None)
    features["Modality"] = features.get("Modality") or series.Modality
    features["SeriesDescription"] = series.SeriesDescription
    return features


def enqueue_for_series(session: Session, SeriesInstanceUID: str, max_attempts: int = 3) -> list[int]:
    """Route a completed series to every deployment and queue a job for each match; returns the job ids.

    Call it inside the transaction that marks the series complete, so that completing and queueing are
    one atomic step. Every deployment gets a recorded decision (matched, not applicable with its reasons,
    or off). Calling it again for the same series (say, when it was reopened) re-records the decisions and
    never queues a second job for a series and model version.
    """
    series = session.get(Series, SeriesInstanceUID)
    if series is None:
        raise ValueError(f"Series {SeriesInstanceUID} is not in the index; it must be ingested first.")
    instances = series_instances(session, SeriesInstanceUID)
    features = series_features(series, instances[0] if instances else None)
    now = utcnow()
    job_ids: list[int] = []
    for deployment in list_deployments(session):
        decision = decide(features, deployment)
        job_id: int | None = None
        if decision.matched:
            job = session.scalars(
                select(Job).where(
                    Job.SeriesInstanceUID == SeriesInstanceUID,
                    Job.model_name == deployment.model_name,
                    Job.model_version == deployment.model_version,
                )
            ).one_or_none()
            if job is None:
                job = Job(
                    StudyInstanceUID=series.StudyInstanceUID,
                    SeriesInstanceUID=SeriesInstanceUID,
                    deployment=deployment.name,
                    model_name=deployment.model_name,
                    model_version=deployment.model_version,
                    status="queued",
                    attempts=0,
                    max_attempts=max_attempts,
                    available_at=now,
                    enqueued_at=now,
                    series_completed_at=series.completed_at or now,
                )
                session.add(job)
                session.flush()
                job_ids.append(job.id)
            job_id = job.id
        row = session.scalars(
            select(RoutingDecisionRow).where(
                RoutingDecisionRow.SeriesInstanceUID == SeriesInstanceUID,
                RoutingDecisionRow.deployment == deployment.name,
            )
        ).one_or_none()
        if row is None:
            row = RoutingDecisionRow(SeriesInstanceUID=SeriesInstanceUID, deployment=deployment.name)
            session.add(row)
        row.StudyInstanceUID = series.StudyInstanceUID
        row.model_name = decision.model_name
        row.model_version = decision.model_version
        row.mode = decision.mode
        row.decision = decision.decision
        row.reason = decision.reason
        row.job_id = job_id
        row.decided_at = now
        log.info(
            "series %s / %s: %s (%s)", SeriesInstanceUID, deployment.name, decision.decision, decision.reason
        )
    session.flush()
    if job_ids and not event.contains(session, "after_commit", _wake):
        event.listen(session, "after_commit", _wake)
    return job_ids


@dataclass(frozen=True)
class EnqueueHook:
    """The assembler's ``SeriesCompleteHook``: route and queue each series as it completes.

    Partial series (the ``process_partial`` policy) are routed like complete ones; the assembler has
    already recorded why they are partial.
    """

    max_attempts: int = 3

    def __call__(self, session: Session, SeriesInstanceUID: str, partial: bool) -> None:
        enqueue_for_series(session, SeriesInstanceUID, self.max_attempts)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds a lease on, with the values it needs to run it."""

    id: int
    StudyInstanceUID: str
    SeriesInstanceUID: str
    deployment: str
    model_name: str
    model_version: str
    attempts: int
    max_attempts: int
    enqueued_at: datetime
    series_completed_at: datetime | None
    claimed_at: datetime


def _claimable(now: datetime) -> Any:
    return or_(
        and_(Job.status == "queued", Job.available_at <= now),
        and_(Job.status == "running", Job.lease_expires_at < now, Job.attempts < Job.max_attempts),
    )


def reap_expired(session: Session, now: datetime | None = None) -> int:
    """Fail running jobs whose lease expired on their last allowed attempt (their worker died every time)."""
    now = now or utcnow()
    result = session.execute(
        update(Job)
        .where(Job.status == "running", Job.lease_expires_at < now, Job.attempts >= Job.max_attempts)
        .values(
            status="failed",
            finished_at=now,
            lease_owner=None,
            last_error="the worker running it stopped (lease expired) on its last allowed attempt",
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_jobs(
    session: Session,
    worker: str,
    limit: int,
    lease_s: float,
    now: datetime | None = None,
    max_attempts: int | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` runnable jobs of one model version (so they can share a batch).

    ``max_attempts`` (the engine's setting) replaces the value the job was queued with, so a changed
    setting applies to jobs already in the queue.
    """
    now = now or utcnow()
    candidates = list(
        session.execute(
            select(Job.id, Job.model_name, Job.model_version)
            .where(_claimable(now))
            .order_by(Job.id)
            .limit(limit * 4)
        )
    )
    if not candidates:
        return []
    model = (candidates[0].model_name, candidates[0].model_version)
    ids = [c.id for c in candidates if (c.model_name, c.model_version) == model][:limit]
    expires = now + timedelta(seconds=lease_s)
    claimed: list[int] = []
    for job_id in ids:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now))
            .values(
                **({} if max_attempts is None else {"max_attempts": max_attempts}),
                status="running",
                lease_owner=worker,
                lease_expires_at=expires,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(job_id)
    if not claimed:
        return []
    rows = session.scalars(select(Job).where(Job.id.in_(claimed)).order_by(Job.id)).all()
    return [
        ClaimedJob(
            id=r.id,
            StudyInstanceUID=r.StudyInstanceUID,
            SeriesInstanceUID=r.SeriesInstanceUID,
            deployment=r.deployment,
            model_name=r.model_name,
            model_version=r.model_version,
            attempts=r.attempts,
            max_attempts=r.max_attempts,
            enqueued_at=r.enqueued_at,
            series_completed_at=r.series_completed_at,
            claimed_at=now,
        )
        for r in rows
    ]


def extend_leases(session: Session, worker: str, job_ids: Sequence[int], lease_s: float) -> int:
    """Heartbeat: push the lease of jobs this worker still holds; returns how many it still holds."""
    if not job_ids:
        return 0
    result = session.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)), Job.lease_owner == worker, Job.status == "running")
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def finish_job(
    session: Session, job_id: int, worker: str, status: str = "done", error: str | None = None
) -> bool:
    """Close a job this worker holds (done, failed or cancelled); ``False`` if the lease was lost."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker, Job.status == "running")
        .values(
            status=status, finished_at=utcnow(), lease_owner=None, lease_expires_at=None, last_error=error
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def release_job(
    session: Session, job: ClaimedJob, worker: str, error: str, backoff_s: float, permanent: bool = False
) -> str:
    """After a failure: queue the job again after an exponential backoff, or fail it for good.

    The delay before attempt ``n + 1`` is ``backoff_s * 2 ** (n - 1)``. Returns the new status, or
    ``"lost"`` when the lease had already passed to another worker.
    """
    now = utcnow()
    if permanent or job.attempts >= job.max_attempts:
        status = "failed"
        values: Mapping[str, Any] = {
            "status": "failed",
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_error": error,
        }
    else:
        status = "queued"
        delay = backoff_s * 2 ** (job.attempts - 1)
        values = {
            "status": "queued",
            "available_at": now + timedelta(seconds=delay),
            "lease_owner": None,
            "lease_expires_at": None,
            "last_error": error,
        }
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_owner == worker, Job.status == "running")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return status if result.rowcount == 1 else "lost"  # type: ignore[attr-defined]
