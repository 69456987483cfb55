"""The audit log: an append-only, hash-chained table, and its head (the newest entry's id and hash).

Migration: ``radgate/db/migrations/versions/0042_audit.py`` (branch ``audit``). On PostgreSQL a trigger
refuses UPDATE, DELETE and TRUNCATE of ``audit_log`` and the application's role holds only INSERT and
SELECT on it; on SQLite triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["AuditEntry", "AuditHead"]


class AuditEntry(Base):
    """One audited event; ``hash`` = SHA-256(``prev_hash`` + the entry's canonical JSON), see ``chain.py``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action", "action"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1, 2, 3 ... no gaps
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the newest entry. Appending updates it first, which serialises writers on both backends,
    and ``audit verify`` compares it with the chain, so a cut-off tail is found too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
