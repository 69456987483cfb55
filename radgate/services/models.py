"""Model packages as use cases: install, list, show, verify, remove."""

from __future__ import annotations

from pathlib import Path

from radgate.config import Settings
from radgate.db import Database
from radgate.models.registry import (
    InstalledModel,
    VerifyReport,
    add_model,
    ensure_default_models,
    get_model,
    list_models,
    remove_model,
    verify_model,
)

__all__ = ["install", "list_installed", "remove", "show", "verify"]


def install(db: Database, settings: Settings, path: Path, by: str | None = None) -> InstalledModel:
    with db.session() as s:
        return add_model(s, path, settings.data_dir, registered_by=by)


def list_installed(db: Database, settings: Settings) -> list[InstalledModel]:
    """Every installed version (the bundled demo model is registered first when present)."""
    with db.session() as s:
        ensure_default_models(s, settings.data_dir)
        return list_models(s)


def show(db: Database, name: str, version: str | None = None) -> InstalledModel:
    with db.session() as s:
        return get_model(s, name, version)


def verify(db: Database, name: str | None = None, version: str | None = None) -> list[VerifyReport]:
    """Re-hash installed weights against the registered SHA-256 (one model, or every one)."""
    with db.session() as s:
        targets = [(name, version)] if name else [(m.name, m.version) for m in list_models(s)]
        return [verify_model(s, n, v) for n, v in targets]


def remove(db: Database, settings: Settings, name: str, version: str) -> InstalledModel:
    with db.session() as s:
        return remove_model(s, name, version, settings.data_dir)
