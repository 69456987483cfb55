"""``radgate users`` and ``radgate tokens``: the commands an admin runs, their JSON, their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

import radgate.cli as cli
from radgate.config import load_settings
from radgate.db import database_for
from radgate.ingest.store import InstanceStore
from radgate.web import create_app
from tests.helpers.auth import bearer, sign_in
from tests.helpers.datadir import make_data_dir

PASSWORD = "a long enough password"


def _run(data: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    cli.register_commands()
    make_data_dir(data)
    return CliRunner().invoke(cli.app, [*args, "--data-dir", str(data)], input=input)


def _err(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(result.stderr.split())  # Rich wraps long lines


def test_users_commands(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert "No users yet" in _run(data, "users", "list").stdout
    r = _run(data, "users", "add", "admin1", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0 and "can sign in" in r.stdout, r.output
    again = _run(data, "users", "add", "admin1", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert again.exit_code == 1 and "exists already" in _err(again) and "Traceback" not in again.output
    bad_role = _run(data, "users", "add", "x", "--role", "superuser")
    assert bad_role.exit_code == 2 and "radiologist, admin, director, data_scientist, auditor" in _err(bad_role)
    short = _run(data, "users", "add", "y", "--role", "auditor", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 12" in _err(short)
    assert _run(data, "users", "add", "pacs", "--role", "admin").exit_code == 0  # token-only (no tty)
    assert _run(data, "users", "set-role", "pacs", "radiologist").exit_code == 0
    assert _run(data, "users", "disable", "admin1").exit_code == 0
    users = {u["username"]: u for u in json.loads(_run(data, "users", "list", "--json").stdout)}
    assert users["pacs"]["role"] == "radiologist" and users["pacs"]["has_password"] is False
    assert users["admin1"]["disabled"] is True
    assert _run(data, "users", "enable", "admin1").exit_code == 0
    r = _run(data, "users", "reset-password", "admin1", "--password-stdin", input="another long password\n")
    assert r.exit_code == 0
    missing = _run(data, "users", "disable", "nobody")
    assert missing.exit_code == 1 and "radgate users list" in _err(missing)

    settings = load_settings(data_dir=data, environ={})
    db = database_for(settings)
    with TestClient(create_app(settings, db, InstanceStore(settings, db))) as client:
        assert sign_in(client, "admin1", PASSWORD).status_code == 401  # the old password is gone
        assert sign_in(client, "admin1", "another long password").status_code == 303
    db.dispose()


def test_tokens_commands(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert _run(data, "users", "add", "ohif", "--role", "radiologist").exit_code == 0
    r = _run(data, "tokens", "create", "--user", "ohif", "--scope", "dicomweb.read", "--name", "viewer", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert list(body) == ["token"] and body["token"].startswith("rgt_")
    beyond = _run(data, "tokens", "create", "--user", "ohif", "--scope", "users.manage")
    assert beyond.exit_code == 2 and "does not grant users.manage" in _err(beyond)
    unknown = _run(data, "tokens", "create", "--user", "ohif", "--scope", "everything")
    assert unknown.exit_code == 2 and "dicomweb.read" in _err(unknown)
    (info,) = json.loads(_run(data, "tokens", "list", "--json").stdout)
    assert info["user"] == "ohif" and info["scopes"] == ["dicomweb.read"] and body["token"] not in json.dumps(info)

    settings = load_settings(data_dir=data, environ={})
    db = database_for(settings)
    with TestClient(create_app(settings, db, InstanceStore(settings, db))) as client:
        assert client.get("/dicomweb/studies", headers=bearer(body["token"])).status_code == 200
        assert _run(data, "tokens", "revoke", str(info["id"])).exit_code == 0
        assert client.get("/dicomweb/studies", headers=bearer(body["token"])).status_code == 401
    db.dispose()
    (info,) = json.loads(_run(data, "tokens", "list", "--json").stdout)
    assert info["revoked_at"] is not None
    actions = [json.loads(line)["action"] for line in _run(data, "audit", "export", "--format", "jsonl").stdout.splitlines()]
    assert actions[:3] == ["user.add", "token.create", "dicomweb.search"] and "token.revoke" in actions
    assert "audit.export" not in actions  # an export never holds its own entry ...
    last = _run(data, "audit", "export", "--format", "json", "--action", "audit.")
    assert [e["action"] for e in json.loads(last.stdout)] == ["audit.export"]  # ... the next one does
