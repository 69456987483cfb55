"""The model registry's table: one row per installed model version (several versions side by side)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radgate.clock import UTCDateTime
from radgate.db.schema import Base
from radgate.db.types import JSONText

__all__ = ["ModelVersion"]


class ModelVersion(Base):
    """An installed model package: its identity, where its files are, its manifest and weights digest."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16))  # triage | diagnostic
    description: Mapped[str] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)  # trained on synthetic data (demo)
    sha256: Mapped[str] = mapped_column(String(64))  # of the weights, as the manifest states it
    path: Mapped[str] = mapped_column(Text)  # the installed package (folder or .zip), absolute
    source: Mapped[str] = mapped_column(Text)  # where it was added from
    manifest: Mapped[str] = mapped_column(Text)  # manifest.toml as installed
    # What `radgate models list` shows of the manifest, written at registration (migration s6m_model_listing
    # filled them in from `manifest` for the rows before it): JSON [[findings]] names, [intended_use] summary.
    finding_names: Mapped[str] = mapped_column(JSONText, server_default="[]")
    intended_use_summary: Mapped[str] = mapped_column(Text, server_default="")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_by: Mapped[str] = mapped_column(String(64))
