"""``GET /worklist``: the AI-ordered worklist (server-rendered), its rows, JSON and live events.

- ``/worklist``: the page; ``/worklist/rows``: the ``<tbody>`` rows alone (what the page re-fetches);
  ``/api/worklist``: the same rows as JSON; ``/worklist/events``: server-sent events, one ``worklist`` event
  whenever :func:`radgate.worklist.worklist_version` changes (a released or withheld result stored, a study
  assembled or read: silent and shadow results do not change it). Events carry the version token only.
  The stream stays open for clients that send ``Accept: text/event-stream`` (every EventSource does); others
  get the current version as one event. The version is polled every 0.2 s (one indexed ``max``/``count``
  query) rather than signalled by an engine sink, so results stored by another process count as well.
- "Label requests" (for callers with ``review.write``): the open requests of the annotation queue
  (``radgate learn queue``), each linking to its review page (:mod:`radgate.worklist.labels`).
- ``worklist.read`` for all; patient name and ID only with ``patient.identity``. Every view is audited
  (``worklist.view``, ``worklist.list``, ``worklist.events``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.web.deps import DatabaseDep, SettingsDep
from radgate.web.pages import page
from radgate.web.security import require
from radgate.worklist.labels import open_label_requests
from radgate.worklist.priority import (
    AGEING_POINTS_PER_MINUTE,
    URGENCY_POINTS,
    max_wait_behind_flagged_minutes,
)
from radgate.worklist.service import (
    WorklistFilter,
    WorklistRow,
    synthetic_models,
    worklist_rows,
    worklist_version,
)

router = APIRouter(tags=["worklist"])
Reader = Annotated[Principal, require(Permission.WORKLIST_READ)]
EVENT_POLL_S = 0.2
EVENT_KEEPALIVE_S = 15.0
EVENT_STREAM_S = 300.0  # the browser's EventSource reconnects by itself

STYLE = """<style>tr.flagged td.ai strong{color:#a00}tr.selected{outline:3px solid #06c;background:#eef5ff}
.not-validated{color:#555;font-style:italic}.band-high{font-weight:bold}
.filters label{display:inline;margin-right:1em}
.formula{font-size:13px;color:#444}.live{font-size:12px;color:#070}</style>"""


def _waiting(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
templates.filters["waiting"] = _waiting


def _filter(request: Request) -> WorklistFilter:
    q = request.query_params
    return WorklistFilter.parse(q.get("site"), q.get("modality"), q.get("status"), q.get("flagged"))


def _rows(
    db: Any, settings: Any, principal: Principal, flt: WorklistFilter
) -> tuple[list[WorklistRow], str, set[str]]:
    with db.session() as s:
        rows = worklist_rows(
            s, flt, identity=principal.may(Permission.PATIENT_IDENTITY), default_site=settings.site
        )
        return rows, worklist_version(s), synthetic_models(s, rows)


def _audit(
    db: Any,
    principal: Principal,
    action: str,
    request: Request,
    rows: list[WorklistRow],
    label_requests: list[int] | None = None,
) -> None:
    detail: dict[str, Any] = {
        "path": request.url.path,
        "filters": sorted(request.query_params.keys()),
        "studies": [r.StudyInstanceUID for r in rows[:100]],
    }
    if label_requests:
        detail["label_requests"] = label_requests[:100]
    audit.record_in(db, principal.actor, action, None, detail)


@router.get("/worklist", response_class=HTMLResponse)
def worklist_page(
    request: Request, db: DatabaseDep, settings: SettingsDep, principal: Reader
) -> HTMLResponse:
    flt = _filter(request)
    rows, version, synthetic = _rows(db, settings, principal, flt)
    identity = principal.may(Permission.PATIENT_IDENTITY)
    labels = []
    if principal.may(Permission.REVIEW_WRITE):  # who may label sees the requests
        with db.session() as s:
            labels = open_label_requests(s, identity=identity)
    _audit(db, principal, "worklist.view", request, rows, [r.id for r in labels])
    body = templates.get_template("worklist.html").render(
        labels=labels,
        rows=rows,
        flt=flt,
        status=request.query_params.get("status") or "awaiting",
        identity=identity,
        version=version,
        urgency_points=URGENCY_POINTS,
        ageing=AGEING_POINTS_PER_MINUTE,
        max_wait=max_wait_behind_flagged_minutes(),
        synthetic=sorted(synthetic),
    )
    return HTMLResponse(page("worklist", STYLE + body, principal))


@router.get("/worklist/rows", response_class=HTMLResponse)
def worklist_rows_fragment(
    request: Request, db: DatabaseDep, settings: SettingsDep, principal: Reader
) -> HTMLResponse:
    rows, _, _ = _rows(db, settings, principal, _filter(request))
    _audit(db, principal, "worklist.view", request, rows)
    identity = principal.may(Permission.PATIENT_IDENTITY)
    return HTMLResponse(templates.get_template("worklist_rows.html").render(rows=rows, identity=identity))


@router.get("/api/worklist")
def worklist_api(request: Request, db: DatabaseDep, settings: SettingsDep, principal: Reader) -> JSONResponse:
    rows, version, synthetic = _rows(db, settings, principal, _filter(request))
    _audit(db, principal, "worklist.list", request, rows)
    return JSONResponse(
        {"version": version, "rows": [r.to_json() for r in rows], "synthetic_models": sorted(synthetic)}
    )


def _version(db: Any) -> str:
    with db.session() as s:
        return worklist_version(s)


@router.get("/worklist/events")
async def worklist_events(request: Request, db: DatabaseDep, principal: Reader) -> StreamingResponse:
    await run_in_threadpool(
        audit.record_in, db, principal.actor, "worklist.events", None, {"path": request.url.path}
    )
    loop = asyncio.get_running_loop()
    # EventSource asks for text/event-stream; another client gets the current version once, then the end.
    follow = "text/event-stream" in request.headers.get("accept", "")

    async def stream() -> AsyncIterator[bytes]:
        last = await run_in_threadpool(_version, db)
        yield b"retry: 1000\n\n" + _event(last)
        if not follow:
            return
        started = idle = loop.time()
        while loop.time() - started < EVENT_STREAM_S:
            await asyncio.sleep(EVENT_POLL_S)
            if await request.is_disconnected():
                return
            version = await run_in_threadpool(_version, db)
            if version != last:
                last = version
                idle = loop.time()
                yield _event(version)
            elif loop.time() - idle > EVENT_KEEPALIVE_S:
                idle = loop.time()
                yield b": keep-alive\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(version: str) -> bytes:
    return f"event: worklist\ndata: {json.dumps({'version': version})}\n\n".encode()
