"""The audit log: the hash chain (SHA-256 over previous hash + canonical JSON), tamper detection on SQLite and
PostgreSQL, append-only on both, the application's PostgreSQL role limited to INSERT and SELECT, the CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text
from typer.testing import CliRunner

from radgate import audit
from radgate.audit.chain import GENESIS
from radgate.db import Database, open_database
from tests.helpers.datadir import make_data_dir


def _fill(db: Database, n: int = 5) -> None:
    with db.session() as s:
        for i in range(n):
            audit.record(s, "alice", "dicomweb.retrieve", f"1.2.3.{i}", {"instances": i, "note": "é"})


def test_hash_is_sha256_over_previous_hash_and_canonical_json(any_db_url: str) -> None:
    """Recomputed here with hashlib and json, independently of radgate.audit.chain."""
    db = open_database(any_db_url)
    try:
        _fill(db, 3)
        with db.session() as s:
            entries = list(audit.iter_entries(s))
        prev = GENESIS
        for n, e in enumerate(entries, start=1):
            body = {k: e[k] for k in ("id", "at", "actor", "action", "target", "detail")}
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            assert e["id"] == n and e["prev_hash"] == prev
            assert e["hash"] == hashlib.sha256((prev + canonical).encode()).hexdigest()
            prev = e["hash"]
        with db.session() as s:
            assert audit.verify_chain(s).to_json() == {"ok": True, "entries": 3, "first_bad": None}
    finally:
        db.dispose()


def test_an_edited_row_is_reported_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    db = open_database(f"sqlite:///{path}")
    _fill(db)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM audit_log WHERE id = 3")
    # Someone with the file drops the guard and edits row 3: verify names row 3.
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    con.commit()
    con.close()
    with db.session() as s:
        assert audit.verify_chain(s).to_json() == {"ok": False, "entries": 3, "first_bad": 3}
    db.dispose()


@pytest.mark.parametrize("any_db_url", ["postgresql"], indirect=True)
def test_an_edited_row_is_reported_on_postgresql(any_db_url: str) -> None:
    db = open_database(any_db_url)
    try:
        _fill(db)
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET target = 'x' WHERE id = 2"))
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
        # A superuser disables the trigger and edits the detail of row 2.
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER radgate_audit_append_only"))
            conn.execute(text("UPDATE audit_log SET detail = :d WHERE id = 2"), {"d": '{"instances":99}'})
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER radgate_audit_append_only"))
        with db.session() as s:
            assert audit.verify_chain(s).to_json() == {"ok": False, "entries": 2, "first_bad": 2}
    finally:
        db.dispose()


def test_a_cut_off_tail_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    db = open_database(f"sqlite:///{path}")
    _fill(db)
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE id >= 4")
    con.commit()
    con.close()
    with db.session() as s:
        result = audit.verify_chain(s)
    assert result.to_json() == {"ok": False, "entries": 3, "first_bad": 4} and "missing" in (result.reason or "")
    db.dispose()


def test_app_role_may_only_insert_and_select_on_postgresql(postgres_url: str) -> None:
    """The role that runs radgate (and its migrations) keeps INSERT and SELECT on audit_log, nothing more."""
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS radgate_roles"))
        conn.execute(text("DROP ROLE IF EXISTS radgate_app"))
        conn.execute(text("CREATE ROLE radgate_app LOGIN NOSUPERUSER"))
        conn.execute(text("CREATE DATABASE radgate_roles OWNER radgate_app"))
    admin.dispose()
    app_url = postgres_url.replace("postgres@", "radgate_app@").rsplit("/", 1)[0] + "/radgate_roles"
    db = open_database(app_url)
    try:
        _fill(db, 2)  # INSERT (and the head's UPDATE) work
        with db.engine.connect() as conn:
            privileges = {
                p: conn.execute(text(f"SELECT has_table_privilege('audit_log', '{p}')")).scalar()
                for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
            }
        assert privileges == {
            "SELECT": True,
            "INSERT": True,
            "UPDATE": False,
            "DELETE": False,
            "TRUNCATE": False,
            "REFERENCES": False,
            "TRIGGER": False,
        }
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"), db.engine.begin() as c:
                c.execute(text(statement))
        with db.session() as s:
            assert audit.verify_chain(s).ok and audit.verify_chain(s).entries == 2
    finally:
        db.dispose()


def test_concurrent_writers_keep_one_chain(any_db_url: str) -> None:
    import threading

    db = open_database(any_db_url)
    try:
        errors: list[BaseException] = []

        def write(k: int) -> None:
            try:
                for i in range(10):
                    with db.session() as s:
                        audit.record(s, f"user{k}", "test.write", str(i))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with db.session() as s:
            assert audit.verify_chain(s).to_json() == {"ok": True, "entries": 40, "first_bad": None}
    finally:
        db.dispose()


def test_cli_verify_and_export(tmp_path: Path) -> None:
    import radgate.cli as cli

    cli.register_commands()
    data = ["--data-dir", str(make_data_dir(tmp_path / "d"))]
    runner = CliRunner()
    r = runner.invoke(cli.app, ["users", "add", "dora", "--role", "auditor", "--password-stdin", *data],
                      input="a long enough password\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli.app, ["audit", "verify", "--json", *data])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"ok": True, "entries": 1, "first_bad": None}
    r = runner.invoke(cli.app, ["audit", "export", "--format", "json", *data])
    assert r.exit_code == 0, r.output
    (entry,) = json.loads(r.stdout)
    assert entry["action"] == "user.add" and entry["target"] == "dora" and entry["actor"].startswith("cli:")
    assert entry["detail"] == {"password": True, "role": "auditor"} and len(entry["hash"]) == 64
    con = sqlite3.connect(tmp_path / "d" / "radgate.sqlite")
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET target = 'eve' WHERE id = 1")
    con.commit()
    con.close()
    r = runner.invoke(cli.app, ["audit", "verify", "--json", *data])
    assert r.exit_code == 1 and json.loads(r.stdout) == {"ok": False, "entries": 1, "first_bad": 1}
    # and from a shell, as a SIEM job would run it
    out = subprocess.run(
        [str(Path(cli.__file__).parents[2] / ".venv" / "bin" / "radgate"), "audit", "export", "--format", "jsonl",
         *data], capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[0])["id"] == 1
