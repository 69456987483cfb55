"""Light reads: the read-only commands read a SQLite data directory with the standard library's ``sqlite3``.

Importing SQLAlchemy and the ORM tables takes longer than ``radgate series`` or ``radgate models list`` take
to do their work, so a service that only lists rows declares its query as a :class:`ReadQuery` (a table,
columns and their kinds, an order) and reads it through :func:`light_reader`. That answers a
:class:`LightReader` only when the data directory's database is SQLite and its schema is at this radgate's
heads (one query, the heads read by :mod:`radgate.db.revisions`); otherwise it answers None and the service
takes its SQLAlchemy path (PostgreSQL; or a schema that is empty, behind or ahead, which
:func:`radgate.db.database_for` then explains). A missing data directory is refused here as there.

The tables are declared once, as SQLAlchemy models: ``tests/test_db_light.py`` checks every declared
:class:`ReadQuery` against them (each column exists, with a type of its kind) and the rows against the
SQLAlchemy path's on the same database.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from radgate.db.datadir import check_dir, sqlite_path
from radgate.db.revisions import head_versions

if TYPE_CHECKING:
    from radgate.config_sources import DatabaseLocation

__all__ = ["ColumnKind", "LightReader", "ReadQuery", "light_reader"]


class ColumnKind(enum.Enum):
    """How a column's SQLite value becomes the value the SQLAlchemy column type hands back."""

    TEXT = "text"  # String, Text
    INTEGER = "integer"  # Integer, BigInteger
    BOOLEAN = "boolean"  # Boolean: 0/1 in SQLite
    UTC_DATETIME = "utc_datetime"  # radgate.clock.UTCDateTime: naive UTC text in SQLite, aware UTC in Python
    JSON_TEXT = "json_text"  # radgate.db.types.JSONText: the JSON document as text (TEXT in SQLite)

    def convert(self, value: Any) -> Any:
        if value is None:
            return None
        if self is ColumnKind.BOOLEAN:
            return bool(value)
        if self is ColumnKind.UTC_DATETIME:
            # SQLAlchemy's SQLite DATETIME text ("2026-12-03 08:11:14.123456"); naive means UTC
            # (radgate.clock.as_utc).
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return value


@dataclass(frozen=True)
class ReadQuery:
    """``SELECT columns FROM table ORDER BY ... LIMIT ?``, its rows as dicts keyed by column name."""

    table: str
    columns: tuple[tuple[str, ColumnKind], ...]
    order_by: tuple[tuple[str, bool], ...] = ()
    """(column, descending) pairs."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def sql(self) -> str:
        sql = f"SELECT {', '.join(_quoted(n) for n in self.column_names)} FROM {_quoted(self.table)}"
        if self.order_by:
            order = (_quoted(n) + (" DESC" if desc else "") for n, desc in self.order_by)
            sql += " ORDER BY " + ", ".join(order)
        return sql + " LIMIT ?"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class LightReader:
    """A read-only ``sqlite3`` connection to a data directory's database at this radgate's heads."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, query: ReadQuery, limit: int = -1) -> list[dict[str, Any]]:
        """The rows of ``query`` (all of them when ``limit`` is negative, as SQL's ``LIMIT -1``)."""
        names, kinds = query.column_names, [kind for _, kind in query.columns]
        return [
            {name: kind.convert(value) for name, kind, value in zip(names, kinds, row, strict=True)}
            for row in self._conn.execute(query.sql(), (limit,))
        ]


@contextmanager
def light_reader(settings: DatabaseLocation) -> Iterator[LightReader | None]:
    """A :class:`LightReader` for the database of ``settings``; None when it is not SQLite or its schema is
    not at the heads (take the SQLAlchemy path: it reads PostgreSQL and explains a schema to migrate).

    Refuses a missing data directory, or one without a database, as :func:`radgate.db.database_for` does.
    """
    path = sqlite_path(settings)
    if path is None:
        yield None
        return
    check_dir(settings)
    heads = head_versions()
    try:
        # mode=rw: never create a database file (check_dir found it; a race must not create an empty one).
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=30)
    except sqlite3.Error:
        yield None
        return
    try:
        conn.execute("PRAGMA query_only = ON")
        try:
            current = {str(r[0]) for r in conn.execute("SELECT version_num FROM alembic_version")}
        except sqlite3.Error:  # no alembic_version table: not a radgate schema
            current = set()
        yield LightReader(conn) if heads is not None and current == heads else None
    finally:
        conn.close()
