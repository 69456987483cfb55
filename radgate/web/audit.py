"""The audit log over HTTP, for auditors and admins: ``GET /api/audit`` and ``GET /api/audit/verify``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from radgate import audit
from radgate.audit.tables import AuditEntry
from radgate.auth import Permission, Principal
from radgate.web.deps import SessionDep
from radgate.web.security import require

router = APIRouter(prefix="/api/audit", tags=["audit"])
Auditor = Annotated[Principal, require(Permission.AUDIT_READ)]


@router.get("")
def api_audit(
    request: Request,
    session: SessionDep,
    principal: Auditor,
    limit: int = Query(100, ge=1, le=10000),
    action: str | None = Query(None, description="Only actions starting with this, e.g. 'auth.'."),
) -> list[dict[str, Any]]:
    """Audit entries, newest first, with their hashes. Reading the log is itself an audit entry."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    rows = [audit.entry_dict(e) for e in session.scalars(query)]
    audit.record_in(
        request.app.state.db, principal.actor, "audit.view", None, {"entries": len(rows), "action": action}
    )
    return rows


@router.get("/verify")
def api_audit_verify(session: SessionDep, principal: Auditor) -> dict[str, object]:
    """The chain check of ``radgate audit verify``: ``{"ok", "entries", "first_bad"}``."""
    return audit.verify_chain(session).to_json()
