"""Data directories and explicit migrations.

A data directory holds the SQLite database (unless ``database.url`` names PostgreSQL), the instance store,
results and an optional ``radgate.toml``. ``radgate init DIR`` creates one, ``radgate db upgrade`` brings its
schema to the newest revisions; every other command opens it with :func:`open_checked`, which refuses a
directory that holds no radgate database (a typo in ``--data-dir`` must not silently create an empty one)
and a database whose schema is behind (or ahead of) this radgate's migrations. Nothing migrates implicitly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from radgate.db.revisions import head_versions, script_revisions
from radgate.errors import Conflict, Invalid

if TYPE_CHECKING:  # SQLAlchemy is imported by what opens the database, not by the check of the directory
    from radgate.config import Settings
    from radgate.config_sources import DatabaseLocation
    from radgate.db.engine import Database

__all__ = [
    "DataDirError",
    "DatabaseUnreachable",
    "check_dir",
    "InitResult",
    "SchemaBehind",
    "SchemaState",
    "SchemaStatus",
    "init_data_dir",
    "open_checked",
    "schema_status",
    "sqlite_path",
    "upgrade",
]

CONFIG_TEMPLATE = """\
# radgate configuration for this data directory (every key: docs/configuration.md).
# Uncomment and edit what you need; environment variables RADGATE_<SECTION>_<KEY> and flags override it.

# site = "default"
# log_level = "INFO"

# [database]
# url = ""  # empty: SQLite at DATA_DIR/radgate.sqlite; PostgreSQL: "postgresql+psycopg://user@host/radgate"

# [server]
# host = "127.0.0.1"
# ae_title = "RADGATE"
# dicom_port = 11112

# [inference]
# workers = 1

# [results]
# send_to = []  # "AET@HOST:PORT"

# [[deployments]]  # keys: docs/model-package.md
"""


class DataDirError(Invalid):
    """The data directory is missing, is not a directory, or cannot be created."""


class DatabaseUnreachable(Invalid):
    """The database server cannot be reached: not running, a wrong host or port, or credentials refused."""


def unreachable(url: str, exc: Exception) -> DatabaseUnreachable:
    """The one-line error for a connection that failed, naming the database (password hidden)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DatabaseUnreachable(
        f"cannot connect to the database {display_url(url)}: {reason}; check database.url "
        "(RADGATE_DATABASE_URL) and that the server is running"
    )


class SchemaBehind(Invalid):
    """The database's schema is not at this radgate's migration heads: ``radgate db upgrade`` first."""


class SchemaState(enum.StrEnum):
    EMPTY = "empty"  # no radgate schema at all
    BEHIND = "behind"  # migrations to apply
    AT_HEADS = "at_heads"
    AHEAD = "ahead"  # revisions this radgate does not know (a newer radgate migrated it)


@dataclass(frozen=True)
class SchemaStatus:
    current: frozenset[str]
    heads: frozenset[str]
    """What ``alembic_version`` holds once every migration ran (the heads, less those depended on)."""
    state: SchemaState


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    database: str
    """The database URL, password hidden."""
    wrote_config: bool


