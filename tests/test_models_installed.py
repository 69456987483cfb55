"""`radgate models list`'s service: the sqlite3 read equals the registry's listing, and the bundled model is
still registered on first use (through the registry); what the listing shows of a manifest is in the row
(written at registration, filled in by migration s6m_model_listing for older rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import open_database
from radgate.db.light import light_reader
from radgate.models import Manifest, ModelPackage, PackageError
from radgate.models.installed import BUNDLED_MODELS, COLUMNS, package_identity, unregistered_bundled
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


def test_the_listing_columns_are_the_manifests_findings_and_intended_use(
    tmp_path: Path, settings: Settings
) -> None:
    """What the registry writes in the row is what the manifest says; a two-finding model keeps its order."""
    two = manifest_dict("two-findings", "1.0.0")
    effusion = {
        **two["findings"][0],
        "name": "effusion",
        "code": {"scheme": "SCT", "value": "60046008", "meaning": "Pleural effusion"},
    }
    two["findings"] = [two["findings"][0], effusion]
    two["outputs"]["effusion"] = {"kind": "probability", "meaning": "P(effusion)", "calibrated": False}
    effusion["output"] = "effusion"
    models_service.list_installed(settings)
    db = open_database(settings.database_url, migrate=False)
    install(tmp_path, settings, db, two)
    db.dispose()
    listed = {m.name: m for m in models_service.list_installed(settings)}
    assert listed["two-findings"].finding_names == ("pneumothorax", "effusion")
    assert listed["two-findings"].intended_use_summary == "Adult PA/AP chest radiographs"
    for m in listed.values():
        assert m.finding_names == tuple(f.name for f in m.manifest.findings)
        assert m.intended_use_summary == m.manifest.intended_use.summary


def test_the_bundled_identity_is_read_without_the_schema(tmp_path: Path) -> None:
    """(name, version) from manifest.toml's [model] with tomllib equal the checked manifest's; a package
    whose manifest cannot be read that way counts as unregistered (registering it says what is wrong)."""
    bundled = ModelPackage.open(BUNDLED_MODELS[0]).manifest
    assert package_identity(BUNDLED_MODELS[0]) == (bundled.name, bundled.version)
    assert unregistered_bundled({(bundled.name, bundled.version)}) == []
    assert unregistered_bundled(set()) == [BUNDLED_MODELS[0]]
    broken = tmp_path / "broken" / "1.0.0"
    broken.mkdir(parents=True)
    (broken / "manifest.toml").write_text("[model\nname = 'x'\n", encoding="utf-8")
    untitled = tmp_path / "untitled" / "1.0.0"
    untitled.mkdir(parents=True)
    (untitled / "manifest.toml").write_text(
        "schema_version = 1\n[model]\nname = 'untitled'\n", encoding="utf-8"
    )
    assert package_identity(broken) is None and package_identity(untitled) is None
    assert unregistered_bundled(
        {("x", "1.0.0"), ("untitled", "")}, [broken, untitled, tmp_path / "none"]
    ) == [
        broken,
        untitled,
    ]


def test_a_broken_bundled_manifest_is_reported_by_the_registry(tmp_path: Path, settings: Settings) -> None:
    """The light check lets it through as unregistered; registering it checks it and names the file."""
    from radgate.models.registry import ensure_default_models

    broken = tmp_path / "broken" / "1.0.0"
    broken.mkdir(parents=True)
    (broken / "manifest.toml").write_text("[model\nname = 'x'\n", encoding="utf-8")
    (broken / "MODEL_CARD.md").write_text("# broken\n", encoding="utf-8")
    assert unregistered_bundled(set(), [broken]) == [broken]
    db = open_database(settings.database_url, migrate=False)
    match = r"manifest.toml in .*broken/1.0.0.*not valid TOML"
    with pytest.raises(PackageError, match=match), db.session() as s:
        ensure_default_models(s, settings.data_dir, [broken])
    db.dispose()


def test_the_manifest_is_parsed_on_first_use(settings: Settings) -> None:
    listed = models_service.list_installed(settings)
    assert listed and all("manifest" not in vars(m) for m in listed)
    assert listed[0].manifest.name == listed[0].name and "manifest" in vars(listed[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_fills_the_listing_columns_from_the_stored_manifest(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Rows registered before s6m_model_listing get the values the registry writes today; a stored manifest
    that is not TOML gets the defaults."""
    from alembic import command
    from sqlalchemy import text

    from radgate.db import Database
    from radgate.db.engine import alembic_config, script_dependencies, script_heads
    from tests.conftest import _reset

    url = (
        f"sqlite:///{tmp_path / 'radgate.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = Database(url)
    if backend == "postgresql":
        _reset(db)
    two = manifest_dict("two-findings", "1.0.0")
    two["findings"] = [two["findings"][0], {**two["findings"][0], "name": "effusion", "output": "effusion"}]
    two["outputs"]["effusion"] = {"kind": "probability", "meaning": "P(effusion)", "calibrated": False}
    manifest = Manifest.from_dict(two)
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in sorted((script_heads() or frozenset()) - script_dependencies() - {"s6m_model_listing"}):
            command.upgrade(cfg, head)
        insert = text(
            "INSERT INTO model_versions (name, version, task, description, synthetic, sha256, path, source, "
            "manifest, registered_at, registered_by) VALUES (:name, '1.0.0', 'triage', 'd', true, :sha, '/p', "
            "'/s', :manifest, '2026-12-01 10:00:00', 'test')"
        )
        conn.execute(insert, {"name": "two-findings", "sha": "0" * 64, "manifest": manifest.to_toml()})
        conn.execute(insert, {"name": "not-toml", "sha": "1" * 64, "manifest": "[model\n"})
    db.migrate()
    with db.session() as s:
        rows = {r.name: r for r in s.scalars(select(ModelVersion))}
        got = {n: (json.loads(r.finding_names), r.intended_use_summary) for n, r in rows.items()}
    db.dispose()
    assert got == {
        "two-findings": (["pneumothorax", "effusion"], manifest.intended_use.summary),
        "not-toml": ([], ""),
    }
    assert manifest.intended_use.summary == "Adult PA/AP chest radiographs"
