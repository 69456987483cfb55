"""radgate.db.light: the light commands' sqlite3 reads agree with the SQLAlchemy tables and paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from radgate.config import Settings, load_settings
from radgate.db import Series, Study, open_database
from radgate.db.datadir import DataDirError, SchemaBehind
from radgate.db.light import ColumnKind, ReadQuery, light_reader
from radgate.db.tables import metadata
from radgate.ingest.status import series_status
from radgate.services import ingest as ingest_service
from tests.helpers.datadir import make_behind_data_dir
from tests.helpers.light import declared_queries, mismatches


def test_every_declared_query_reads_what_the_tables_declare() -> None:
    queries = declared_queries()
    assert "radgate.services.ingest.SERIES_STATUS" in queries
    md = metadata()
    for name, query in queries.items():
        assert mismatches(query, md) == [], name


def test_a_renamed_or_retyped_column_is_a_mismatch() -> None:
    """The check above fails when a table's column is renamed (or changes type) and a query still names it."""
    md = metadata()
    query = ingest_service.SERIES_STATUS
    renamed = ReadQuery(query.table, (*query.columns, ("num_instance", ColumnKind.INTEGER)), query.order_by)
    assert mismatches(renamed, md) == ["series.num_instance: no such column"]
    retyped = ReadQuery("series", (("last_received", ColumnKind.TEXT),), (("last_receive", True),))
    assert mismatches(retyped, md) == [
        "series.last_received: UTCDateTime is not read as TEXT",
        "series.last_receive (ORDER BY): no such column",
    ]


def _add_series(settings: Settings) -> None:
    db = open_database(settings.database_url, migrate=False)
    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    with db.session() as s:
        s.add(Study(StudyInstanceUID="1.2.1", first_received=t0, last_received=t0))
        s.flush()  # no relationship() tells the unit of work that the study goes first
        for i in range(5):
            s.add(
                Series(
                    SeriesInstanceUID=f"1.2.1.{i}",
                    StudyInstanceUID="1.2.1",
                    Modality="DX" if i % 2 else None,
                    num_instances=i,
                    expected_instances=i if i > 2 else None,
                    status="incomplete" if i == 4 else "receiving",
                    note="quiet period ended" if i == 4 else None,
                    reopened_count=i // 2,
                    first_received=t0,
                    last_received=t0 + timedelta(seconds=(7 * i) % 5, microseconds=i),
                )
            )
    db.dispose()


@pytest.mark.parametrize("limit", [50, 3, -1])
def test_series_rows_equal_the_sqlalchemy_ones(settings: Settings, limit: int) -> None:
    _add_series(settings)
    with light_reader(settings) as reader:
        assert reader is not None  # SQLite at the heads: the light path
    db = open_database(settings.database_url, migrate=False)
    with db.session() as s:
        expected = series_status(s, limit)
    db.dispose()
    assert len(expected) == (3 if limit == 3 else 5)
    assert ingest_service.series(settings, limit) == expected


def test_utc_datetime_reads_as_the_column_type_does(settings: Settings) -> None:
    """UTCDateTime's SQLite text becomes the same aware UTC datetime SQLAlchemy hands back."""
    _add_series(settings)
    query = ReadQuery(
        "series", (("SeriesInstanceUID", ColumnKind.TEXT), ("last_received", ColumnKind.UTC_DATETIME))
    )
    with light_reader(settings) as reader:
        assert reader is not None
        light = {r["SeriesInstanceUID"]: r["last_received"] for r in reader.rows(query)}
    db = open_database(settings.database_url, migrate=False)
    with db.session() as s:
        orm = {r.SeriesInstanceUID: r.last_received for r in s.query(Series)}
    db.dispose()
    assert light == orm and all(v.tzinfo is UTC for v in light.values())


def test_a_schema_behind_takes_the_checked_path(tmp_path: Path) -> None:
    data = make_behind_data_dir(tmp_path / "data")
    settings = load_settings(data_dir=data, environ={})
    with light_reader(settings) as reader:
        assert reader is None
    with pytest.raises(SchemaBehind, match="radgate db upgrade"):
        ingest_service.series(settings)


def test_a_missing_data_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "nowhere", environ={})
    with pytest.raises(DataDirError, match="radgate init"):
        ingest_service.series(settings)
    assert not (tmp_path / "nowhere").exists()


def test_a_database_without_radgate_schema_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "radgate.sqlite").write_bytes(b"")  # an empty SQLite file
    settings = load_settings(data_dir=tmp_path / "data", environ={})
    with pytest.raises(DataDirError, match="no radgate data directory"):
        ingest_service.series(settings)


def test_postgresql_takes_the_sqlalchemy_path(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, environ={"RADGATE_DATABASE_URL": "postgresql+psycopg://radgate@localhost/radgate"}
    )
    with light_reader(settings) as reader:
        assert reader is None


def test_reads_never_write(settings: Settings) -> None:
    with light_reader(settings) as reader:
        assert reader is not None
        with pytest.raises(Exception, match="readonly|read-only|query_only"):
            reader._conn.execute("DELETE FROM series")


def test_postgresql_lists_series_and_models_through_sqlalchemy(tmp_path: Path, postgres_url: str) -> None:
    """The same services answer on PostgreSQL (their SQLAlchemy path), the bundled model registered."""
    from radgate.db import Database, database_for
    from radgate.services import models as models_service
    from tests.conftest import _reset

    fresh = Database(postgres_url)
    _reset(fresh)
    fresh.dispose()
    settings = load_settings(data_dir=tmp_path, environ={"RADGATE_DATABASE_URL": postgres_url})
    database_for(settings, migrate=True).dispose()
    _add_series(settings)
    db = open_database(settings.database_url, migrate=False)
    with db.session() as s:
        expected = series_status(s, 3)
    db.dispose()
    assert len(expected) == 3 and ingest_service.series(settings, 3) == expected
    listed = models_service.list_installed(settings)
    assert listed == models_service.list_installed(settings)
    assert listed and all(m.registered_by == "radgate (bundled)" for m in listed)
