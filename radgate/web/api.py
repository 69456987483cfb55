"""The JSON API: health, rejections, series status, expected counts (the pages are in web/pages.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from radgate import __version__, audit
from radgate.assembly import set_expected
from radgate.auth import Permission, Principal
from radgate.ingest.status import ingest_counts, recent_rejections, series_status
from radgate.web.deps import DatabaseDep, SessionDep, SettingsDep
from radgate.web.errors import ApiError
from radgate.web.security import public, require

router = APIRouter()


@router.get("/healthz", dependencies=[public()])
def healthz(settings: SettingsDep, db: DatabaseDep, session: SessionDep) -> dict[str, Any]:
    return {
        "ok": True,
        "version": __version__,
        "database": db.backend,
        "ae_title": settings.server.ae_title,
        "counts": ingest_counts(session),
    }


@router.get("/api/rejections", dependencies=[require(Permission.INGEST_READ)])
def api_rejections(session: SessionDep, limit: int = Query(100, ge=1, le=10000)) -> list[dict[str, Any]]:
    return recent_rejections(session, limit)


@router.get("/api/series", dependencies=[require(Permission.INGEST_READ)])
def api_series(session: SessionDep, limit: int = Query(200, ge=1, le=10000)) -> list[dict[str, Any]]:
    return series_status(session, limit)


class ExpectedCount(BaseModel):
    count: int = Field(ge=1, description="How many instances the series will have.")


@router.put("/api/series/{series_uid}/expected")
def api_series_expected(
    series_uid: str,
    body: ExpectedCount,
    db: DatabaseDep,
    principal: Annotated[Principal, require(Permission.INGEST_MANAGE)],
) -> dict[str, Any]:
    """Tell the assembler how many instances a series will have (it completes as soon as they are in)."""
    try:
        set_expected(db, series_uid, body.count)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    audit.record_in(db, principal.actor, "series.set_expected", series_uid, {"count": body.count})
    return {"ok": True, "SeriesInstanceUID": series_uid, "expected_instances": body.count}


# The rejections page (``GET /rejections``) is in radgate/web/pages.py with the other pages.
