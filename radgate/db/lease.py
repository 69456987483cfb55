"""One leased-queue primitive for every durable work queue (engine jobs, publish intents).

A queue row has ``status``, ``attempts``, ``max_attempts``, ``available_at``, ``lease_owner``,
``lease_expires_at``, ``finished_at`` and ``last_error``. Every state change is one conditional
``UPDATE ... WHERE`` whose row count says whether it happened, which is atomic on SQLite and PostgreSQL alike:

- claim: candidates are read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent workers take different
  rows), then ``status='queued' AND available_at <= now`` (or a ``running`` row whose lease expired: its
  worker died) becomes ``running`` with this worker as ``lease_owner`` until ``lease_expires_at``;
- finish, retry or fail: only ``WHERE lease_owner = me AND status = 'running'``, so a worker that lost its
  lease (too slow, or presumed dead) cannot overwrite the work of the one that took over.

A table may spell the lease columns and statuses its own way (:class:`LeaseColumns`): the results outbox
says ``pending`` / ``sending`` / ``sent``, ``next_attempt_at`` and ``lease_until``, words its CLI shows;
the semantics (claim, heartbeat, finish, retry with backoff, abandon, reap, requeue the failed) are these.
Every operation takes ``now`` (default: the clock), so callers that drive time (the outbox's tests) can.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from radgate.clock import utcnow

__all__ = ["LeaseColumns", "LeaseStatus", "LeasedQueue"]


class LeaseStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LeaseColumns:
    """How one table names the lease columns and spells each :class:`LeaseStatus`."""

    available_at: str = "available_at"
    lease_expires_at: str = "lease_expires_at"
    queued: str = LeaseStatus.QUEUED.value
    running: str = LeaseStatus.RUNNING.value
    done: str = LeaseStatus.DONE.value
    failed: str = LeaseStatus.FAILED.value
    cancelled: str = LeaseStatus.CANCELLED.value

    def word(self, status: LeaseStatus | str) -> str:
        """The table's word for ``status``."""
        return str(getattr(self, LeaseStatus(status).name.lower()))


