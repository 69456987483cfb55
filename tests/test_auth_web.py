"""Browser sign-in (cookies, CSRF, lock-out, idle timeout), tokens with dicomweb-client, offline API docs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from radgate.audit import AuditEntry, verify_chain
from radgate.auth import Role
from radgate.auth import service as auth
from radgate.auth.tables import WebSession
from radgate.clock import utcnow
from radgate.config import Settings, load_settings
from radgate.db import Database, open_database
from radgate.gateway import Gateway
from radgate.ingest.store import InstanceStore
from radgate.web import create_app
from tests.dicomgen import make_dx
from tests.helpers.auth import PASSWORD, bearer, make_token, make_user, page_csrf, sign_in


def _client(settings: Settings, db: Database) -> TestClient:
    return TestClient(create_app(settings, db, InstanceStore(settings, db)))


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_user(db, "alice", Role.ADMIN)
    with _client(settings, db) as client:
        yield client


def _actions(db: Database) -> list[tuple[str, str, str | None]]:
    with db.session() as s:
        return [(e.actor, e.action, e.target) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_sign_in_sets_a_strict_http_only_cookie_and_reaches_pages(web: TestClient, db: Database) -> None:
    r = sign_in(web, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("radgate_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path"} <= attributes and "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here; tests/test_auth_tls.py checks Secure under HTTPS
    home = web.get("/")
    assert home.status_code == 200 and 'data-user="alice"' in home.text and "not a medical device" in home.text
    assert web.get("/rejections").status_code == 200
    assert web.get("/api/series").status_code == 200
    assert ("alice", "auth.sign_in", "alice") in _actions(db)


def test_state_changes_from_a_session_need_the_csrf_token(web: TestClient, db: Database) -> None:
    sign_in(web, "alice")
    csrf = page_csrf(web.get("/").text)
    url = "/api/series/1.2.3/expected"
    refused = web.put(url, json={"count": 2})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert web.put(url, json={"count": 2}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert web.put(url, json={"count": 2}, headers={"X-CSRF-Token": csrf}).status_code == 404  # past CSRF
    assert web.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    out = web.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert web.get("/api/series").status_code == 401
    assert ("alice", "auth.sign_out", "alice") in _actions(db)


def test_login_form_needs_its_own_csrf_token(web: TestClient) -> None:
    r = web.post("/login", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "expired" in r.text
    assert web.get("/api/series").status_code == 401


def test_wrong_password_then_lock_out(settings: Settings, db: Database) -> None:
    settings.auth.lockout_attempts = 3
    make_user(db, "bob", Role.RADIOLOGIST)
    with _client(settings, db) as client:
        for _ in range(3):
            r = sign_in(client, "bob", "not the password at all")
            assert r.status_code == 401 and "wrong password" in r.text
        assert sign_in(client, "bob").status_code == 401  # locked: even the right password fails
        assert sign_in(client, "nobody-here").status_code == 401  # same answer for an unknown name
    details = _actions(db)
    assert ("system", "auth.lock", "bob") in details
    assert sum(1 for a in details if a[1] == "auth.sign_in_failed") == 5
    auth.enable_user(db, "bob", "test")  # an admin lifts the lock
    with _client(settings, db) as client:
        assert sign_in(client, "bob").status_code == 303


def test_idle_session_is_signed_out(settings: Settings, db: Database) -> None:
    settings.auth.session_idle_minutes = 10
    make_user(db, "carol", Role.DIRECTOR)
    with _client(settings, db) as client:
        assert sign_in(client, "carol").status_code == 303
        assert client.get("/").status_code == 200
        with db.session() as s:  # the browser was last seen 9 minutes ago: still signed in
            s.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=9)))
        assert client.get("/").status_code == 200
        with db.session() as s:  # and now 11 minutes ago (the last request refreshed it): signed out
            s.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=11)))
        assert client.get("/").status_code == 401
    assert any(a[1] == "auth.session_expired" for a in _actions(db))


def test_a_session_ends_after_its_maximum_age_even_when_used(settings: Settings, db: Database) -> None:
    make_user(db, "erin", Role.DATA_SCIENTIST)
    with _client(settings, db) as client:
        assert sign_in(client, "erin").status_code == 303
        with db.session() as s:
            s.execute(update(WebSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1)))
        assert client.get("/").status_code == 401


def test_next_only_goes_to_this_site(web: TestClient) -> None:
    token = page_csrf(web.get("/login").text)
    data = {"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}
    r = web.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_disabled_user_and_revoked_token_stop_working(web: TestClient, db: Database) -> None:
    token = make_token(db, Role.ADMIN, "alice")
    assert web.get("/api/series", headers=bearer(token)).status_code == 200
    (info,) = auth.list_tokens(db, "alice")
    auth.revoke_token(db, info.id, "test")
    assert web.get("/api/series", headers=bearer(token)).status_code == 401
    token = make_token(db, Role.ADMIN, "alice")
    auth.disable_user(db, "alice", "test")
    assert web.get("/api/series", headers=bearer(token)).status_code == 401
    assert sign_in(web, "alice").status_code == 401


def test_api_docs_are_offline_and_need_sign_in(web: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        assert web.get(path).status_code == 401, path
    assert web.get("/docs", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    sign_in(web, "alice")
    for path in ("/docs", "/redoc"):
        page = web.get(path).text
        assert "/docs/assets/" in page and "cdn" not in page.lower() and "https://" not in page, path
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = web.get(f"/docs/assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 100_000
    schema = web.get("/openapi.json").json()
    assert "/dicomweb/studies" in schema["paths"]


def test_dicomweb_client_with_and_without_a_token(gateway: Gateway) -> None:
    url = f"http://127.0.0.1:{gateway.http_port}/dicomweb"
    stranger = DICOMwebClient(url=url)
    with pytest.raises(requests.HTTPError) as refused:
        stranger.search_for_studies()
    assert refused.value.response.status_code == 401
    pacs = DICOMwebClient(url=url, headers=bearer(make_token(gateway.db, Role.ADMIN, "pacs")))
    study = "1.2.826.0.1.3680043.10.543.77"
    pacs.store_instances([make_dx(study, f"{study}.1", f"{study}.1.1")])
    viewer = DICOMwebClient(url=url, headers=bearer(make_token(gateway.db, Role.RADIOLOGIST, "ohif")))
    assert [s["0020000D"]["Value"][0] for s in viewer.search_for_studies()] == [study]
    assert viewer.retrieve_instance(study, f"{study}.1", f"{study}.1.1").SOPInstanceUID == f"{study}.1.1"
    with pytest.raises(requests.HTTPError) as forbidden:  # a radiologist's token cannot store
        viewer.store_instances([make_dx(study, f"{study}.1", f"{study}.1.2")])
    assert forbidden.value.response.status_code == 403
    actions = _actions(gateway.db)
    assert ("pacs/token:1", "dicomweb.store", None) in actions
    assert ("ohif/token:2", "dicomweb.search", None) in actions
    assert ("ohif/token:2", "dicomweb.retrieve", f"{study}.1.1") in actions
    with gateway.db.session() as s:
        assert verify_chain(s).ok


def test_serve_without_users_says_how_to_create_the_first_admin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path / "d", environ={}, server__dicom_port=0, server__http_port=0)
    db = open_database(settings.database_url)
    with caplog.at_level("WARNING"), Gateway(settings, db):
        pass
    assert "radgate users add NAME --role admin --password-stdin" in caplog.text
    db.dispose()


def test_auditor_reads_the_audit_log_over_http(web: TestClient, db: Database) -> None:
    assert sign_in(web, "alice", "wrong password here").status_code == 401
    token = make_token(db, Role.AUDITOR, "dora")
    entries = web.get("/api/audit", params={"action": "auth."}, headers=bearer(token)).json()
    assert [(e["action"], e["target"]) for e in entries] == [("auth.sign_in_failed", "alice")]
    assert entries[0]["detail"]["reason"] == "wrong password" and len(entries[0]["hash"]) == 64
    newest = web.get("/api/audit", params={"limit": 1}, headers=bearer(token)).json()
    assert newest[0]["action"] == "audit.view" and newest[0]["actor"] == "dora/token:1"  # reading is audited
    verdict = web.get("/api/audit/verify", headers=bearer(token)).json()
    assert verdict["ok"] is True and verdict["first_bad"] is None and verdict["entries"] >= 4
    assert web.get("/api/audit", headers=bearer(make_token(db, Role.RADIOLOGIST))).status_code == 403
