"""Shared fixtures: settings in a temporary data directory, databases (SQLite and PostgreSQL), a gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from radgate.config import Settings, load_settings
from radgate.db import Database, open_database

os.environ.setdefault("TCP_NODELAY", "1")  # for DCMTK peers started by tests (see shared BENCHMARKS.md)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("RADGATE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.pg import PostgresCluster

    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _reset(db: Database) -> None:
    from radgate.db.tables import metadata

    md = metadata()
    with db.engine.begin() as conn:
        md.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend: the storage tests run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'radgate.sqlite'}"
        return
    url = request.getfixturevalue("postgres_url")
    db = Database(url)
    _reset(db)
    db.dispose()
    yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a data directory created as ``radgate init`` does (migrations are explicit)."""
    from tests.helpers.datadir import make_data_dir

    make_data_dir(tmp_path / "data")
    return load_settings(
        data_dir=tmp_path / "data",
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        assembly__quiet_period_s=0.5,
        assembly__poll_interval_s=0.1,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = open_database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def gateway(settings: Settings) -> Iterator[object]:
    """A running in-process gateway (DIMSE + HTTP on free ports, SQLite)."""
    from radgate.gateway import Gateway

    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.db.dispose()


@pytest.fixture
def admin_headers(gateway: object) -> dict[str, str]:
    """``Authorization: Bearer`` headers of an admin's token on the running gateway."""
    from radgate.auth import Role
    from tests.helpers.auth import token_headers

    return token_headers(gateway.db, Role.ADMIN)  # type: ignore[attr-defined]
