"""The durable outbox: result objects written once, delivered to every destination until sent or given up.

- :func:`write_instance` stores a result object as a Part-10 file in the results store
  (``DATA_DIR/results/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``), atomically.
- :func:`enqueue` adds one :class:`~radgate.results.tables.OutboxItem` per (object, destination);
  idempotent.
- :func:`deliver_pending` is what a worker loop calls: it claims the rows that are due, sends them per
  destination in one batch (one association, one STOW-RS request), and records each outcome. A transient
  failure is retried after ``backoff_s * 2 ** (attempts - 1)`` seconds (capped at ``max_backoff_s``),
  exponential backoff as in RFC 6298 5.5 and the AWS Architecture Blog's "Exponential Backoff and Jitter";
  a permanent failure, or ``max_attempts`` transient ones, ends as ``failed`` with the reason.
- Crash safety: a claimed row holds a lease (``sending``, by ``lease_owner`` until ``lease_until``); if
  the process dies while sending, the lease runs out and the row is sent again. That resend carries the
  same file, hence the same SOP Instance UID, so the peer ends up with one instance, not two. Only the
  worker holding the lease records the outcome, so a worker whose lease ran out cannot overwrite the
  one that took over.
- The lease, retry, backoff and give-up rules are :class:`radgate.db.lease.LeasedQueue`'s, the primitive
  under the engine's jobs and the publish intents (:data:`OUTBOX`), in the outbox's words
  (:data:`radgate.results.tables.OUTBOX_LEASE`).

Time is a parameter (``now``) everywhere, so that tests drive the clock and the backoff can be checked.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.db import Database
from radgate.db.lease import LeasedQueue, LeaseStatus
from radgate.results.send import Destination, SendOutcome
from radgate.results.tables import OUTBOX_LEASE, OutboxItem

__all__ = [
    "OUTBOX",
    "DeliveryReport",
    "StoredObject",
    "backoff_delay",
    "deliver_pending",
    "enqueue",
    "list_outbox",
    "results_store",
    "retry",
    "write_instance",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 5.0
DEFAULT_MAX_BACKOFF_S = 3600.0
DEFAULT_LEASE_S = 300.0

#: The lease operations on the outbox (the same primitive as the engine's jobs and the publish intents).
OUTBOX = LeasedQueue(OutboxItem, OUTBOX_LEASE)


@dataclass(frozen=True)
class StoredObject:
    """A result object in the results store: its identity, its kind and its path relative to the store."""

    kind: str  # SR | PR | SC
    SOPInstanceUID: str
    SOPClassUID: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    path: str


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` call did: counts, and why rows ended ``failed``."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.failed


def results_store(data_dir: Path) -> Path:
    """The results store of a data directory: ``DATA_DIR/results``."""
    return Path(data_dir) / "results"


def backoff_delay(attempts: int, backoff_s: float, max_backoff_s: float) -> timedelta:
    """Delay before the next try after ``attempts`` failed tries: ``backoff_s * 2**(attempts-1)``, capped."""
    if attempts < 1:
        raise ValueError(f"attempts {attempts} must be >= 1 when computing a backoff.")
    return timedelta(seconds=min(backoff_s * 2 ** (attempts - 1), max_backoff_s))


def write_instance(ds: Dataset, results_dir: Path, kind: str) -> StoredObject:
    """Write ``ds`` as a Part-10 file into the results store (write to a temp file, fsync, rename)."""
    relative = Path(str(ds.StudyInstanceUID)) / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
    target = results_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as tmp:
        ds.save_as(tmp, enforce_file_format=True)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)
    return StoredObject(
        kind=kind,
        SOPInstanceUID=str(ds.SOPInstanceUID),
        SOPClassUID=str(ds.SOPClassUID),
        StudyInstanceUID=str(ds.StudyInstanceUID),
        SeriesInstanceUID=str(ds.SeriesInstanceUID),
        path=relative.as_posix(),
    )


def enqueue(
    db: Database,
    objects: Sequence[StoredObject],
    destinations: Iterable[str],
    now: datetime,
    *,
    result_key: str,
    revision: int = 1,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Add a pending row per (object, destination name) that is not there yet; return how many were added."""
    with db.session() as s:
        return enqueue_in(
            s, objects, destinations, now, result_key=result_key, revision=revision, max_attempts=max_attempts
        )


