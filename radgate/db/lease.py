"""One leased-queue primitive for every durable work queue (engine jobs, publish intents).

A queue row has ``status``, ``attempts``, ``max_attempts``, ``available_at``, ``lease_owner``,
``lease_expires_at``, ``finished_at`` and ``last_error``. Every state change is one conditional
``UPDATE ... WHERE`` whose row count says whether it happened, which is atomic on SQLite and PostgreSQL alike:

- claim: candidates are read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent workers take different
  rows), then ``status='queued' AND available_at <= now`` (or a ``running`` row whose lease expired: its
  worker died) becomes ``running`` with this worker as ``lease_owner`` until ``lease_expires_at``;
- finish, retry or fail: only ``WHERE lease_owner = me AND status = 'running'``, so a worker that lost its
  lease (too slow, or presumed dead) cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from radgate.clock import utcnow

__all__ = ["LeaseStatus", "LeasedQueue"]


class LeaseStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LeasedQueue:
    """The lease operations over one table's rows (``model``: its ORM class)."""

    model: Any

    def claimable(self, now: datetime) -> Any:
        m = self.model
        return or_(
            and_(m.status == LeaseStatus.QUEUED.value, m.available_at <= now),
            and_(
                m.status == LeaseStatus.RUNNING.value, m.lease_expires_at < now, m.attempts < m.max_attempts
            ),
        )

    def reap(self, session: Session, now: datetime | None = None) -> int:
        """Fail running rows whose lease expired on their last allowed attempt (their worker died)."""
        m, now = self.model, now or utcnow()
        result = session.execute(
            update(m)
            .where(
                m.status == LeaseStatus.RUNNING.value, m.lease_expires_at < now, m.attempts >= m.max_attempts
            )
            .values(
                status=LeaseStatus.FAILED.value,
                finished_at=now,
                lease_owner=None,
                last_error="the worker running it stopped (lease expired) on its last allowed attempt",
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def candidates(
        self, session: Session, limit: int, now: datetime | None = None, *columns: Any
    ) -> list[Any]:
        """Up to ``limit`` claimable rows' ``id`` (and ``columns``), oldest first.

        On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED`` until the transaction ends: workers
        claiming at the same moment each get different rows instead of queueing on the same ones (the
        conditional UPDATE of :meth:`claim` stays the guarantee). SQLite has one writer at a time anyway.
        """
        m, now = self.model, now or utcnow()
        query = select(m.id, *columns).where(self.claimable(now)).order_by(m.id).limit(limit)
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
        """Take the lease on those of ``ids`` still claimable; returns the ids this worker now holds."""
        m, now = self.model, now or utcnow()
        expires = now + timedelta(seconds=lease_s)
        claimed: list[int] = []
        for row_id in ids:
            result = session.execute(
                update(m)
                .where(m.id == row_id, self.claimable(now))
                .values(
                    **values,
                    status=LeaseStatus.RUNNING.value,
                    lease_owner=worker,
                    lease_expires_at=expires,
                    attempts=m.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row_id)
        return claimed

    def extend(self, session: Session, worker: str, ids: Sequence[int], lease_s: float) -> int:
        """Heartbeat: push the lease of rows this worker still holds; returns how many it still holds."""
        if not ids:
            return 0
        m = self.model
        result = session.execute(
            update(m)
            .where(m.id.in_(list(ids)), m.lease_owner == worker, m.status == LeaseStatus.RUNNING.value)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
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
    ) -> bool:
        """Close a row this worker holds (done, failed or cancelled); ``False`` if the lease was lost."""
        m = self.model
        result = session.execute(
            update(m)
            .where(m.id == row_id, m.lease_owner == worker, m.status == LeaseStatus.RUNNING.value)
            .values(
                status=LeaseStatus(status).value,
                finished_at=utcnow(),
                lease_owner=None,
                lease_expires_at=None,
                last_error=error,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def abandon(self, session: Session, worker: str) -> int:
        """Queue again, at once, every row ``worker`` holds (it died or gave up); returns how many.

        The attempt it had started still counts, so a row that kills every worker that takes it ends
        ``failed`` after ``max_attempts`` (by :meth:`reap` or the next :meth:`release`).
        """
        m = self.model
        result = session.execute(
            update(m)
            .where(m.lease_owner == worker, m.status == LeaseStatus.RUNNING.value)
            .values(
                status=LeaseStatus.QUEUED.value,
                lease_owner=None,
                lease_expires_at=None,
                available_at=utcnow(),
                last_error=f"worker {worker} stopped while holding it",
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
    ) -> str:
        """After a failure: queue the row again after an exponential backoff, or fail it for good.

        The delay before attempt ``n + 1`` is ``backoff_s * 2 ** (n - 1)``. Returns the new status, or
        ``"lost"`` when the lease had already passed to another worker.
        """
        m, now = self.model, utcnow()
        values: Mapping[str, Any]
        if permanent or attempts >= max_attempts:
            status = LeaseStatus.FAILED.value
            values = {
                "status": status,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "last_error": error,
            }
        else:
            status = LeaseStatus.QUEUED.value
            values = {
                "status": status,
                "available_at": now + timedelta(seconds=backoff_s * 2 ** (attempts - 1)),
                "lease_owner": None,
                "lease_expires_at": None,
                "last_error": error,
            }
        result = session.execute(
            update(m)
            .where(m.id == row_id, m.lease_owner == worker, m.status == LeaseStatus.RUNNING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return status if result.rowcount == 1 else "lost"  # type: ignore[attr-defined]
