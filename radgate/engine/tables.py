"""The engine's tables: the job queue, routing decisions, predictions (one per series x deployment).

Exactly one stored prediction per (series, deployment) is a database guarantee (``uq_prediction``), not a
hope: however many workers retried or died, a second insert fails and the job is closed without a duplicate.
Several deployments of one model version (one per site, or a ``shadow`` challenger beside its champion)
each get their own job and result. Every prediction carries the policy's decision (:mod:`radgate.policy`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import UID, Base
from radgate.db.types import JSONText

# CHECK constraints on the status columns (migration p100): the values of radgate.db.lease.LeaseStatus,
# the routing decisions, radgate.policy.Mode and radgate.policy.Release (plus ``retrospective``: scores
# written by ``radgate score --into-db``, never sent, never shown).
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ROUTING_DECISIONS = ("matched", "not_applicable", "off")
PREDICTION_MODES = ("off", "silent", "shadow", "live", "retrospective")
PREDICTION_POLICIES = ("released", "withheld", "silent", "shadow", "off", "retrospective")


def one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"

__all__ = ["Job", "Prediction", "RoutingDecisionRow"]


class Job(Base):
    """One series to run through one model version; claimed by a worker under a lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("SeriesInstanceUID", "deployment", name="uq_job_series_deployment"),
        Index("ix_jobs_claim", "status", "available_at"),
        CheckConstraint(one_of("status", JOB_STATUSES), name="ck_jobs_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    StudyInstanceUID: Mapped[str] = mapped_column(UID)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    deployment: Mapped[str] = mapped_column(
        String(64), ForeignKey("deployments.name", name="fk_jobs_deployment", onupdate="CASCADE")
    )
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)  # not claimed before (retry backoff)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    series_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    instances: Mapped[str | None] = mapped_column(JSONText)  # JSON SOPInstanceUIDs that fit the intended use


class RoutingDecisionRow(Base):
    """Whether a series fits a deployment's rules, and if not, why (one row per series x deployment)."""

    __tablename__ = "routing_decisions"
    __table_args__ = (
        UniqueConstraint("SeriesInstanceUID", "deployment", name="uq_routing_series_deployment"),
        CheckConstraint(one_of("decision", ROUTING_DECISIONS), name="ck_routing_decisions_decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    StudyInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    deployment: Mapped[str] = mapped_column(
        String(64), ForeignKey("deployments.name", name="fk_routing_decisions_deployment", onupdate="CASCADE")
    )
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))  # the deployment's mode when decided
    decision: Mapped[str] = mapped_column(String(16))  # matched | not_applicable | off
    reason: Mapped[str] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("jobs.id", name="fk_routing_decisions_job", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # JSON [{"SOPInstanceUID", "applicable", "reason"}]: routing is per instance (mixed-view series)
    instances: Mapped[str | None] = mapped_column(JSONText)


class Prediction(Base):
    """The stored result of one model version on one series: scores, flags, map, features and latencies."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("SeriesInstanceUID", "deployment", name="uq_prediction"),
        Index("ix_predictions_created", "created_at"),
        # the worklist (released and withheld, most urgent first) and monitoring (one deployment's periods)
        Index("ix_predictions_policy_urgency", "policy", "urgency"),
        Index("ix_predictions_deployment_created", "deployment", "created_at"),
        CheckConstraint(one_of("mode", PREDICTION_MODES), name="ck_predictions_mode"),
        CheckConstraint(one_of("policy", PREDICTION_POLICIES), name="ck_predictions_policy"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The job that produced it (migration p110); NULL for scores made outside the engine's queue
    # (``radgate score --into-db``) and once a job row is deleted. The deployment is reached through the job
    # (``fk_jobs_deployment``): ``predictions.deployment`` has no key of its own, since retrospective rows
    # name ``retro:MODEL:VERSION``, which nothing routes to and no deployments row holds.
    job_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("jobs.id", name="fk_predictions_job", ondelete="SET NULL"), index=True
    )
    StudyInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID)
    SOPInstanceUID: Mapped[str] = mapped_column(UID)  # the image whose score is the series score
    deployment: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    model_sha256: Mapped[str] = mapped_column(String(64))
    # radgate.policy.Mode at inference time, or "retrospective" (radgate score --into-db)
    mode: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)  # the primary finding's series score
    flag: Mapped[bool] = mapped_column(Boolean)  # at the deployment's operating point (the policy's flag)
    scores: Mapped[str] = mapped_column(JSONText)  # JSON {finding: score}
    flags: Mapped[str] = mapped_column(JSONText)  # JSON {operating point: bool}
    explanation_method: Mapped[str | None] = mapped_column(String(16))  # cam | occlusion
    explanation_path: Mapped[str | None] = mapped_column(Text)  # .npz relative to DATA_DIR
    features: Mapped[str] = mapped_column(JSONText)  # JSON header features of the input
    num_images: Mapped[int] = mapped_column(Integer)
    queue_wait_ms: Mapped[float] = mapped_column(Float)
    decode_ms: Mapped[float] = mapped_column(Float)
    preprocess_ms: Mapped[float] = mapped_column(Float)
    inference_ms: Mapped[float] = mapped_column(Float)
    postprocess_ms: Mapped[float] = mapped_column(Float)
    end_to_end_ms: Mapped[float | None] = mapped_column(Float)  # series complete -> result stored
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The policy's decision (radgate.policy.Decision), stored with the result
    used_instances: Mapped[str] = mapped_column(JSONText, default="[]")  # JSON SOPInstanceUIDs the model saw
    policy: Mapped[str] = mapped_column(String(16), default="silent")  # radgate.policy.Release
    policy_reason: Mapped[str] = mapped_column(Text, default="")
    operating_point: Mapped[str | None] = mapped_column(String(64))
    threshold: Mapped[float | None] = mapped_column(Float)
    threshold_source: Mapped[str | None] = mapped_column(String(48))
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    findings: Mapped[str] = mapped_column(JSONText, default="[]")  # JSON per-finding decisions
