"""Appending to the audit log: :func:`record`, called inside the caller's own transaction.

The entry commits or rolls back with the change it describes. Appends are serialised by updating the one
``audit_head`` row first (a row lock on PostgreSQL, the write lock on SQLite), so two writers never chain
onto the same previous entry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from radgate.audit.chain import GENESIS, canonical_detail, canonical_entry, entry_hash
from radgate.audit.tables import AuditEntry, AuditHead
from radgate.clock import utcnow
from radgate.db import Database

__all__ = ["record", "record_in"]

HEAD_ID = 1


def _lock_head(session: Session) -> AuditHead:
    bump = update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_id=AuditHead.last_id)
    if session.execute(bump).rowcount == 0:  # type: ignore[attr-defined]
        # A schema made without the migration's head row (or an old database): start it from the table.
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).first()
        session.add(
            AuditHead(id=HEAD_ID, last_id=last.id if last else 0, last_hash=last.hash if last else GENESIS)
        )
        session.flush()
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).execution_options(populate_existing=True)
    ).scalar_one()
    return head


def record(
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry: ``actor`` did ``action`` to ``target``; ``detail`` is a JSON-able dict.

    ``actor`` is a user name (``alice``), a token (``pacs/token:3``) or the command line (``cli:root``);
    ``action`` a dotted verb (``auth.sign_in``, ``dicomweb.retrieve``, ``deployment.set_mode``);
    ``target`` what it was done to (a user name, a StudyInstanceUID, a deployment). Never put patient
    names, IDs or birth dates in ``detail``: UIDs identify what was seen.
    """
    if not actor or not action:
        raise ValueError("audit.record needs an actor and an action")
    actor, action = actor[:128], action[:64]
    detail_json = canonical_detail(detail)
    head = _lock_head(session)
    entry_id = head.last_id + 1
    at = utcnow()
    digest = entry_hash(head.last_hash, canonical_entry(entry_id, at, actor, action, target, detail_json))
    entry = AuditEntry(
        id=entry_id,
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=detail_json,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_id = entry_id
    head.last_hash = digest
    session.flush()
    return entry


def record_in(
    db: Database,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """:func:`record` in a transaction of its own, for an event that changes nothing else (a view)."""
    with db.session() as s:
        return record(s, actor, action, target, detail)
