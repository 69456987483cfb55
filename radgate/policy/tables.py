"""The policy's own state: subgroups a site validated locally, and results waiting to be published."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["LocalValidation", "PublishIntent"]


class LocalValidation(Base):
    """A subgroup a go-live validation at this site covered with enough cases (widens the model card's)."""

    __tablename__ = "local_validations"
    __table_args__ = (UniqueConstraint("deployment", "attribute", "value", name="uq_local_validation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(64))
    attribute: Mapped[str] = mapped_column(String(64))  # DICOM keyword, e.g. Manufacturer
    value: Mapped[str] = mapped_column(String(128))
    positives: Mapped[int] = mapped_column(Integer)
    negatives: Mapped[int] = mapped_column(Integer)
    auc: Mapped[float | None] = mapped_column(Float)
    validated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # what produced it (the report's file, the command)


class PublishIntent(Base):
    """A released result whose SR and GSPS are still to be built (after the engine's commit).

    A leased queue row (:mod:`radgate.db.lease`): the results worker claims it, builds the objects, queues
    them in the outbox and closes it, in its own transaction, never inside the engine's.
    """

    __tablename__ = "publish_intents"
    __table_args__ = (UniqueConstraint("prediction_id", name="uq_publish_intent_prediction"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(Integer)
    deployment: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)  # radgate.db.lease.LeaseStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
