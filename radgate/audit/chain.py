"""The hash chain: each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON.

Canonical JSON (RFC 8785 in spirit, for the values radgate writes): keys sorted, no insignificant white
space, UTF-8, ``at`` as ISO 8601 UTC with microseconds. The first entry's previous hash is 64 zeros.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from radgate.clock import as_utc

__all__ = ["GENESIS", "canonical_detail", "canonical_entry", "entry_hash"]

GENESIS = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (Path, set, frozenset)):
        return sorted(value) if isinstance(value, (set, frozenset)) else str(value)
    raise TypeError(
        f"audit detail value {value!r} ({type(value).__name__}) is not JSON; pass str/int/float/list/dict"
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def canonical_detail(detail: dict[str, Any] | None) -> str:
    """The stored form of an entry's detail: a canonical JSON object (``{}`` when there is none)."""
    if detail is not None and not isinstance(detail, dict):
        raise TypeError(f"audit detail must be a dict, got {type(detail).__name__}")
    return _dumps(detail or {})


def canonical_entry(
    id: int, at: datetime, actor: str, action: str, target: str | None, detail_json: str
) -> str:
    """The bytes (as text) an entry's hash covers, built from its stored columns."""
    return _dumps(
        {
            "id": id,
            "at": as_utc(at).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json.loads(detail_json),
        }
    )


def entry_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
