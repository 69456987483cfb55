"""Learning tables: promotion criteria locked before a comparison, change records, label requests.

Migration: ``radgate/db/migrations/versions/l100_learning.py`` (branch ``learning``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["ChangeRecord", "LabelRequest", "PromotionCriteria"]

UID = String(64)


class PromotionCriteria(Base):
    """Criteria a challenger must meet against its champion, locked (text + SHA-256) before comparing."""

    __tablename__ = "promotion_criteria"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    challenger: Mapped[str] = mapped_column(String(64), index=True)
    champion: Mapped[str] = mapped_column(String(64))
    criteria_sha256: Mapped[str] = mapped_column(String(64))
    criteria_toml: Mapped[str] = mapped_column(Text)
    criteria_path: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_by: Mapped[str] = mapped_column(String(64))
    # challenger results already stored when the criteria were locked (0 = truly pre-registered)
    challenger_results_at_lock: Mapped[int] = mapped_column(Integer)


class ChangeRecord(Base):
    """One modification under the change control plan: a promotion (and its rollback, when undone)."""

    __tablename__ = "change_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # promotion
    status: Mapped[str] = mapped_column(String(16), index=True)  # promoted | rolled_back
    challenger: Mapped[str] = mapped_column(String(64), index=True)
    champion: Mapped[str] = mapped_column(String(64), index=True)
    # what changed: model versions, hashes and the modes before and after
    what: Mapped[str] = mapped_column(Text)  # JSON
    data: Mapped[str] = mapped_column(Text)  # JSON: the paired cases used (count, SHA-256 of their UIDs)
    metrics: Mapped[str] = mapped_column(Text)  # JSON: the comparison
    verdict: Mapped[str] = mapped_column(Text)  # JSON: each criterion's result
    criteria_id: Mapped[int] = mapped_column(Integer)
    criteria_sha256: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str] = mapped_column(String(64))
    override: Mapped[str | None] = mapped_column(Text)  # go-live gate override reason, if any
    record_sha256: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical JSON of the record
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rolled_back_by: Mapped[str | None] = mapped_column(String(64))
    rollback_note: Mapped[str | None] = mapped_column(Text)


class LabelRequest(Base):
    """A case picked for labelling (by active learning), created by a data scientist."""

    __tablename__ = "label_requests"
    __table_args__ = (Index("ix_label_requests_deployment_status", "deployment", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch: Mapped[str] = mapped_column(String(32), index=True)
    deployment: Mapped[str] = mapped_column(String(64))
    StudyInstanceUID: Mapped[str] = mapped_column(UID)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    strategy: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)  # the model's stored score
    priority: Mapped[float] = mapped_column(Float)  # the strategy's value (higher = picked first)
    stratum: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # open | labelled | cancelled
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