@dataclass(frozen=True)
class LeasedQueue:
    """The lease operations over one table's rows (``model``: its ORM class; ``columns``: its spelling)."""

    model: Any
    columns: LeaseColumns = LeaseColumns()

    @property
    def _available_at(self) -> Any:
        return getattr(self.model, self.columns.available_at)

    @property
    def _expires(self) -> Any:
        return getattr(self.model, self.columns.lease_expires_at)

    def claimable(self, now: datetime) -> Any:
        m, c = self.model, self.columns
        return or_(
            and_(m.status == c.queued, self._available_at <= now),
            and_(m.status == c.running, self._expires < now, m.attempts < m.max_attempts),
        )

    def reap(self, session: Session, now: datetime | None = None) -> int:
        """Fail running rows whose lease expired on their last allowed attempt (their worker died)."""
        m, c, now = self.model, self.columns, now or utcnow()
        result = session.execute(
            update(m)
            .where(m.status == c.running, self._expires < now, m.attempts >= m.max_attempts)
            .values(
                status=c.failed,
                finished_at=now,
                lease_owner=None,
                last_error="the worker running it stopped (lease expired) on its last allowed attempt",
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def candidates(
        self,
        session: Session,
        limit: int,
        now: datetime | None = None,
        *columns: Any,
        where: Sequence[Any] = (),
        order_by: Sequence[Any] = (),
    ) -> list[Any]:
        """Up to ``limit`` claimable rows' ``id`` (and ``columns``), oldest first (or by ``order_by``),
        among those matching ``where``.

        On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED`` until the transaction ends: workers
        claiming at the same moment each get different rows instead of queueing on the same ones (the
        conditional UPDATE of :meth:`claim` stays the guarantee). SQLite has one writer at a time anyway.
        """
        m, now = self.model, now or utcnow()
        query = (
            select(m.id, *columns)
            .where(self.claimable(now), *where)
            .order_by(*(order_by or (m.id,)))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=m)
        return list(session.execute(query))

    def claim(
        self,
        session: Session,
        ids: Sequence[int],
        worker: str,
        lease_s: float,
        now: datetime | None = None,
        **values: Any,
    ) -> list[int]:
        """Take the lease on those of ``ids`` still claimable; returns the ids this worker now holds.

        The claim counts the attempt, so a row that kills every worker that takes it ends ``failed``."""
        m, c, now = self.model, self.columns, now or utcnow()
        expires = now + timedelta(seconds=lease_s)
        claimed: list[int] = []
        for row_id in ids:
            result = session.execute(
                update(m)
                .where(m.id == row_id, self.claimable(now))
                .values(
                    {
                        **values,
                        "status": c.running,
                        "lease_owner": worker,
                        c.lease_expires_at: expires,
                        "attempts": m.attempts + 1,
                    }
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row_id)
        return claimed

    def extend(
        self, session: Session, worker: str, ids: Sequence[int], lease_s: float, now: datetime | None = None
    ) -> int:
        """Heartbeat: push the lease of rows this worker still holds; returns how many it still holds."""
        if not ids:
            return 0
        m, c = self.model, self.columns
        result = session.execute(
            update(m)
            .where(m.id.in_(list(ids)), m.lease_owner == worker, m.status == c.running)
            .values({c.lease_expires_at: (now or utcnow()) + timedelta(seconds=lease_s)})
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def finish(
        self,
        session: Session,
        row_id: int,
        worker: str,
        status: LeaseStatus = LeaseStatus.DONE,
        error: str | None = None,
        now: datetime | None = None,
        **values: Any,
    ) -> bool:
        """Close a row this worker holds (done, failed or cancelled); ``False`` if the lease was lost."""
        m, c = self.model, self.columns
        result = session.execute(
            update(m)
            .where(m.id == row_id, m.lease_owner == worker, m.status == c.running)
            .values(
                {
                    **values,
                    "status": c.word(status),
                    "finished_at": now or utcnow(),
                    "lease_owner": None,
                    c.lease_expires_at: None,
                    "last_error": error,
                }
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def abandon(self, session: Session, worker: str, now: datetime | None = None) -> int:
        """Queue again, at once, every row ``worker`` holds (it died or gave up); returns how many.

        The attempt it had started still counts, so a row that kills every worker that takes it ends
        ``failed`` after ``max_attempts`` (by :meth:`reap` or the next :meth:`release`).
        """
        m, c = self.model, self.columns
        result = session.execute(
            update(m)
            .where(m.lease_owner == worker, m.status == c.running)
            .values(
                {
                    "status": c.queued,
                    "lease_owner": None,
                    c.lease_expires_at: None,
                    c.available_at: now or utcnow(),
                    "last_error": f"worker {worker} stopped while holding it",
                }
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def release(
        self,
        session: Session,
        row_id: int,
        attempts: int,
        max_attempts: int,
        worker: str,
        error: str,
        backoff_s: float,
        permanent: bool = False,
        now: datetime | None = None,
        max_backoff_s: float | None = None,
        **values: Any,
    ) -> str:
        """After a failure: queue the row again after an exponential backoff, or fail it for good.

        The delay before attempt ``n + 1`` is ``backoff_s * 2 ** (n - 1)`` (at most ``max_backoff_s``).
        Returns the new status (the table's word), or ``"lost"`` when the lease had already passed to
        another worker.
        """
        m, c, now = self.model, self.columns, now or utcnow()
        changes: dict[str, Any] = {
            **values,
            "lease_owner": None,
            c.lease_expires_at: None,
            "last_error": error,
        }
        if permanent or attempts >= max_attempts:
            status = c.failed
            changes.update(status=status, finished_at=now)
        else:
            status = c.queued
            delay = backoff_s * 2 ** (attempts - 1)
            if max_backoff_s is not None:
                delay = min(delay, max_backoff_s)
            changes.update({"status": status, c.available_at: now + timedelta(seconds=delay)})
        result = session.execute(
            update(m)
            .where(m.id == row_id, m.lease_owner == worker, m.status == c.running)
            .values(changes)
            .execution_options(synchronize_session=False)
        )
        return status if result.rowcount == 1 else "lost"  # type: ignore[attr-defined]

    def requeue_failed(self, session: Session, *where: Any, now: datetime | None = None) -> int:
        """Give ``failed`` rows (those matching ``where``) a fresh set of attempts from ``now``; returns how
        many (an operator's retry once the cause is fixed)."""
        m, c = self.model, self.columns
        result = session.execute(
            update(m)
            .where(m.status == c.failed, *where)
            .values(
                {
                    "status": c.queued,
                    "attempts": 0,
                    c.available_at: now or utcnow(),
                    c.lease_expires_at: None,
                    "lease_owner": None,
                    "finished_at": None,
                }
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
