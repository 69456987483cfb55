"""The informaticist's pages: home (what your role can do), models and model cards, deployments (mode,
readiness with its numbers, routing decisions with reasons, the mode change behind a confirmation), series
with their assembly status, the outbox and rejections. Server-rendered (Jinja2, templates/pages/), no
script needed; every view is audited (``pages.view``), every page sits behind ``require(Permission.X)``.

Read-only, except ``POST /deployments/{name}/mode``: the first post shows what the change means (and, for
``live``, the go-live checks); only the confirmed post changes the mode, through
:func:`radgate.services.deployments.set_deployment_mode` (the readiness gate applies; an override needs a
reason; the change is recorded with who and when, and audited).

:func:`page` is the frame the older hand-written pages share (banner, who is signed in, sign-out).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.errors import Conflict
from radgate.policy import Mode
from radgate.web.deps import DatabaseDep, SettingsDep
from radgate.web.security import require

__all__ = ["NOT_A_DEVICE", "SYNTHETIC_NOTE", "page", "router"]

NOT_A_DEVICE = "radgate is infrastructure for validating and monitoring AI. It is not a medical device."
SYNTHETIC_NOTE = (
    "Synthetic demo model — trained on synthetic phantoms, not for clinical use: its scores and results "
    "mean nothing about patients."
)

STYLE = """body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px;text-align:left}
.banner{background:#fff3cd;padding:8px;margin-bottom:1em}
.who{float:right;font-size:14px}.who form{display:inline}.error{color:#a00}
label{display:block;margin:.5em 0}"""


def page(title: str, body: str, principal: Principal | None = None) -> str:
    who = ""
    if principal is not None and principal.via == "session":
        who = (
            f'<div class="who" data-user="{html.escape(principal.username)}">'
            f"{html.escape(principal.username)} ({html.escape(principal.role.value)}) "
            f'<form method="post" action="/logout"><input type="hidden" name="csrf_token" '
            f'value="{html.escape(principal.csrf_token or "")}">'
            '<button type="submit">Sign out</button></form></div>'
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>radgate - {html.escape(title)}</title>
<style>{STYLE}</style></head><body>{who}
<div class="banner">{NOT_A_DEVICE}</div>
{body}</body></html>"""


# -- the pages ----------------------------------------------------------------------------------------------

router = APIRouter(tags=["pages"])
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "pages"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Section:
    """One place on the site: where, what it is for, and the permission it needs."""

    href: str
    title: str
    what: str
    permission: Permission


SECTIONS: tuple[Section, ...] = (
    Section(
        "/worklist",
        "Worklist",
        "studies ordered by AI urgency; open one to read and review it",
        Permission.WORKLIST_READ,
    ),
    Section(
        "/models",
        "Models",
        "installed models and their model cards (intended use, operating points)",
        Permission.PAGES_VIEW,
    ),
    Section(
        "/deployments",
        "Deployments",
        "each deployment's mode, go-live readiness with its numbers, recent routing decisions and why",
        Permission.DEPLOYMENTS_READ,
    ),
    Section("/series", "Series", "received series and their assembly status", Permission.INGEST_READ),
    Section(
        "/outbox", "Outbox", "results on their way to the PACS, sent or failing", Permission.DEPLOYMENTS_READ
    ),
    Section(
        "/rejections",
        "Rejections",
        "instances refused or quarantined at ingest, with the reason",
        Permission.INGEST_READ,
    ),
    Section(
        "/monitoring",
        "Monitoring",
        "the monthly dashboard: performance, drift, alerts",
        Permission.MONITORING_READ,
    ),
    Section("/api/audit", "Audit log", "who did what, newest first (JSON)", Permission.AUDIT_READ),
    Section("/docs", "API documentation", "the HTTP API (Swagger UI; ReDoc at /redoc)", Permission.API_DOCS),
)


def _nav(principal: Principal) -> list[tuple[str, str]]:
    return [("/", "Home")] + [(s.href, s.title) for s in SECTIONS if principal.may(s.permission)]


def _render(
    request: Request, principal: Principal, template: str, title: str, status: int = 200, **values: Any
) -> HTMLResponse:
    body = _templates.get_template(template).render(
        title=title,
        principal=principal,
        nav=_nav(principal),
        not_a_device=NOT_A_DEVICE,
        synthetic_note=SYNTHETIC_NOTE,
        page_id=template.removesuffix(".html"),
        **values,
    )
    return HTMLResponse(body, status_code=status)


def _viewed(request: Request, principal: Principal, target: str | None = None, **detail: Any) -> None:
    """Every page view is an audit entry: who looked at which page."""
    audit.record_in(
        request.app.state.db, principal.actor, "pages.view", target, {"path": request.url.path, **detail}
    )


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: Annotated[Principal, require(Permission.PAGES_VIEW)]) -> HTMLResponse:
    can = [s for s in SECTIONS if principal.may(s.permission)]
    cannot = [s for s in SECTIONS if not principal.may(s.permission)]
    if principal.may(Permission.DEPLOYMENTS_MANAGE):
        can.insert(
            3,
            Section(
                "/deployments",
                "Change a deployment's mode",
                "off, silent, shadow or live, behind a confirmation and the go-live checks",
                Permission.DEPLOYMENTS_MANAGE,
            ),
        )
    permissions = sorted(p.value for p in Permission if principal.may(p))
    _viewed(request, principal)
    return _render(request, principal, "home.html", "home", can=can, cannot=cannot, permissions=permissions)


@router.get("/models", response_class=HTMLResponse)
def models_page(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.PAGES_VIEW)],
) -> HTMLResponse:
    from radgate.services.overview import models_view

    views = models_view(db, settings)
    _viewed(request, principal, models=len(views))
    return _render(
        request,
        principal,
        "models.html",
        "models",
        models=views,
        any_synthetic=any(v.model.synthetic for v in views),
    )


