"""Exporting the audit log for a SIEM: one JSON object per entry, oldest first, hashes included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.audit.tables import AuditEntry

__all__ = ["entry_dict", "iter_entries"]


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": json.loads(entry.detail),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def iter_entries(
    session: Session, since: datetime | None = None, action: str | None = None
) -> Iterator[dict[str, Any]]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if action is not None:
        query = query.where(AuditEntry.action.startswith(action))
    for entry in session.scalars(query.execution_options(yield_per=1000)):
        yield entry_dict(entry)
