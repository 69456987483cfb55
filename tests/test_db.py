"""Migrations create exactly the schema the ORM describes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from radgate.db import open_database
from radgate.db.tables import metadata


def test_migrations_match_models(any_db_url: str) -> None:
    db = open_database(any_db_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata())
        assert diff == [], f"schema drift between migrations and ORM: {diff}"
        db.migrate()  # idempotent
        assert "instances" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()
