"""Validation tables: reference labels (ground truth) and silent trials with their pre-registered criteria.

Migration: ``radgate/db/migrations/versions/0040_validation.py`` (branch ``validation``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["GroundTruth", "Trial"]

UID = String(64)


class GroundTruth(Base):
    """A reference label for one study or series, with where it came from.

    Identified by ``StudyInstanceUID`` (PS3.3 C.7.2.1) and/or ``SeriesInstanceUID`` (C.7.3.1). ``source`` is
    the reference standard (``biopsy``, ``follow-up``, ``consensus``, ``radiologist`` ...); one row per
    UID and source, so a later biopsy result sits beside the radiologist's read instead of overwriting it.
    """

    __tablename__ = "ground_truth"
    __table_args__ = (
        Index("ix_ground_truth_study", "StudyInstanceUID"),
        Index("ix_ground_truth_series", "SeriesInstanceUID"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    StudyInstanceUID: Mapped[str | None] = mapped_column(UID)
    SeriesInstanceUID: Mapped[str | None] = mapped_column(UID)
    label: Mapped[int] = mapped_column(Integer)  # 1 positive, 0 negative
    source: Mapped[str] = mapped_column(String(32))
    reference_date: Mapped[date | None] = mapped_column(Date)  # when the reference was established
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    origin: Mapped[str | None] = mapped_column(Text)  # file name it was imported from


class Trial(Base):
    """A silent trial: its acceptance criteria, fixed (text and SHA-256) when it started."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(64))
    criteria_sha256: Mapped[str] = mapped_column(String(64))
    criteria_toml: Mapped[str] = mapped_column(Text)
    criteria_path: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_recommendation: Mapped[str | None] = mapped_column(String(32))
