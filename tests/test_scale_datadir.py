"""Data directories and explicit migrations: `radgate init`, `radgate db upgrade|status`, and the refusals of
every other command (a missing data directory, a file, a schema that is behind)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import radgate.cli as cli
from radgate.config import load_settings
from radgate.db import database_for
from radgate.db.datadir import DataDirError, SchemaBehind, SchemaState, init_data_dir, schema_status
from radgate.db.engine import Database, script_dependencies, script_heads
from tests.helpers.datadir import make_behind_data_dir, make_data_dir

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cli(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    cli.register_commands()
    return runner.invoke(cli.app, list(args), env={"RADGATE_CONFIG": "", **(env or {})})


def _one_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_missing_data_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    typo = tmp_path / "radgate-dat"
    for args in (["series"], ["models", "list"], ["users", "list"], ["worker"], ["serve"], ["db", "status"]):
        result = _cli(*args, "--data-dir", str(typo))
        assert result.exit_code == 2, (args, result.output)
        line = _one_line(result)
        assert line == f"Error: no radgate data directory at {typo}; create one with `radgate init {typo}`", args
    assert not typo.exists()  # nothing was created


def test_radgate_data_dir_from_the_environment(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere"
    result = _cli("series", env={"RADGATE_DATA_DIR": str(missing)})
    assert result.exit_code == 2 and f"no radgate data directory at {missing}" in _one_line(result)
    data = make_data_dir(tmp_path / "d")
    assert _cli("series", "--json", env={"RADGATE_DATA_DIR": str(data)}).exit_code == 0
    assert _cli("init", env={"RADGATE_DATA_DIR": str(tmp_path / "new")}).exit_code == 0
    assert (tmp_path / "new" / "radgate.sqlite").is_file()


def test_a_file_as_data_directory_and_one_that_cannot_be_created(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    for args in (["series", "--data-dir", str(afile)], ["init", str(afile)], ["db", "upgrade", "--data-dir", str(afile)]):
        result = _cli(*args)
        assert result.exit_code == 2, args
        assert _one_line(result) == f"Error: data directory {afile} is a file, not a directory; name a directory"
    below_a_file = afile / "data"
    result = _cli("init", str(below_a_file))
    assert result.exit_code == 2
    assert _one_line(result).startswith(f"Error: cannot create data directory {below_a_file}: ")


def test_init_creates_a_data_directory_at_the_heads(tmp_path: Path) -> None:
    data = tmp_path / "site-a"
    result = _cli("init", str(data))
    assert result.exit_code == 0, result.output
    assert (data / "radgate.sqlite").is_file() and (data / "instances").is_dir()
    toml = (data / "radgate.toml").read_text()
    assert all(line.startswith("#") or not line.strip() for line in toml.splitlines())  # commented only
    settings = load_settings(data_dir=data, environ={})
    db = database_for(settings)  # opens without migrating: at the heads
    assert schema_status(db).state is SchemaState.AT_HEADS
    db.dispose()
    assert _cli("series", "--json", "--data-dir", str(data)).stdout.strip() == "[]"
    again = _cli("init", str(data))
    assert again.exit_code == 1 and "already a radgate data directory" in _one_line(again)


def test_the_commented_config_template_is_valid_once_uncommented(tmp_path: Path) -> None:
    """Every key in the template radgate init writes is a real setting (loading fails on an unknown key)."""
    data = make_data_dir(tmp_path / "d")
    lines = []
    for line in (data / "radgate.toml").read_text().splitlines():
        body = line.removeprefix("# ")
        if line.startswith("# ") and (body.startswith("[") or "=" in body.split("#")[0]):
            lines.append(body.split("  #")[0])
    config = tmp_path / "uncommented.toml"
    config.write_text("\n".join(lines) + "\n")
    settings = load_settings(config=config, environ={})
    assert settings.server.dicom_port == 11112 and settings.inference.workers == 1


def test_a_database_behind_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    data = make_behind_data_dir(tmp_path / "d")
    for args in (["series"], ["worker"], ["serve"]):
        result = _cli(*args, "--data-dir", str(data))
        assert result.exit_code == 2, (args, result.output)
        line = _one_line(result)
        assert "is behind this radgate" in line and f"run `radgate db upgrade --data-dir {data}`" in line
    status = _cli("db", "status", "--data-dir", str(data))
    assert status.exit_code == 1 and "state:    behind" in status.stdout
    upgraded = _cli("db", "upgrade", "--data-dir", str(data))
    assert upgraded.exit_code == 0 and "migrated from" in upgraded.stdout
    status = _cli("db", "status", "--data-dir", str(data))
    assert status.exit_code == 0 and "at_heads" in status.stdout
    heads = ", ".join(sorted((script_heads() or frozenset()) - script_dependencies()))
    assert f"heads:    {heads}" in status.stdout
    assert "already at the newest" in _cli("db", "upgrade", "--data-dir", str(data)).stdout


def test_a_database_ahead_is_refused(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "d")
    con = sqlite3.connect(data / "radgate.sqlite")
    con.execute("INSERT INTO alembic_version VALUES ('z999')")
    con.commit()
    con.close()
    result = _cli("series", "--data-dir", str(data))
    assert result.exit_code == 2 and "newer radgate" in _one_line(result) and "z999" in result.stderr


def test_services_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="radgate init"):
        database_for(load_settings(data_dir=tmp_path / "none", environ={}))
    data = make_behind_data_dir(tmp_path / "d")
    with pytest.raises(SchemaBehind, match="radgate db upgrade"):
        database_for(load_settings(data_dir=data, environ={}))
    db = database_for(load_settings(data_dir=data, environ={}), migrate=True)  # tests, init and demo
    assert db.at_heads()
    db.dispose()


def test_postgresql_without_schema_and_behind(postgres_url: str, tmp_path: Path) -> None:
    from tests.conftest import _reset

    reset = Database(postgres_url)
    _reset(reset)
    reset.dispose()
    settings = load_settings(data_dir=tmp_path / "d", environ={}, database__url=postgres_url)
    with pytest.raises(SchemaBehind, match="holds no radgate schema; create it with `radgate db upgrade"):
        database_for(settings)
    init_data_dir(settings)
    db = database_for(settings)
    assert schema_status(db).state is SchemaState.AT_HEADS
    db.dispose()


def test_serve_refuses_a_behind_database_in_a_real_process(tmp_path: Path) -> None:
    """The installed entry point: one line on stderr, exit 2, no traceback."""
    data = make_behind_data_dir(tmp_path / "d")
    result = subprocess.run(
        [sys.executable, "-m", "radgate", "serve", "--no-workers", "--data-dir", str(data), "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "60"},
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "radgate db upgrade" in lines[0], result.stderr