def _markdown(text: str) -> Markup:
    """A model card (CommonMark + tables) as HTML; raw HTML in the card is shown as text, never run."""
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))  # noqa: S704


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
def model_page(
    name: str,
    version: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.PAGES_VIEW)],
) -> HTMLResponse:
    """The model card, rendered, with the manifest's intended use, findings and operating points."""
    from radgate.services.overview import model_view

    view = model_view(db, settings, name, version)  # an unknown one: NotFound, the one error shape (404)
    _viewed(request, principal, f"{name} {version}")
    return _render(
        request, principal, "model.html", f"{name} {version}", view=view, card_html=_markdown(view.card)
    )


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DEPLOYMENTS_READ)],
    changed: str | None = Query(None, description="A message after a mode change."),
) -> HTMLResponse:
    from radgate.services.overview import deployments_view

    views = deployments_view(db, settings)
    _viewed(request, principal, deployments=len(views))
    return _render(
        request,
        principal,
        "deployments.html",
        "deployments",
        views=views,
        changed=changed,
        modes=[m.value for m in Mode],
        can_manage=principal.may(Permission.DEPLOYMENTS_MANAGE),
    )


_CONSEQUENCE = {
    Mode.OFF: "Off: the model runs on nothing new; stored results stay.",
    Mode.SILENT: "Silent: the model runs and its results are stored, shown to no one and sent nowhere.",
    Mode.SHADOW: "Shadow: runs and stores like silent, for comparison beside another deployment.",
    Mode.LIVE: "Live: results within the validated subgroups are shown on the worklist and sent to the PACS.",
}


@router.post("/deployments/{name}/mode", response_class=HTMLResponse)
async def change_mode(
    name: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require(Permission.DEPLOYMENTS_MANAGE)],
    mode: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    override: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """First post: the confirmation (with the go-live checks for ``live``). Confirmed post: the change."""
    from radgate.services.deployments import deployment_readiness, set_deployment_mode, show

    deployment, _ = await run_in_threadpool(show, db, name)
    target = Mode.parse(mode)  # Invalid: the one error shape (400), naming the allowed modes
    verdict = None
    if target is Mode.LIVE and deployment.mode != Mode.LIVE.value:
        verdict = await run_in_threadpool(deployment_readiness, db, settings, name)
    error = None
    if confirm == "yes":
        try:
            change = await run_in_threadpool(
                lambda: set_deployment_mode(
                    db,
                    settings,
                    name,
                    target.value,
                    by=principal.actor,
                    note=note.strip() or None,
                    override=override.strip() or None,
                )
            )
        except Conflict as exc:
            error = exc.message
        else:
            message = f"{name} is now {change.deployment.mode}."
            if change.override:
                message += f" Readiness overridden: {change.override}"
            return RedirectResponse(f"/deployments?changed={quote(message)}#{name}", status_code=303)
    return _render(
        request,
        principal,
        "confirm_mode.html",
        f"change {name}",
        d=deployment,
        target=target.value,
        verdict=verdict,
        error=error,
        note=note,
        override=override,
        consequence=_CONSEQUENCE[target],
        status=409 if error else 200,
    )


@router.get("/series", response_class=HTMLResponse)
def series_page(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, require(Permission.INGEST_READ)],
    limit: int = Query(200, ge=1, le=10000),
) -> HTMLResponse:
    from radgate.services.overview import series_view

    rows, counts = series_view(db, limit)
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    _viewed(request, principal, rows=len(rows))
    return _render(request, principal, "series.html", "series", rows=rows, counts=counts, by_status=by_status)


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, require(Permission.DEPLOYMENTS_READ)],
    status: str | None = Query(None, description="pending, sending, sent or failed"),
    limit: int = Query(200, ge=1, le=10000),
) -> HTMLResponse:
    from radgate.services.overview import outbox_view

    view = outbox_view(db, status, limit)
    _viewed(request, principal, status=status, rows=len(view.items))
    return _render(
        request,
        principal,
        "outbox.html",
        "outbox",
        view=view,
        statuses=("pending", "sending", "sent", "failed"),
    )


@router.get("/rejections", response_class=HTMLResponse)
def rejections_page(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, require(Permission.INGEST_READ)],
    limit: int = Query(200, ge=1, le=10000),
) -> HTMLResponse:
    from radgate.services.overview import rejections_view

    rows = rejections_view(db, limit)
    _viewed(request, principal, rows=len(rows))
    return _render(request, principal, "rejections.html", "rejections", rows=rows)
