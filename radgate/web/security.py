"""Who is calling, and may they: the ``require(Permission.X)`` dependency every route declares.

Declaring a route::

    @router.get("/api/things", dependencies=[require(Permission.THINGS_READ)])
    def things(...): ...

    # or, to use the caller (for the audit log):
    def thing(principal: Annotated[Principal, require(Permission.THINGS_READ)]): ...

and ``dependencies=[public()]`` for the few routes anyone may call (``/healthz``, ``/login``).
``tests/test_auth_routes.py`` walks every route and fails on one that declares neither; it finds the
declaration by the ``radgate_permission`` attribute the dependency carries.

Credentials: ``Authorization: Bearer <token>`` (machine clients) or the ``radgate_session`` cookie (a
signed-in browser). A cookie-authenticated request that changes state (not GET/HEAD/OPTIONS) must carry the
session's CSRF token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header. No credentials: 401
(a browser asking for a page is sent to ``/login`` instead); credentials without the permission: 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts

from radgate.auth import Permission, Principal
from radgate.auth import service as auth
from radgate.auth.credentials import same
from radgate.errors import Forbidden, Unauthorized

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "LoginRedirect",
    "RouteDeclaration",
    "current_principal",
    "declared_permissions",
    "public",
    "require",
    "route_declarations",
]

SESSION_COOKIE = "radgate_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
PUBLIC = "public"


class LoginRedirect(Exception):  # noqa: N818 - a redirect, not an error
    """A browser asked for a page without signing in: send it to ``/login?next=...``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request) -> Principal | None:
    """The caller, from a bearer token or the session cookie; None when neither is valid."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    db = request.app.state.db
    token = _bearer(request)
    principal = None
    if token is not None:
        principal = auth.principal_from_token(db, token)
        if principal is None:
            raise Unauthorized(
                "The bearer token is unknown, revoked or expired; `radgate tokens create` makes one."
            )
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = auth.principal_from_session(db, cookie, request.app.state.settings.auth)
    request.state.principal = principal
    return principal


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


async def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or principal.csrf_token is None or not same(sent, principal.csrf_token):
        raise Forbidden("The CSRF token is missing or wrong; reload the page and try again.")


def require(permission: Permission) -> Any:
    """A dependency: the caller must be signed in (or hold a token) and have ``permission``."""

    async def dependency(request: Request) -> Principal:
        from starlette.concurrency import run_in_threadpool

        principal = await run_in_threadpool(current_principal, request)
        if principal is None:
            if _wants_page(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRedirect(quote(target, safe="/?=&"))
            raise Unauthorized("Sign in (/login) or send an API token as 'Authorization: Bearer <token>'.")
        if not principal.may(permission):
            raise Forbidden(
                f"{principal.username} ({principal.role.value}"
                f"{', token' if principal.token_id is not None else ''}) lacks permission {permission.value}."
            )
        await _check_csrf(request, principal)
        return principal

    dependency.radgate_permission = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.name.lower()}"
    return Depends(dependency)


def _public() -> None:
    return None


_public.radgate_permission = PUBLIC  # type: ignore[attr-defined]


def public() -> Any:
    """A dependency that declares a route open to anyone (it must return no patient data)."""
    return Depends(_public)


def declared_permissions(dependant: Any) -> set[Any]:
    """Every permission a route's dependency tree declares (``"public"`` for :func:`public`)."""
    found: set[Any] = set()
    stack = [dependant]
    while stack:
        dep = stack.pop()
        call: Callable[..., Any] | None = getattr(dep, "call", None)
        marker = getattr(call, "radgate_permission", None)
        if marker is not None:
            found.add(marker)
        stack.extend(getattr(dep, "dependencies", []))
    return found


@dataclass(frozen=True)
class RouteDeclaration:
    method: str
    path: str
    permissions: frozenset[Any]  # what the route's dependency tree declares; empty: nothing (a bug)
    is_api_route: bool  # False: a mount or plain Starlette route, which no dependency guards


def route_declarations(app: FastAPI) -> list[RouteDeclaration]:
    """Every (method, path) the app serves, with the permissions it declares (for the route-walk test)."""
    out = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        is_api = isinstance(original, APIRoute)
        dependant = getattr(context, "dependant", None) if is_api else None
        declared = frozenset(declared_permissions(dependant)) if dependant is not None else frozenset()
        for method in sorted((context.methods or {"*"}) - {"HEAD"}):
            out.append(RouteDeclaration(method, str(context.path), declared, is_api))
    return out
