"""Deployments (model version x site x rules x mode x destinations) and the audit of every change to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base

__all__ = ["DeploymentChange", "DeploymentRow"]


class DeploymentRow(Base):
    """One deployment as it stands; ``mode`` may change at run time (``radgate deployments set-mode``)."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    model_version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))  # radgate.policy.Mode
    rules: Mapped[str] = mapped_column(Text)  # JSON list of rule overrides (see radgate.routing.rules)
    drop_rules: Mapped[str] = mapped_column(Text)  # JSON list of intended-use attributes not checked here
    destinations: Mapped[str] = mapped_column(Text)  # JSON list of destination names / AET@HOST:PORT
    config_digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the config entry last applied
    # config: the config file's [[deployments]] manage it; cli: `radgate deployments add` / `remove` do
    managed_by: Mapped[str] = mapped_column(String(8), default="config", server_default="config")
    operating_point: Mapped[str | None] = mapped_column(String(64))  # None: the model's first
    findings: Mapped[str | None] = mapped_column(Text)  # JSON declared findings; None: all the model's
    incidental: Mapped[str] = mapped_column(String(16), default="review_only")  # policy.IncidentalRule
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeploymentChange(Base):
    """Who changed what in a deployment, and when (append-only)."""

    __tablename__ = "deployment_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(32))  # created | mode | rules | model | destinations | site
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
