"""Monitoring tables: alerts, the webhook delivery queue, and the summary of each monitoring run.

Migration: ``radgate/db/migrations/versions/0050_monitoring.py`` (branch ``monitoring``).

One open alert per rule x deployment x scope is a database guarantee: ``open_key`` holds
``rule|deployment|scope`` while the alert is open or acknowledged and is cleared when it is resolved, and it
is unique (NULLs never collide, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["AlertDeliveryRow", "AlertRow", "ImageStatisticRow", "MonitoringRunRow"]


class AlertRow(Base):
    """One alert: a rule fired for a deployment and scope from ``period`` on (until ``last_period``)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(256))
    period: Mapped[str] = mapped_column(String(16))  # the first period it fired in
    last_period: Mapped[str] = mapped_column(String(16))  # the latest period it fired in
    detected_on: Mapped[str] = mapped_column(String(10))  # ISO date the data showed it
    change_point: Mapped[str | None] = mapped_column(String(10))  # ISO date, CUSUM rules
    status: Mapped[str] = mapped_column(String(16))  # AlertStatus
    open_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)  # JSON
    firings: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolve_note: Mapped[str | None] = mapped_column(Text)


class AlertDeliveryRow(Base):
    """One webhook message to send (an intent row written with the alert change it reports)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "status", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(16))  # AlertEvent
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON body that is signed
    status: Mapped[str] = mapped_column(String(16))  # DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class MonitoringRunRow(Base):
    """The summary a monitoring run computed (what the dashboard and the report draw)."""

    __tablename__ = "monitoring_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[str] = mapped_column(String(10))
    predictions: Mapped[int] = mapped_column(Integer)
    alerts_opened: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)  # JSON of MonitoringSummary


class ImageStatisticRow(Base):
    """Statistics of one image as the model saw it (``radgate.monitoring.imagestats``), measured once.

    Migration: ``m110_image_statistics.py`` (branch ``monitoring``). ``transform`` is the preprocessing
    signature (:func:`radgate.inference.cache.preprocessing_signature`): the same file rendered for another
    input size is another row.
    """

    __tablename__ = "image_statistics"
    __table_args__ = (
        UniqueConstraint("SOPInstanceUID", "sha256", "transform", name="uq_image_statistics_image"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    SOPInstanceUID: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64))  # the stored file's SHA-256
    transform: Mapped[str] = mapped_column(String(64))
    p05: Mapped[float] = mapped_column(Float)
    p50: Mapped[float] = mapped_column(Float)
    p95: Mapped[float] = mapped_column(Float)
    contrast: Mapped[float] = mapped_column(Float)
    noise: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
