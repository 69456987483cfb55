"""The database: SQLAlchemy 2 engine and sessions, Alembic migrations, SQLite (WAL) or PostgreSQL.

The names below are imported on first use (PEP 562), so that a module of this package that needs no
SQLAlchemy (:mod:`radgate.db.revisions`, :mod:`radgate.db.light`, :mod:`radgate.db.datadir`'s checks) can be
imported without it: the light commands (``radgate series``, ``radgate models list``) read SQLite directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from radgate.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from radgate.db.engine import Database, database_for, open_database
    from radgate.db.schema import Base, Instance, Rejection, Series, Study

__all__ = ["Base", "Database", "Instance", "Rejection", "Series", "Study", "database_for", "open_database"]

_HOMES = {
    "Database": "radgate.db.engine",
    "database_for": "radgate.db.engine",
    "open_database": "radgate.db.engine",
    "Base": "radgate.db.schema",
    "Instance": "radgate.db.schema",
    "Rejection": "radgate.db.schema",
    "Series": "radgate.db.schema",
    "Study": "radgate.db.schema",
}


__getattr__ = lazy_exports(__name__, _HOMES)
