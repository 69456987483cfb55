"""Model packages as use cases: install, list, show, verify, remove.

``radgate models list`` reads a SQLite data directory without SQLAlchemy (:mod:`radgate.db.light`) once the
bundled packages are registered; everything else goes through the registry (:mod:`radgate.models.registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from radgate.db.light import ColumnKind, ReadQuery, light_reader
from radgate.models.installed import COLUMNS, InstalledModel, newest_first, unregistered_bundled

if TYPE_CHECKING:
    from radgate.config import Settings
    from radgate.config_sources import DatabaseLocation
    from radgate.db import Database
    from radgate.models.registry import VerifyReport

__all__ = ["MODEL_VERSIONS", "install", "list_installed", "remove", "show", "verify"]

_KINDS = {
    "id": ColumnKind.INTEGER,
    "synthetic": ColumnKind.BOOLEAN,
    "registered_at": ColumnKind.UTC_DATETIME,
    "finding_names": ColumnKind.JSON_TEXT,
}

#: Every installed version's row (:data:`radgate.models.installed.COLUMNS`), read without SQLAlchemy.
MODEL_VERSIONS = ReadQuery(
    "model_versions", tuple((name, _KINDS.get(name, ColumnKind.TEXT)) for name in COLUMNS)
)


def install(db: Database, settings: Settings, path: Path, by: str | None = None) -> InstalledModel:
    from radgate.models.registry import add_model

    with db.session() as s:
        return add_model(s, path, settings.data_dir, registered_by=by)


def list_installed(settings: DatabaseLocation) -> list[InstalledModel]:
    """Every installed version, by name then newest version first (the bundled demo model is registered
    first when present).

    A SQLite data directory whose bundled packages are registered is read with ``sqlite3``
    (:data:`MODEL_VERSIONS`); registering one, PostgreSQL, or a schema not at the heads go through the
    registry, which says what to run. ``settings`` may be :class:`radgate.config_sources.LightSettings`:
    all settings are validated only on the registry's path.
    """
    with light_reader(settings) as reader:
        if reader is not None:
            rows = reader.rows(MODEL_VERSIONS)
            if not unregistered_bundled({(r["name"], r["version"]) for r in rows}):
                return newest_first(InstalledModel.from_columns(r) for r in rows)
    from radgate.db import database_for
    from radgate.models.registry import ensure_default_models, list_models

    full = settings.full()
    db = database_for(full)
    try:
        with db.session() as s:
            ensure_default_models(s, full.data_dir)
            return list_models(s)
    finally:
        db.dispose()


def show(db: Database, name: str, version: str | None = None) -> InstalledModel:
    from radgate.models.registry import get_model

    with db.session() as s:
        return get_model(s, name, version)


def verify(db: Database, name: str | None = None, version: str | None = None) -> list[VerifyReport]:
    """Re-hash installed weights against the registered SHA-256 (one model, or every one)."""
    from radgate.models.registry import list_models, verify_model

    with db.session() as s:
        targets = [(name, version)] if name else [(m.name, m.version) for m in list_models(s)]
        return [verify_model(s, n, v) for n, v in targets]


def remove(db: Database, settings: Settings, name: str, version: str) -> InstalledModel:
    from radgate.models.registry import remove_model

    with db.session() as s:
        return remove_model(s, name, version, settings.data_dir)
