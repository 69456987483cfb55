"""Read-only views of the ingest state: recent rejections, studies and series with their assembly status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radgate.db import Instance, Rejection, Series, Study

__all__ = ["ingest_counts", "recent_rejections", "series_status"]


def recent_rejections(s: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; only UIDs, sources and reasons (no patient data)."""
    rows = s.scalars(select(Rejection).order_by(Rejection.id.desc()).limit(limit)).all()
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(timespec="seconds"),
            "source": r.source,
            "calling_ae": r.calling_ae,
            "SOPInstanceUID": r.SOPInstanceUID,
            "status": f"0x{r.status:04X}" if r.status is not None else None,
            "reason": r.reason,
            "quarantine_path": r.quarantine_path,
        }
        for r in rows
    ]


def series_status(s: Session, limit: int = 200) -> list[dict[str, Any]]:
    rows = s.scalars(select(Series).order_by(Series.last_received.desc()).limit(limit)).all()
    return [
        {
            "StudyInstanceUID": r.StudyInstanceUID,
            "SeriesInstanceUID": r.SeriesInstanceUID,
            "Modality": r.Modality,
            "num_instances": r.num_instances,
            "expected_instances": r.expected_instances,
            "status": r.status,
            "note": r.note,
            "reopened_count": r.reopened_count,
        }
        for r in rows
    ]


def ingest_counts(s: Session) -> dict[str, int]:
    return {
        "studies": s.scalar(select(func.count()).select_from(Study)) or 0,
        "series": s.scalar(select(func.count()).select_from(Series)) or 0,
        "instances": s.scalar(select(func.count()).select_from(Instance)) or 0,
        "rejections": s.scalar(select(func.count()).select_from(Rejection)) or 0,
    }
