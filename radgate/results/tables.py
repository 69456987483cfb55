"""The results outbox: one row per (SOP instance, destination), durable across restarts.

A row is created when radgate has written a result object (SR, GSPS, SC) to its results store and a
destination is to receive it; :func:`radgate.results.outbox.deliver_pending` moves it through::

    pending --send ok--> sent
    pending --transient failure--> pending (attempts + 1, next_attempt_at = now + backoff)
    pending --permanent failure, or attempts exhausted--> failed (last_error says why)
    pending --claimed by a worker--> sending (lease_owner, lease_until); once the lease runs out it
        counts as pending again

These are the states of :class:`radgate.db.lease.LeasedQueue` (the primitive under the engine's jobs and the
publish intents), in the outbox's own words (:data:`OUTBOX_LEASE`): queued = ``pending``, running =
``sending``, done = ``sent``, failed = ``failed``; ``next_attempt_at`` is when a row may be claimed,
``lease_until`` when its lease runs out. Only the worker holding the lease records the outcome.

The unique key (SOPInstanceUID, destination) makes enqueueing idempotent; the object's file and its
SOP Instance UID never change, so every resend delivers the same instance (PS3.4 B.2: a C-STORE of an
existing SOP Instance UID replaces or is ignored by the peer, it never creates a second instance).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.lease import LeaseColumns
from radgate.db.schema import UID, Base

__all__ = ["OUTBOX_LEASE", "OUTBOX_STATUSES", "OutboxItem"]

#: How the outbox spells the shared lease primitive's columns and statuses.
OUTBOX_LEASE = LeaseColumns(
    available_at="next_attempt_at",
    lease_expires_at="lease_until",
    queued="pending",
    running="sending",
    done="sent",
    failed="failed",
)

OUTBOX_STATUSES = (OUTBOX_LEASE.queued, OUTBOX_LEASE.running, OUTBOX_LEASE.done, OUTBOX_LEASE.failed)


class OutboxItem(Base):
    """One result object (by SOP Instance UID) on its way to one destination."""

    __tablename__ = "result_outbox"
    __table_args__ = (
        UniqueConstraint("SOPInstanceUID", "destination", name="uq_outbox_instance_destination"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    SOPInstanceUID: Mapped[str] = mapped_column(UID)
    SOPClassUID: Mapped[str] = mapped_column(UID)
    StudyInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID)
    kind: Mapped[str] = mapped_column(String(8))  # SR | PR | SC
    result_key: Mapped[str] = mapped_column(String(128), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    destination: Mapped[str] = mapped_column(String(256))
    path: Mapped[str] = mapped_column(Text)  # relative to the results store (DATA_DIR/results)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # sent or failed
    last_error: Mapped[str | None] = mapped_column(Text)
