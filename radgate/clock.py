"""radgate's one clock: timezone-aware UTC, in code and in the database.

Every timestamp radgate makes comes from :func:`utcnow`. Database columns use :class:`UTCDateTime`, which
stores UTC (naive in SQLite, ``timestamptz`` on PostgreSQL) and always hands back an aware UTC datetime, so a
comparison never mixes naive and aware values and a local clock never leaks in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "as_utc", "utcnow"]


def utcnow() -> datetime:
    """Now, as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC; a naive value is taken to be UTC already (how radgate has always stored it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime column that accepts and returns aware UTC datetimes only."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime takes a datetime, got {type(value).__name__}")
        value = as_utc(value)  # naive: UTC already (values read from older rows, or from DICOM dates)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)