def display_url(url: str) -> str:
    """``url`` with its password hidden (for messages)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def schema_status(db: Database) -> SchemaStatus:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    heads = head_versions() or frozenset()
    try:
        conn = db.engine.connect()
    except DBAPIError as exc:  # the server, not the schema: never report it as an empty database
        raise unreachable(db.url, exc) from None
    with conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version"))
            current = frozenset(str(r[0]) for r in rows)
        except DBAPIError:  # no alembic_version table: nothing of radgate's here
            current = frozenset()
    if not current:
        state = SchemaState.EMPTY
    elif current - script_revisions():
        state = SchemaState.AHEAD
    elif current == heads:
        state = SchemaState.AT_HEADS
    else:
        state = SchemaState.BEHIND
    return SchemaStatus(current, heads, state)


def _check_dir(data_dir: Path, create: bool) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(f"data directory {data_dir} is a file, not a directory; name a directory")
    if create:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DataDirError(f"cannot create data directory {data_dir}: {reason}") from exc


def sqlite_path(settings: DatabaseLocation) -> Path | None:
    """The SQLite database file of ``settings``; None when the database is not SQLite."""
    url = settings.database_url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def _not_a_data_dir(data_dir: Path) -> DataDirError:
    return DataDirError(f"no radgate data directory at {data_dir}; create one with `radgate init {data_dir}`")


def check_dir(settings: DatabaseLocation) -> None:
    """Refuse a data directory that is a file, or (SQLite) holds no database file: opening SQLite would
    create an empty one."""
    _check_dir(settings.data_dir, create=False)
    sqlite = sqlite_path(settings)
    if sqlite is not None and not sqlite.is_file():
        raise _not_a_data_dir(settings.data_dir)


def open_checked(settings: Settings) -> Database:
    """Open the database of ``settings`` for a command: refuse a missing data directory and a schema that is
    not at this radgate's heads (never migrates)."""
    from radgate.db.engine import Database

    data_dir = settings.data_dir
    check_dir(settings)
    sqlite = sqlite_path(settings)
    db = Database(
        settings.database_url,
        echo=settings.database.echo,
        sqlite_synchronous=settings.database.sqlite_synchronous,
    )
    from sqlalchemy.exc import DBAPIError

    try:
        if db.at_heads():  # the common case, one query
            return db
    except DBAPIError as exc:  # no connection (a query error is a missing schema, inside at_heads)
        db.dispose()
        raise unreachable(settings.database_url, exc) from None
    status = schema_status(db)
    db.dispose()
    if status.state is SchemaState.EMPTY:
        if sqlite is not None:
            raise _not_a_data_dir(data_dir)
        raise SchemaBehind(
            f"the database {display_url(settings.database_url)} holds no radgate schema; "
            f"create it with `radgate db upgrade --data-dir {data_dir}`"
        )
    if status.state is SchemaState.AHEAD:
        raise SchemaBehind(
            f"the database {display_url(settings.database_url)} was migrated by a newer radgate "
            f"(revisions {', '.join(sorted(status.current - script_revisions()))} are unknown here); "
            "upgrade radgate"
        )
    raise SchemaBehind(
        f"the database {display_url(settings.database_url)} is behind this radgate "
        f"(at {', '.join(sorted(status.current))}; newest {', '.join(sorted(status.heads))}); "
        f"run `radgate db upgrade --data-dir {data_dir}`"
    )


def upgrade(settings: Settings) -> tuple[SchemaStatus, SchemaStatus]:
    """Migrate the database of ``settings`` to the newest revisions (creating it if needed);
    returns the status before and after."""
    from radgate.db.engine import open_database

    _check_dir(settings.data_dir, create=True)
    db = open_database(
        settings.database_url,
        echo=settings.database.echo,
        migrate=False,
        sqlite_synchronous=settings.database.sqlite_synchronous,
    )
    try:
        before = schema_status(db)
        if before.state is SchemaState.AHEAD:
            raise SchemaBehind(
                f"the database {display_url(settings.database_url)} was migrated by a newer radgate; "
                "upgrade radgate"
            )
        db.migrate()
        return before, schema_status(db)
    finally:
        db.dispose()


def init_data_dir(settings: Settings) -> InitResult:
    """Create the data directory of ``settings``: its database migrated to the heads, the instance store
    and a commented ``radgate.toml`` (kept if one is there). Refuses a directory that already holds a
    radgate database."""
    from radgate.db.engine import Database

    data_dir = settings.data_dir
    _check_dir(data_dir, create=True)
    sqlite = sqlite_path(settings)
    if sqlite is not None and sqlite.is_file():
        db = Database(settings.database_url)
        try:
            state = schema_status(db).state
        finally:
            db.dispose()
        if state is not SchemaState.EMPTY:
            raise Conflict(
                f"{data_dir} is already a radgate data directory; "
                f"`radgate db status --data-dir {data_dir}` shows its schema"
            )
    upgrade(settings)
    for sub in (settings.store_dir, settings.quarantine_dir):
        sub.mkdir(parents=True, exist_ok=True)
    config = data_dir / "radgate.toml"
    wrote = False
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
        wrote = True
    return InitResult(data_dir, display_url(settings.database_url), wrote)
