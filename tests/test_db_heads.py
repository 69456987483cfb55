"""The start-up shortcut of Database.migrate: heads read from the scripts equal Alembic's own answer."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from radgate.db.engine import MIGRATIONS, alembic_config, open_database, script_heads


def test_script_heads_match_alembic() -> None:
    alembic_heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert script_heads() == frozenset(alembic_heads)
    assert (MIGRATIONS / "versions").is_dir()


def test_at_heads_only_after_migrating(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.sqlite'}", migrate=False)
    assert not db.at_heads()  # no alembic_version table: a new database
    db.migrate()
    assert db.at_heads()
    with db.engine.begin() as conn:  # a database one revision behind is not at the heads
        newest = conn.exec_driver_sql("SELECT MAX(version_num) FROM alembic_version").scalar_one()
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001' WHERE version_num = ?", (newest,))
    assert not db.at_heads()


def test_script_graph_matches_alembic() -> None:
    """Every revision and every depends_on read from the scripts' headers is Alembic's; the versions a
    database at the heads holds are what Alembic records after upgrading to "heads" (checked on a database
    by test_at_heads_only_after_migrating)."""
    from radgate.db.revisions import head_versions, script_dependencies, script_revisions

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = list(scripts.walk_revisions())
    assert script_revisions() == frozenset(r.revision for r in revisions)
    depended = {d for r in revisions for d in r._resolved_dependencies}  # depends_on, a str or a tuple
    assert script_dependencies() == frozenset(depended)
    assert head_versions() == frozenset(scripts.get_heads()) - frozenset(depended)


def test_a_header_with_a_computed_revision_defers_to_alembic() -> None:
    from radgate.db.revisions import _header

    assert _header('revision = "a1"\ndown_revision = ("b1", "c1")\n\ndef upgrade():\n    pass\n') is not None
    assert _header('revision = "a" + "1"\ndown_revision = None\n') is None
    multi = 'revision = "a1"\ndown_revision = None\ndepends_on = (\n    "x",\n    "y",\n)\n\n\ndef upgrade(): ...\n'
    header = _header(multi)
    assert header is not None and header.depends_on == {"x", "y"}


def test_an_unreachable_database_is_named_not_called_empty(tmp_path: Path) -> None:
    """A PostgreSQL URL with no server behind it used to read as "holds no radgate schema; create it with
    `radgate db upgrade`": the connection error was taken for a missing alembic_version table."""
    import socket

    import pytest

    from radgate.config import load_settings
    from radgate.db.datadir import DatabaseUnreachable, open_checked

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "data").mkdir()
    url = f"postgresql+psycopg://radgate:secret@127.0.0.1:{port}/radgate"
    settings = load_settings(data_dir=tmp_path / "data", environ={"RADGATE_DATABASE_URL": url})
    with pytest.raises(DatabaseUnreachable) as raised:
        open_checked(settings)
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "secret" not in message, message
    assert "db upgrade" not in message and "database.url" in message, message
