"""DICOMweb routes (PS3.18): STOW-RS, QIDO-RS and WADO-RS retrieve under ``/dicomweb``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.dicomweb import (
    MultipartError,
    QidoError,
    parse_multipart_related,
    search_instances,
    search_series,
    search_studies,
    store_parts,
)
from radgate.dicomweb.upload import BodyRefused, SpooledBody, UploadLimits, spool_body
from radgate.dicomweb.wado import (
    RetrieveError,
    bulk_value,
    instance_frames,
    instance_metadata,
    instance_paths,
    multipart_body,
    negotiate_frames,
    octet_parts,
    parse_frame_numbers,
)
from radgate.web.deps import SessionDep, StoreDep
from radgate.web.errors import ApiError, error_response
from radgate.web.security import require

log = logging.getLogger(__name__)
router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"
Reader = Annotated[Principal, require(Permission.DICOMWEB_READ)]
Storer = Annotated[Principal, require(Permission.DICOMWEB_STORE)]
MAX_AUDITED_UIDS = 100


def _audit_view(
    request: Request,
    principal: Principal,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    required: bool = True,
) -> None:
    """Every access to patient-bearing data is an audit entry: who, what (UIDs, never names), when.

    A view that cannot be audited is not served (503). A store that already happened is answered as it
    happened (``required=False``): the failure to audit it is logged, never hidden behind a 500.
    """
    detail["client"] = request.client.host if request.client else None
    try:
        audit.record_in(request.app.state.db, principal.actor, action, target, detail)
    except SQLAlchemyError as exc:
        log.error(
            "audit entry %s for %s could not be written: %s", action, principal.actor, type(exc).__name__
        )
        if required:
            raise ApiError(
                503,
                "The audit log cannot be written (database unavailable or disk full); nothing is served "
                "until it can.",
            ) from exc


def _base_url(request: Request) -> str:
    """The service root for RetrieveURLs. Some clients (dicomweb-client) send a Host header without the
    port; then the port the request actually reached is added back."""
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    if host and server and ":" not in host.rsplit("]", 1)[-1] and server[1] not in (80, 443):
        host = f"{host}:{server[1]}"
    root = f"{request.url.scheme}://{host}" if host else str(request.base_url).rstrip("/")
    return root + request.scope.get("root_path", "") + "/dicomweb"


async def _stow_request(
    request: Request, store: StoreDep, study_uid: str | None, principal: Principal
) -> JSONResponse:
    """Stream the body to disk within server.max_request_bytes and the slow-client timeouts, then store."""
    from starlette.concurrency import run_in_threadpool

    limits = UploadLimits.from_settings(store.settings)
    try:
        body = await spool_body(request.stream(), store.tmp, limits, request.headers.get("content-length"))
    except BodyRefused as exc:
        response = error_response(exc.status, exc.message)
        response.headers["Connection"] = "close"  # the rest of the body is never read: end the connection
        return response
    except ClientDisconnect:  # the sender went away mid-body: nothing stored, nobody to answer
        return error_response(400, "The client disconnected before the request body was complete.")
    return await run_in_threadpool(_stow, request, store, body, study_uid, principal)


def _stow(
    request: Request, store: StoreDep, spooled: SpooledBody, study_uid: str | None, principal: Principal
) -> JSONResponse:
    with spooled:
        return _stow_parts(request, store, spooled, study_uid, principal)


def _stow_parts(
    request: Request, store: StoreDep, spooled: SpooledBody, study_uid: str | None, principal: Principal
) -> JSONResponse:
    try:
        part_type, parts = parse_multipart_related(request.headers.get("content-type", ""), spooled.buffer())
    except MultipartError as exc:
        raise ApiError(415, str(exc)) from exc
    if part_type and part_type.strip('"').lower() != "application/dicom":
        raise ApiError(415, f"multipart/related type {part_type!r} is not supported; use application/dicom.")
    if not parts:
        raise ApiError(400, "The request holds no parts.")
    client = request.client.host if request.client else None
    result = store_parts(store, parts, study_uid=study_uid, origin=client)
    studies = sorted({o.StudyInstanceUID for o in result.outcomes if o.ok and o.StudyInstanceUID})
    _audit_view(
        request,
        principal,
        "dicomweb.store",
        study_uid,
        {
            "parts": len(parts),
            "stored": sum(1 for o in result.outcomes if o.ok),
            "studies": studies[:MAX_AUDITED_UIDS],
        },
        required=False,
    )
    return JSONResponse(
        result.response(_base_url(request)).to_json_dict(),
        status_code=result.http_status,
        media_type=DICOM_JSON,
    )


@router.post("/studies")
async def stow_studies(request: Request, store: StoreDep, principal: Storer) -> JSONResponse:
    return await _stow_request(request, store, None, principal)


@router.post("/studies/{study_uid}")
async def stow_study(study_uid: str, request: Request, store: StoreDep, principal: Storer) -> JSONResponse:
    return await _stow_request(request, store, study_uid, principal)


STUDY_UID_TAG = "0020000D"


def _qido(
    request: Request, principal: Principal, level: str, target: str | None, result: list[dict[str, Any]]
) -> JSONResponse:
    uids = sorted(
        {str(r[STUDY_UID_TAG]["Value"][0]) for r in result if r.get(STUDY_UID_TAG, {}).get("Value")}
    )
    detail = {
        "level": level,
        "filters": sorted(request.query_params.keys()),  # the names only: values may be patient names
        "matches": len(result),
        "studies": uids[:MAX_AUDITED_UIDS],
    }
    _audit_view(request, principal, "dicomweb.search", target, detail)
    return JSONResponse(result, media_type=DICOM_JSON)


@router.get("/studies")
def qido_studies(request: Request, session: SessionDep, principal: Reader) -> JSONResponse:
    try:
        found = search_studies(session, dict(request.query_params), _base_url(request))
    except QidoError as exc:
        raise ApiError(400, str(exc)) from exc
    return _qido(request, principal, "studies", None, found)


@router.get("/studies/{study_uid}/series")
def qido_series(study_uid: str, request: Request, session: SessionDep, principal: Reader) -> JSONResponse:
    try:
        found = search_series(session, study_uid, dict(request.query_params), _base_url(request))
    except QidoError as exc:
        raise ApiError(400, str(exc)) from exc
    return _qido(request, principal, "series", study_uid, found)


@router.get("/studies/{study_uid}/series/{series_uid}/instances")
def qido_instances(
    study_uid: str, series_uid: str, request: Request, session: SessionDep, principal: Reader
) -> JSONResponse:
    try:
        params = dict(request.query_params)
        found = search_instances(session, study_uid, series_uid, params, _base_url(request))
    except QidoError as exc:
        raise ApiError(400, str(exc)) from exc
    return _qido(request, principal, "instances", series_uid, found)


def _retrieve(
    request: Request,
    principal: Principal,
    session: SessionDep,
    store: StoreDep,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> StreamingResponse:
    paths = instance_paths(session, store.blobs, study_uid, series_uid, sop_uid)
    what = sop_uid or series_uid or study_uid
    if not paths:
        raise ApiError(404, f"No stored instance matches {what}.")
    detail = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
    _audit_view(request, principal, "dicomweb.retrieve", what, {**detail, "instances": len(paths)})
    content_type, body = multipart_body(paths)
    return StreamingResponse(body, media_type=content_type)


@router.get("/studies/{study_uid}")
def wado_study(
    study_uid: str, request: Request, session: SessionDep, store: StoreDep, principal: Reader
) -> StreamingResponse:
    return _retrieve(request, principal, session, store, study_uid)


@router.get("/studies/{study_uid}/series/{series_uid}")
def wado_series(
    study_uid: str, series_uid: str, request: Request, session: SessionDep, store: StoreDep, principal: Reader
) -> StreamingResponse:
    return _retrieve(request, principal, session, store, study_uid, series_uid)


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}")
def wado_instance(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Reader,
) -> StreamingResponse:
    return _retrieve(request, principal, session, store, study_uid, series_uid, sop_uid)


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/rendered")
def wado_rendered(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Reader,
    window: str | None = None,
    viewport: str | None = None,
) -> Response:
    """PS3.18 rendered: the image as a PNG, at ``window=CENTER,WIDTH,LINEAR`` or its own default VOI,
    scaled to fit ``viewport=WIDTH,HEIGHT`` (aspect ratio kept, never enlarged) when given, or its source
    rectangle (``viewport=W,H,SX,SY,SW,SH``) scaled into it. Served from the rendered cache when it holds
    this instance revision at these parameters (:mod:`radgate.worklist.render_cache`); audited either way."""
    from radgate.imaging.decode import DecodeError, read_dataset
    from radgate.worklist.render import parse_viewport, parse_window, render_png
    from radgate.worklist.render_cache import RenderCache, newest_sha256, render_cache

    win = parse_window(window)
    fit = parse_viewport(viewport)
    sha = newest_sha256(session, study_uid, series_uid, sop_uid)  # before the file: see the cache put below
    if sha is None:
        raise ApiError(404, f"No stored instance matches {sop_uid}.")
    detail = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
    cache, key = render_cache(store.settings), RenderCache.key(win, fit)
    cached = cache.get(sop_uid, sha, key)
    if cached is None:  # the instance's file is opened (fetched, with an object store) only to render
        paths = instance_paths(session, store.blobs, study_uid, series_uid, sop_uid)
        if not paths:
            raise ApiError(404, f"No stored instance matches {sop_uid}.")
        try:
            png = render_png(
                read_dataset(paths[0]), win, max_bytes=store.settings.ingest.max_decoded_bytes, viewport=fit
            )
        except (DecodeError, ValueError) as exc:
            raise ApiError(422, f"Instance {sop_uid} cannot be rendered: {exc}") from exc
    else:
        png = cached
    # Kept only if no newer revision arrived since ``sha`` was read: the file rendered is then that
    # revision's (revisions only move forward), never a newer one's under the older name.
    if cached is None and newest_sha256(session, study_uid, series_uid, sop_uid) == sha:
        cache.put(sop_uid, sha, key, png)
    _audit_view(
        request,
        principal,
        "dicomweb.rendered",
        sop_uid,
        {**detail, "window": window, "viewport": viewport, "cache": "miss" if cached is None else "hit"},
    )
    return Response(png, media_type="image/png")


# --- metadata, frames, bulk data (what OHIF's DICOMweb data source and dicomweb-client ask for) ---


def _metadata(
    request: Request,
    principal: Principal,
    session: SessionDep,
    store: StoreDep,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> JSONResponse:
    from radgate.imaging.decode import DecodeError

    paths = instance_paths(session, store.blobs, study_uid, series_uid, sop_uid)
    what = sop_uid or series_uid or study_uid
    if not paths:
        raise ApiError(404, f"No stored instance matches {what}.")
    base = _base_url(request)
    try:
        body = [instance_metadata(p, base) for p in paths]
    except (DecodeError, ValueError, OSError) as exc:
        raise ApiError(422, f"The metadata of {what} cannot be read: {type(exc).__name__}") from exc
    detail = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
    _audit_view(request, principal, "dicomweb.metadata", what, {**detail, "instances": len(paths)})
    return JSONResponse(body, media_type=DICOM_JSON)


@router.get("/studies/{study_uid}/metadata")
def wado_study_metadata(
    study_uid: str, request: Request, session: SessionDep, store: StoreDep, principal: Reader
) -> JSONResponse:
    return _metadata(request, principal, session, store, study_uid)


@router.get("/studies/{study_uid}/series/{series_uid}/metadata")
def wado_series_metadata(
    study_uid: str, series_uid: str, request: Request, session: SessionDep, store: StoreDep, principal: Reader
) -> JSONResponse:
    return _metadata(request, principal, session, store, study_uid, series_uid)


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata")
def wado_instance_metadata(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Reader,
) -> JSONResponse:
    return _metadata(request, principal, session, store, study_uid, series_uid, sop_uid)


def _octets(
    request: Request,
    principal: Principal,
    session: SessionDep,
    store: StoreDep,
    uids: tuple[str, str, str],
    frames: str | None,
    bulk: str | None,
) -> Response:
    """Frames (``frames`` = "1,2") or one bulk data value (``bulk`` = its path) as octet-stream parts."""
    from radgate.imaging.decode import DecodeError, read_dataset

    study_uid, series_uid, sop_uid = uids
    paths = instance_paths(session, store.blobs, study_uid, series_uid, sop_uid)
    if not paths:
        raise ApiError(404, f"No stored instance matches {sop_uid}.")
    try:
        ds = read_dataset(paths[0])
        meta = getattr(ds, "file_meta", None)
        stored = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        answer = negotiate_frames(request.headers.get("accept"), stored)
        limit = store.settings.ingest.max_decoded_bytes
        if bulk is None:
            chunks = instance_frames(ds, parse_frame_numbers(frames or ""), answer, max_bytes=limit)
        else:
            chunks = bulk_value(ds, bulk, answer, max_bytes=limit)
    except RetrieveError as exc:
        raise ApiError(exc.status, str(exc)) from exc
    except DecodeError as exc:
        raise ApiError(422, f"Instance {sop_uid} cannot be read: {exc}") from exc
    detail: dict[str, Any] = {
        "StudyInstanceUID": study_uid,
        "SeriesInstanceUID": series_uid,
        "SOPInstanceUID": sop_uid,
    }
    detail["frames" if bulk is None else "bulkdata"] = frames if bulk is None else bulk
    _audit_view(
        request, principal, "dicomweb.frames" if bulk is None else "dicomweb.bulkdata", sop_uid, detail
    )
    if not answer.multipart and len(chunks) == 1:
        return Response(
            chunks[0], media_type=f"application/octet-stream; transfer-syntax={answer.transfer_syntax}"
        )
    content_type, body = octet_parts(chunks, answer.transfer_syntax)
    return Response(body, media_type=content_type)


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}")
def wado_frames(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frames: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Reader,
) -> Response:
    """PS3.18 10.4.1.1.3: frames as ``multipart/related; type="application/octet-stream"``."""
    return _octets(request, principal, session, store, (study_uid, series_uid, sop_uid), frames, None)


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/bulkdata/{path:path}")
def wado_bulkdata(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    path: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Reader,
) -> Response:
    """PS3.18 10.4.1.1.5: the value behind a BulkDataURI of the metadata (Pixel Data: every frame)."""
    return _octets(request, principal, session, store, (study_uid, series_uid, sop_uid), None, path)
