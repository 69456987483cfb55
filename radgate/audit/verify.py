"""Checking the chain: every entry's hash, every link, no gap, and the head matching the last entry."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.audit.chain import GENESIS, canonical_entry, entry_hash
from radgate.audit.tables import AuditEntry, AuditHead

__all__ = ["VerifyResult", "verify_chain"]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad: int | None  # the id of the first entry that does not check out (or the first one missing)
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """The ``radgate audit verify --json`` contract: ``{"ok", "entries", "first_bad"}``."""
        return {"ok": self.ok, "entries": self.entries, "first_bad": self.first_bad}


def verify_chain(session: Session) -> VerifyResult:
    prev = GENESIS
    expected_id = 1
    count = 0
    query = select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
    for entry in session.scalars(query):
        count += 1
        if entry.id != expected_id:
            return VerifyResult(False, count, expected_id, f"entry {expected_id} is missing")
        if entry.prev_hash != prev:
            return VerifyResult(
                False, count, entry.id, f"entry {entry.id} does not link to entry {entry.id - 1}"
            )
        try:
            canonical = canonical_entry(
                entry.id, entry.at, entry.actor, entry.action, entry.target, entry.detail
            )
        except ValueError:
            return VerifyResult(False, count, entry.id, f"entry {entry.id} has a detail that is not JSON")
        if entry_hash(prev, canonical) != entry.hash:
            return VerifyResult(False, count, entry.id, f"entry {entry.id} was changed after it was written")
        prev = entry.hash
        expected_id += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_id != count or head.last_hash != prev):
        if head.last_id > count:
            return VerifyResult(False, count, count + 1, f"entries {count + 1}-{head.last_id} are missing")
        return VerifyResult(
            False, count, head.last_id or None, "the audit head does not match the last entry"
        )
    return VerifyResult(True, count, None)
