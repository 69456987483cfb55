"""Every route declares a permission; every role gets exactly what ROLE_PERMISSIONS grants (401 / 403)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from radgate.auth import ROLE_PERMISSIONS, Permission, Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.web import create_app
from radgate.web.security import PUBLIC, RouteDeclaration, route_declarations
from tests.helpers.auth import bearer, make_token

# Routes open to anyone, on purpose: liveness, the sign-in form. Nothing else may be public.
EXPECTED_PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login")}


@pytest.fixture
def app_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, db, InstanceStore(settings, db))
    with TestClient(app) as client:
        yield client


def _routes(client: TestClient) -> list[RouteDeclaration]:
    routes = route_declarations(client.app)  # type: ignore[arg-type]
    plain = [f"{r.method} {r.path}" for r in routes if not r.is_api_route]
    assert plain == [], f"mounts / plain routes bypass the permission check: {plain}"
    assert len(routes) >= 15
    return routes


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1.2.826.0.1.3680043.10.543.999", path)


def test_every_route_declares_a_permission(app_client: TestClient) -> None:
    undeclared, ambiguous, public = [], [], set()
    for r in _routes(app_client):
        method, path, declared = r.method, r.path, r.permissions
        if not declared:
            undeclared.append(f"{method} {path}")
        elif len(declared) > 1:
            ambiguous.append(f"{method} {path}: {declared}")
        elif declared == {PUBLIC}:
            public.add((method, path))
    assert undeclared == [], f"routes that declare no permission (add Depends(require(...))): {undeclared}"
    assert ambiguous == []
    assert public == EXPECTED_PUBLIC


def test_route_walk_catches_a_route_without_a_declaration(app_client: TestClient) -> None:
    """The check above can fail: a route added without a declaration is found."""
    app = app_client.app

    @app.get("/api/forgotten")  # type: ignore[attr-defined, untyped-decorator]
    def forgotten() -> dict[str, bool]:
        return {"oops": True}

    missing = [r.path for r in _routes(app_client) if not r.permissions]
    assert missing == ["/api/forgotten"]


def test_every_role_has_a_row() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert all(Permission.PAGES_VIEW in perms for perms in ROLE_PERMISSIONS.values())


def test_role_by_route_matrix(app_client: TestClient, db: Database) -> None:
    tokens = {role: make_token(db, role) for role in Role}
    checked = 0
    for route in _routes(app_client):
        method, path = route.method, route.path
        (declared,) = route.permissions
        url = _concrete(path)
        anonymous = app_client.request(method, url, follow_redirects=False)
        if declared == PUBLIC:
            assert anonymous.status_code not in (401, 403), (method, path)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.status_code, anonymous.text)
        assert anonymous.json()["ok"] is False and anonymous.headers["www-authenticate"].startswith("Bearer")
        for role, token in tokens.items():
            r = app_client.request(method, url, headers=bearer(token), follow_redirects=False)
            if declared in ROLE_PERMISSIONS[role]:
                assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                assert declared in r.json()["error"]
            checked += 1
    assert checked >= 5 * 15


def test_a_scoped_token_gets_only_its_scopes(app_client: TestClient, db: Database) -> None:
    token = make_token(db, Role.ADMIN, "pacs", frozenset({Permission.DICOMWEB_STORE}))
    assert app_client.get("/dicomweb/studies", headers=bearer(token)).status_code == 403
    r = app_client.post("/dicomweb/studies", headers=bearer(token), content=b"x")
    assert r.status_code == 415  # past the permission check, refused for its content type


def test_a_browser_without_a_session_is_sent_to_sign_in(app_client: TestClient) -> None:
    r = app_client.get("/rejections?limit=5", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/rejections?limit=5"


def test_bad_bearer_token_is_401(app_client: TestClient) -> None:
    for value in ("rgt_not-a-token", "something-else"):
        r = app_client.get("/api/series", headers=bearer(value))
        assert r.status_code == 401 and "token" in r.json()["error"]
