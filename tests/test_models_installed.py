"""`radgate models list`'s service: the sqlite3 read equals the registry's listing, and the bundled model is
still registered on first use (through the registry)."""

from __future__ import annotations

from pathlib import Path

from radgate.config import Settings
from radgate.db import open_database
from radgate.db.light import light_reader
from radgate.models import ModelPackage
from radgate.models.installed import BUNDLED_MODELS, COLUMNS, unregistered_bundled
from radgate.models.registry import list_models
from radgate.models.tables import ModelVersion
from radgate.services import models as models_service
from tests.helpers.models import install
from tests.test_engine_support import manifest_dict


def test_the_query_reads_every_column_an_installed_model_is_made_of() -> None:
    assert models_service.MODEL_VERSIONS.column_names == COLUMNS
    assert set(COLUMNS) <= set(ModelVersion.__table__.c.keys())


def _registry_listing(settings: Settings) -> list[object]:
    db = open_database(settings.database_url, migrate=False)
    with db.session() as s:
        listed: list[object] = list(list_models(s))
    db.dispose()
    return listed


def test_the_first_listing_registers_the_bundled_model(settings: Settings) -> None:
    bundled = ModelPackage.open(BUNDLED_MODELS[0]).manifest
    assert _registry_listing(settings) == []
    first = models_service.list_installed(settings)
    assert [(m.name, m.version, m.registered_by) for m in first] == [
        (bundled.name, bundled.version, "radgate (bundled)")
    ]
    assert unregistered_bundled({(m.name, m.version) for m in first}) == []
    assert models_service.list_installed(settings) == first == _registry_listing(settings)


def test_the_light_listing_equals_the_registry_one(tmp_path: Path, settings: Settings) -> None:
    """Several names and versions (pre-releases sort before their release), read both ways."""
    models_service.list_installed(settings)  # registers the bundled model
    db = open_database(settings.database_url, migrate=False)
    for name, version in [
        ("tiny-ptx", "1.0.0"),
        ("tiny-ptx", "1.10.0"),
        ("tiny-ptx", "1.10.0-rc.1"),
        ("a-ptx", "2.0.0"),
    ]:
        install(tmp_path, settings, db, manifest_dict(name, version))
    db.dispose()
    with light_reader(settings) as reader:
        assert reader is not None  # SQLite at the heads: the sqlite3 read
    light = models_service.list_installed(settings)
    tiny = [("tiny-ptx", "1.10.0"), ("tiny-ptx", "1.10.0-rc.1"), ("tiny-ptx", "1.0.0")]
    assert [(m.name, m.version) for m in light if m.name != "demo-pneumothorax"] == [
        ("a-ptx", "2.0.0"),
        *tiny,
    ]
    assert light == _registry_listing(settings)
    assert all(m.registered_at.utcoffset() is not None and isinstance(m.synthetic, bool) for m in light)
