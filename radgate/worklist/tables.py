"""Worklist tables: every read a radiologist records (the history behind ``ground_truth`` ``final_read``).

Migration: ``radgate/db/migrations/versions/r100_review.py`` (branch ``review``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["ReviewRead"]

UID = String(64)


class ReviewRead(Base):
    """One read of one study: the action, the finding present or absent, the region, the reason and the
    radiologist's free text, who and when, and the SR revision it was written into (if any)."""

    __tablename__ = "review_reads"
    __table_args__ = (Index("ix_review_reads_study", "StudyInstanceUID", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    StudyInstanceUID: Mapped[str] = mapped_column(UID)
    SeriesInstanceUID: Mapped[str | None] = mapped_column(UID)
    action: Mapped[str] = mapped_column(String(16))  # accept | modify | dismiss | label
    label: Mapped[int] = mapped_column(Integer)  # 1 finding present, 0 absent
    region: Mapped[str | None] = mapped_column(Text)  # JSON [left, top, right, bottom] in image pixels
    reason: Mapped[str | None] = mapped_column(Text)  # dismiss: one of DISMISS_REASONS
    text: Mapped[str | None] = mapped_column(Text)  # the radiologist's free text
    actor: Mapped[str] = mapped_column(String(128))
    sr_sop_uid: Mapped[str | None] = mapped_column(UID)  # the verified SR revision written, if any
    label_request_id: Mapped[int | None] = mapped_column(Integer)  # the label request this read answered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
