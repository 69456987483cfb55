"""Opening the database: engine options per backend, and migrations to the newest revision (run explicitly:
``radgate init``, ``radgate db upgrade``; see :mod:`radgate.db.datadir`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from radgate.config import Settings
from radgate.db.revisions import (
    MIGRATIONS,
    head_versions,
    script_dependencies,
    script_heads,
    script_revisions,
)

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
# Alembic reports every connection and no-op upgrade at INFO; radgate logs the migrations it runs itself.
logging.getLogger("alembic").setLevel(logging.WARNING)

__all__ = [
    "MIGRATIONS",
    "Database",
    "alembic_config",
    "database_for",
    "make_engine",
    "open_database",
    "script_dependencies",
    "script_heads",
    "script_revisions",
]


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer. synchronous=FULL (the default): a commit is on disk when it
        # returns, which is what "acknowledged only after its row is committed" means across power loss.
        # NORMAL keeps commits safe against process crashes (kill -9) but not against power loss.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return on_connect


def make_engine(url: str, echo: bool = False, sqlite_synchronous: str = "FULL") -> Engine:
    if url.startswith("sqlite"):
        synchronous = sqlite_synchronous.upper()
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite_synchronous {sqlite_synchronous!r}: expected FULL or NORMAL.")
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas(synchronous))
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """An engine plus a session factory; ``session()`` is a transaction that commits on success."""

    def __init__(self, url: str, echo: bool = False, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, sqlite_synchronous=sqlite_synchronous)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest revision of every Alembic branch (no-op when up to date)."""
        if self.at_heads():
            return  # every command opens the database: skip loading Alembic and every table module
        from alembic import command

        cfg = alembic_config(self.url)
        log.debug("Migrating %s database to the newest revisions", self.backend)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")

    def at_heads(self) -> bool:
        """True when ``alembic_version`` holds exactly the heads of the migration scripts."""
        heads = head_versions()
        if heads is None:
            return False
        with self.engine.connect() as conn:  # a server that cannot be reached raises: it is not "empty"
            try:
                current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
            except DBAPIError:  # no alembic_version table yet: a new database
                return False
        return current == heads

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessionmaker() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(
    url: str, echo: bool = False, migrate: bool = True, sqlite_synchronous: str = "FULL"
) -> Database:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = Database(url, echo=echo, sqlite_synchronous=sqlite_synchronous)
    if migrate:
        db.migrate()
    return db


def database_for(settings: Settings, *, migrate: bool = False) -> Database:
    """Open the database a :class:`~radgate.config.Settings` names.

    By default the data directory must hold a radgate database at this radgate's migration heads, or a
    :class:`radgate.db.datadir.DataDirError` / :class:`~radgate.db.datadir.SchemaBehind` says what to run
    (``radgate init``, ``radgate db upgrade``): migrations are explicit. ``migrate=True`` (``radgate init``,
    ``radgate db upgrade``, ``radgate demo``, test fixtures) creates and migrates it instead.
    """
    if migrate:
        from radgate.db.datadir import upgrade

        upgrade(settings)
        return Database(
            settings.database_url,
            echo=settings.database.echo,
            sqlite_synchronous=settings.database.sqlite_synchronous,
        )
    from radgate.db.datadir import open_checked

    return open_checked(settings)
