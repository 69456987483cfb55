"""Users, tokens and browser sign-in for tests that call the HTTP API."""

from __future__ import annotations

import re

import httpx

from radgate.auth import Permission, Role
from radgate.auth import service as auth
from radgate.config import AuthSettings
from radgate.db import Database

PASSWORD = "correct horse battery staple"


def make_user(db: Database, username: str, role: Role, password: str | None = PASSWORD) -> auth.UserInfo:
    return auth.add_user(db, username, role, password, AuthSettings(), "test")


def make_token(
    db: Database, role: Role = Role.ADMIN, username: str | None = None, scopes: frozenset[Permission] = frozenset()
) -> str:
    """A user of ``role`` (named after it unless given) and a fresh token for it."""
    username = username or f"test-{role.value}"
    if username not in {u.username for u in auth.list_users(db)}:
        make_user(db, username, role, password=None)
    _, secret = auth.create_token(db, username, scopes, "test")
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_headers(db: Database, role: Role = Role.ADMIN) -> dict[str, str]:
    return bearer(make_token(db, role))


def login_csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in like a browser: fetch the form (and its CSRF cookie), post it; returns the POST's response."""
    token = login_csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )


def page_csrf(html: str) -> str:
    """The CSRF token a signed-in page carries (in its sign-out form)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)
