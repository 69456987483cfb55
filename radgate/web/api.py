"""The JSON API and the small operational pages (health, rejections)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from radgate import __version__
from radgate.assembly import set_expected
from radgate.ingest.status import ingest_counts, recent_rejections, series_status
from radgate.web.deps import DatabaseDep, SessionDep, SettingsDep
from radgate.web.errors import ApiError

router = APIRouter()

NOT_A_DEVICE = "radgate is infrastructure for validating and monitoring AI. It is not a medical device."


@router.get("/healthz")
def healthz(settings: SettingsDep, db: DatabaseDep, session: SessionDep) -> dict[str, Any]:
    return {
        "ok": True,
        "version": __version__,
        "database": db.backend,
        "ae_title": settings.server.ae_title,
        "counts": ingest_counts(session),
    }


@router.get("/api/rejections")
def api_rejections(session: SessionDep, limit: int = Query(100, ge=1, le=10000)) -> list[dict[str, Any]]:
    return recent_rejections(session, limit)


@router.get("/api/series")
def api_series(session: SessionDep, limit: int = Query(200, ge=1, le=10000)) -> list[dict[str, Any]]:
    return series_status(session, limit)


class ExpectedCount(BaseModel):
    count: int = Field(ge=1, description="How many instances the series will have.")


@router.put("/api/series/{series_uid}/expected")
def api_series_expected(series_uid: str, body: ExpectedCount, db: DatabaseDep) -> dict[str, Any]:
    """Tell the assembler how many instances a series will have (it completes as soon as they are in)."""
    try:
        set_expected(db, series_uid, body.count)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    return {"ok": True, "SeriesInstanceUID": series_uid, "expected_instances": body.count}


@router.get("/rejections", response_class=HTMLResponse)
def page_rejections(session: SessionDep, limit: int = Query(200, ge=1, le=10000)) -> str:
    rows = recent_rejections(session, limit)
    cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(r[k] or ''))}</td>"
            for k in ("at", "source", "calling_ae", "SOPInstanceUID", "status", "reason")
        )
        + "</tr>"
        for r in rows
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>radgate - rejections</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:14px;text-align:left}}
.banner{{background:#fff3cd;padding:8px;margin-bottom:1em}}</style></head><body>
<div class="banner">{NOT_A_DEVICE}</div>
<h1>Recent rejections and quarantine</h1><p>{len(rows)} shown, newest first.</p>
<table><tr><th>When (UTC)</th><th>Source</th><th>Calling AE</th><th>SOP Instance UID</th><th>Status</th>
<th>Reason</th></tr>{cells}</table></body></html>"""
