"""Ingest as use cases: import folders, list rejections and series, set a series' expected count.

Light on purpose: ``radgate series`` and ``radgate rejections`` load the database only (pydicom and numpy
are imported by :func:`import_files` alone), and ``radgate series`` reads a SQLite data directory without
SQLAlchemy (:mod:`radgate.db.light`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radgate.db.light import ColumnKind, ReadQuery, light_reader
from radgate.errors import Invalid

if TYPE_CHECKING:
    from radgate.config import Settings
    from radgate.config_sources import DatabaseLocation
    from radgate.db import Database
    from radgate.ingest.folder import ImportSummary

__all__ = ["count_files", "expect_instances", "import_files", "rejections", "series"]


def count_files(paths: Sequence[Path]) -> int:
    """How many files an import of ``paths`` will read (folders searched recursively)."""
    from radgate.ingest.folder import iter_files

    try:
        return sum(1 for _ in iter_files(paths))
    except FileNotFoundError as exc:
        raise Invalid(str(exc)) from exc


def import_files(
    settings: Settings,
    db: Database,
    paths: Sequence[Path],
    progress: Callable[[], None] | None = None,
) -> ImportSummary:
    """Store every DICOM file under ``paths`` (a bad file is rejected with its reason and the import goes
    on); ``progress`` is called once per file. Series are left ``receiving``: `radgate process` (or a
    running server) assembles and scores them."""
    from radgate.ingest import InstanceStore, import_paths

    store = InstanceStore(settings, db)
    try:
        return import_paths(store, paths, progress=(lambda *_: progress()) if progress else None)
    except FileNotFoundError as exc:
        raise Invalid(str(exc)) from exc


def rejections(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Recent rejections and quarantined instances, newest first (UIDs, sources and reasons only)."""
    from radgate.ingest.status import recent_rejections

    with db.session() as s:
        return recent_rejections(s, limit)


#: :func:`radgate.ingest.status.series_status`'s rows, read without SQLAlchemy.
SERIES_STATUS = ReadQuery(
    "series",
    (
        ("StudyInstanceUID", ColumnKind.TEXT),
        ("SeriesInstanceUID", ColumnKind.TEXT),
        ("Modality", ColumnKind.TEXT),
        ("num_instances", ColumnKind.INTEGER),
        ("expected_instances", ColumnKind.INTEGER),
        ("status", ColumnKind.TEXT),
        ("note", ColumnKind.TEXT),
        ("reopened_count", ColumnKind.INTEGER),
    ),
    order_by=(("last_received", True),),
)


def series(settings: DatabaseLocation, limit: int = 50) -> list[dict[str, Any]]:
    """Received series with their assembly status, most recent first.

    A SQLite data directory is read with ``sqlite3`` (:data:`SERIES_STATUS`); PostgreSQL, or a schema not at
    the heads, through SQLAlchemy (:func:`radgate.ingest.status.series_status`), which says what to run.
    ``settings`` may be :class:`radgate.config_sources.LightSettings`: all settings are validated only on
    the SQLAlchemy path.
    """
    with light_reader(settings) as reader:
        if reader is not None:
            return reader.rows(SERIES_STATUS, limit)
    from radgate.db import database_for
    from radgate.ingest.status import series_status

    db = database_for(settings.full())
    try:
        with db.session() as s:
            return series_status(s, limit)
    finally:
        db.dispose()


def expect_instances(db: Database, SeriesInstanceUID: str, count: int) -> None:
    """Record how many instances a series will have: it completes as soon as that many have arrived."""
    from radgate.assembly import set_expected

    try:
        set_expected(db, SeriesInstanceUID, count)
    except (LookupError, ValueError) as exc:  # a UID never received, or a count below 1: a bad argument
        raise Invalid(str(exc)) from exc
