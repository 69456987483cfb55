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
