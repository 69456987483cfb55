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
- Crash safety: a claimed row holds a lease (``sending`` until ``lease_until``); if the process dies
  while sending, the lease runs out and the row is sent again. That resend carries the same file, hence the
  same SOP Instance UID, so the peer ends up with one instance, not two.

Time is a parameter (``now``) everywhere, so that tests drive the clock and the backoff can be checked.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pydicom.dataset import Dataset
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from radgate.db import Database
from radgate.results.send import Destination, SendOutcome
from radgate.results.tables import OutboxItem

__all__ = [
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


def _claim(db: Database, names: Sequence[str], now: datetime, lease_s: float, limit: int) -> list[OutboxItem]:
    """Mark due rows of these destinations ``sending`` with a lease and return them (one transaction)."""
    due = or_(
        and_(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now),
        and_(OutboxItem.status == "sending", OutboxItem.lease_until <= now),
    )
    with db.session() as s:
        query = (
            select(OutboxItem)
            .where(OutboxItem.destination.in_(names), due)
            .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
            .limit(limit)
        )
        if db.backend == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(s.scalars(query))
        lease = now + timedelta(seconds=lease_s)
        for row in rows:
            row.status = "sending"
            row.lease_until = lease
        return rows


def _record(
    db: Database,
    row: OutboxItem,
    outcome: SendOutcome,
    now: datetime,
    backoff_s: float,
    max_backoff_s: float,
    report: DeliveryReport,
) -> None:
    with db.session() as s:
        item = s.get(OutboxItem, row.id)
        if item is None:
            return
        item.attempts += 1
        item.last_attempt_at = now
        item.lease_until = None
        if outcome.ok:
            item.status = "sent"
            item.sent_at = now
            item.last_error = None
            report.sent += 1
            return
        exhausted = item.attempts >= item.max_attempts
        if outcome.permanent or exhausted:
            why = "permanent failure" if outcome.permanent else f"gave up after {item.attempts} attempts"
            item.status = "failed"
            item.last_error = f"{why}: {outcome.reason}"
            report.failed += 1
            report.failures.append(
                f"{item.kind} {item.SOPInstanceUID} -> {item.destination}: {item.last_error}"
            )
            log.warning(
                "outbox: %s %s to %s failed for good: %s",
                item.kind,
                item.SOPInstanceUID,
                item.destination,
                item.last_error,
            )
            return
        item.status = "pending"
        item.last_error = outcome.reason
        item.next_attempt_at = now + backoff_delay(item.attempts, backoff_s, max_backoff_s)
        report.retried += 1
        log.info(
            "outbox: %s to %s failed (attempt %d of %d), next try at %s: %s",
            item.SOPInstanceUID,
            item.destination,
            item.attempts,
            item.max_attempts,
            item.next_attempt_at.isoformat(timespec="seconds"),
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
) -> DeliveryReport:
    """Send every due outbox row of ``destinations`` once and record the outcomes; the worker loop's step.

    Rows for destinations not in ``destinations`` are left alone (another worker, or a destination that was
    taken out of the configuration: ``radgate outbox list`` shows them).
    """
    by_name = dict(destinations) if isinstance(destinations, Mapping) else {d.name: d for d in destinations}
    report = DeliveryReport()
    if not by_name:
        return report
    rows = _claim(db, list(by_name), now, lease_s, batch_size)
    for name, destination in by_name.items():
        batch = [row for row in rows if row.destination == name]
        if not batch:
            continue
        present = [row for row in batch if (results_dir / row.path).is_file()]
        for row in batch:
            if row not in present:
                missing = SendOutcome(False, f"result file {row.path} is missing from {results_dir}", True)
                _record(db, row, missing, now, backoff_s, max_backoff_s, report)
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
            _record(db, row, outcome, now, backoff_s, max_backoff_s, report)
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
    query = update(OutboxItem).where(OutboxItem.status == "failed")
    if ids:
        query = query.where(OutboxItem.id.in_(list(ids)))
    if destination is not None:
        query = query.where(OutboxItem.destination == destination)
    query = query.values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
    with db.session() as s:
        result = cast(CursorResult[Any], s.execute(query))
        return int(result.rowcount or 0)