def enqueue_in(
    s: Session,
    objects: Sequence[StoredObject],
    destinations: Iterable[str],
    now: datetime,
    *,
    result_key: str,
    revision: int = 1,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """:func:`enqueue` inside the caller's transaction (e.g. the one that stores the prediction)."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts {max_attempts} must be >= 1.")
    names = list(dict.fromkeys(destinations))
    added = 0
    for obj in objects:
        existing = set(
            s.scalars(
                select(OutboxItem.destination).where(OutboxItem.SOPInstanceUID == obj.SOPInstanceUID)
            )
        )
        for name in names:
            if name in existing:
                continue
            s.add(
                OutboxItem(
                    SOPInstanceUID=obj.SOPInstanceUID,
                    SOPClassUID=obj.SOPClassUID,
                    StudyInstanceUID=obj.StudyInstanceUID,
                    SeriesInstanceUID=obj.SeriesInstanceUID,
                    kind=obj.kind,
                    result_key=result_key,
                    revision=revision,
                    destination=name,
                    path=obj.path,
                    status="pending",
                    attempts=0,
                    max_attempts=max_attempts,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
            added += 1
    return added


def _claim(
    db: Database, names: Sequence[str], now: datetime, lease_s: float, limit: int, worker: str
) -> list[OutboxItem]:
    """Lease due rows of these destinations to ``worker`` and return them (one transaction).

    Due: ``pending`` with ``next_attempt_at <= now``, or ``sending`` whose lease ran out (its worker
    died) with attempts left; one whose lease ran out on its last attempt ends ``failed``."""
    with db.session() as s:
        OUTBOX.reap(s, now)
        ids = [
            row.id
            for row in OUTBOX.candidates(
                s,
                limit,
                now,
                where=[OutboxItem.destination.in_(list(names))],
                order_by=[OutboxItem.next_attempt_at, OutboxItem.id],
            )
        ]
        claimed = OUTBOX.claim(s, ids, worker, lease_s, now)
        if not claimed:
            return []
        return list(
            s.scalars(select(OutboxItem).where(OutboxItem.id.in_(claimed)).order_by(OutboxItem.id))
        )


def _record(
    db: Database,
    row: OutboxItem,
    outcome: SendOutcome,
    now: datetime,
    backoff_s: float,
    max_backoff_s: float,
    report: DeliveryReport,
    worker: str,
) -> None:
    """Record one send's outcome on a row ``worker`` holds: sent, retried after a backoff, or failed."""
    with db.session() as s:
        if outcome.ok:
            if OUTBOX.finish(s, row.id, worker, LeaseStatus.DONE, now=now, sent_at=now, last_attempt_at=now):
                report.sent += 1
            else:
                log.warning("outbox: %s to %s: lease lost", row.SOPInstanceUID, row.destination)
            return
        exhausted = row.attempts >= row.max_attempts
        final = outcome.permanent or exhausted
        if final:
            why = "permanent failure" if outcome.permanent else f"gave up after {row.attempts} attempts"
            error = f"{why}: {outcome.reason}"
        else:
            error = outcome.reason
        status = OUTBOX.release(
            s,
            row.id,
            row.attempts,
            row.max_attempts,
            worker,
            error,
            backoff_s,
            permanent=outcome.permanent,
            now=now,
            max_backoff_s=max_backoff_s,
            last_attempt_at=now,
        )
        if status == "lost":
            log.warning("outbox: %s to %s: lease lost to another worker", row.SOPInstanceUID, row.destination)
        elif final:
            report.failed += 1
            report.failures.append(f"{row.kind} {row.SOPInstanceUID} -> {row.destination}: {error}")
            log.warning(
                "outbox: %s %s to %s failed for good: %s",
                row.kind,
                row.SOPInstanceUID,
                row.destination,
                error,
            )
        else:
            report.retried += 1
            log.info(
                "outbox: %s to %s failed (attempt %d of %d), next try in %s: %s",
                row.SOPInstanceUID,
                row.destination,
                row.attempts,
                row.max_attempts,
                backoff_delay(row.attempts, backoff_s, max_backoff_s),
                outcome.reason,
            )


def deliver_pending(
    db: Database,
    destinations: Sequence[Destination] | Mapping[str, Destination],
    now: datetime,
    *,
    results_dir: Path,
    backoff_s: float = DEFAULT_BACKOFF_S,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    lease_s: float = DEFAULT_LEASE_S,
    batch_size: int = 100,
    worker: str | None = None,
) -> DeliveryReport:
    """Send every due outbox row of ``destinations`` once and record the outcomes; the worker loop's step.

    Rows for destinations not in ``destinations`` are left alone (another worker, or a destination that was
    taken out of the configuration: ``radgate outbox list`` shows them). ``worker`` names the lease holder
    (default: this host, process and call).
    """
    worker = worker or f"outbox:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    by_name = dict(destinations) if isinstance(destinations, Mapping) else {d.name: d for d in destinations}
    report = DeliveryReport()
    if not by_name:
        return report
    rows = _claim(db, list(by_name), now, lease_s, batch_size, worker)
    for name, destination in by_name.items():
        batch = [row for row in rows if row.destination == name]
        if not batch:
            continue
        present = [row for row in batch if (results_dir / row.path).is_file()]
        for row in batch:
            if row not in present:
                missing = SendOutcome(False, f"result file {row.path} is missing from {results_dir}", True)
                _record(db, row, missing, now, backoff_s, max_backoff_s, report, worker)
        if not present:
            continue
        try:
            outcomes = destination.send([results_dir / row.path for row in present])
        except Exception as exc:  # a destination must not stop the loop; the rows get retried
            log.exception("outbox: destination %s raised", name)
            outcomes = [SendOutcome(False, f"{type(exc).__name__}: {exc}")] * len(present)
        if len(outcomes) != len(present):
            outcomes = [SendOutcome(False, f"destination {name} answered {len(outcomes)} outcomes")] * len(
                present
            )
        for row, outcome in zip(present, outcomes, strict=True):
            _record(db, row, outcome, now, backoff_s, max_backoff_s, report, worker)
    return report


def list_outbox(
    db: Database,
    status: str | None = None,
    destination: str | None = None,
    limit: int = 100,
) -> list[OutboxItem]:
    """Outbox rows, newest first, optionally of one status and/or destination."""
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxItem.status == status)
    if destination is not None:
        query = query.where(OutboxItem.destination == destination)
    with db.session() as s:
        return list(s.scalars(query))


def retry(
    db: Database,
    now: datetime,
    ids: Sequence[int] = (),
    destination: str | None = None,
) -> int:
    """Put ``failed`` rows back to ``pending`` with a fresh attempt budget; by id, by destination, or all.

    Returns the number of rows reset. ``sent`` rows are never touched.
    """
    where: list[Any] = []
    if ids:
        where.append(OutboxItem.id.in_(list(ids)))
    if destination is not None:
        where.append(OutboxItem.destination == destination)
    with db.session() as s:
        return OUTBOX.requeue_failed(s, *where, now=now)
