"""Browser sign-in: ``GET/POST /login`` (form fields ``username``, ``password``), ``POST /logout``, home.

The login form is protected against cross-site posting by a double-submit token: ``GET /login`` sets the
``radgate_login_csrf`` cookie and puts the same value in the form's ``csrf_token`` field. Cookies are
HttpOnly and SameSite=Strict, and Secure when radgate serves HTTPS.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from radgate.auth import Permission, Principal
from radgate.auth import service as auth
from radgate.auth.credentials import new_secret, same
from radgate.errors import Unauthorized
from radgate.web.pages import page
from radgate.web.security import SESSION_COOKIE, current_principal, public, require

router = APIRouter(tags=["sign-in"])
LOGIN_CSRF_COOKIE = "radgate_login_csrf"


def _safe_next(value: str | None) -> str:
    """Only a path on this site (``/...``, not ``//host``) is a place to return to after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _login_form(request: Request, next_url: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = new_secret()
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    if auth.count_users(request.app.state.db) == 0:
        message += (
            "<p>No users yet. On the server, create the first admin: "
            "<code>radgate users add NAME --role admin --password-stdin</code></p>"
        )
    body = f"""<h1>Sign in to radgate</h1>{message}
<form method="post" action="/login" id="login">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>"""
    response = HTMLResponse(page("sign in", body), status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse, dependencies=[public()])
def login_page(request: Request, next: str | None = None) -> Response:
    try:
        signed_in = current_principal(request)
    except Unauthorized:
        signed_in = None
    if signed_in is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, _safe_next(next))


@router.post("/login", response_class=HTMLResponse, dependencies=[public()])
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_url = _safe_next(next)
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf_token or not cookie_token or not same(csrf_token, cookie_token):
        return _login_form(request, next_url, "The sign-in form expired; please sign in again.", 403)
    settings = request.app.state.settings
    try:
        result = await run_in_threadpool(
            auth.sign_in, request.app.state.db, username, password, settings.auth, _client(request)
        )
    except Unauthorized as exc:
        return _login_form(request, next_url, exc.message, 401)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        result.cookie,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    request: Request, principal: Annotated[Principal, require(Permission.PAGES_VIEW)]
) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(auth.sign_out, request.app.state.db, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# The home page (``GET /``: what the signed-in role can do) is in radgate/web/pages.py.
