"""``/review/{StudyInstanceUID}``: one study's image, the AI region and heatmap, and the read.

``GET`` (``worklist.read``): the image from WADO-RS rendered at the model's window and at the size it is
shown (``viewport``: CSS pixels x devicePixelRatio, again larger on zoom), the region as an SVG
overlay, the heatmap behind a toggle ("rough guide, not proof"), score, operating point, model and the
synthetic-model notice; window/level by drag and presets; zoom. ``POST /review/{uid}/read``
(``review.write``, CSRF-protected like every cookie POST): ``action=accept|modify|dismiss`` (+ ``present``,
``region``, ``reason``, ``text``: free text) stores the final read
(:func:`radgate.worklist.review.record_read`), audited.
Released results only show a score; a withheld one says "AI not validated for this patient group".
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.web.deps import DatabaseDep, SettingsDep
from radgate.web.pages import page
from radgate.web.security import require
from radgate.web.viewer import viewer_url
from radgate.web.worklist import templates
from radgate.worklist.labels import label_case, open_label_requests
from radgate.worklist.render_cache import viewer_viewport
from radgate.worklist.review import (
    DISMISS_REASONS,
    SYNTHETIC_NOTICE,
    ReviewView,
    neighbours,
    record_read,
    review_view,
)
from radgate.worklist.service import ReadStatus, WorklistFilter, worklist_rows

router = APIRouter(tags=["review"])
Reader = Annotated[Principal, require(Permission.WORKLIST_READ)]
Writer = Annotated[Principal, require(Permission.REVIEW_WRITE)]
VIEWER_COOKIE = "radgate_viewer"  # the image box (CSS width,height,devicePixelRatio): viewer_viewport()

STYLE = """<style>.review{display:flex;flex-wrap:wrap;align-items:flex-start;gap:1em}
.viewer{--ar:5/4;position:relative;overflow:hidden;background:#000;cursor:crosshair;flex:none;
aspect-ratio:var(--ar);width:min(70vw,900px,calc(var(--ar)*min(80vh,900px)))}
.stage{position:absolute;left:0;top:0}
.stage img,.stage svg{position:absolute;left:0;top:0;width:100%;height:100%}
.heat{opacity:.45;mix-blend-mode:screen;image-rendering:pixelated}.side{flex:1 1 20em;max-width:28em}
.not-validated{font-style:italic}.synthetic{color:#a00;font-weight:bold}
button[data-action]{font-size:16px;margin:.2em}</style>"""


def _neighbours(db: DatabaseDep, settings: SettingsDep, uid: str) -> tuple[str | None, str | None]:
    with db.session() as s:
        return neighbours(worklist_rows(s, WorklistFilter(), default_site=settings.site), uid)


@router.get("/review/{study_uid}", response_class=HTMLResponse)
def review_page(
    study_uid: str, request: Request, db: DatabaseDep, settings: SettingsDep, principal: Reader
) -> HTMLResponse:
    identity = principal.may(Permission.PATIENT_IDENTITY)
    with db.session() as s:  # one read transaction: the study's row, its neighbours, its label requests
        view = review_view(s, settings, study_uid, identity=identity, with_neighbours=True)
        requests = (
            open_label_requests(s, identity=False, study_uid=study_uid)
            if principal.may(Permission.REVIEW_WRITE)
            else []
        )
    wanted = request.query_params.get("label_request")
    label_request = next((q for q in requests if str(q.id) == wanted), requests[0] if requests else None)
    audit.record_in(
        db,
        principal.actor,
        "review.view",
        study_uid,
        {
            "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": view.row.SeriesInstanceUID,
            "ai": view.row.ai.value,
            **({"label_request": label_request.id} if label_request else {}),
        },
    )
    body = templates.get_template("review.html").render(
        v=view,
        r=view.row,
        identity=identity,
        may_write=principal.may(Permission.REVIEW_WRITE),
        reasons=DISMISS_REASONS,
        synthetic_notice=SYNTHETIC_NOTICE,
        next_uid=view.next_uid,
        prev_uid=view.prev_uid,
        csrf=principal.csrf_token or "",
        read=view.row.status is ReadStatus.READ,
        ohif_url=viewer_url(study_uid) if principal.may(Permission.DICOMWEB_READ) else None,
        label_request=label_request,
        model_url=model_card_url(view),
        image_viewport=(
            viewer_viewport(view.rows, view.columns, request.cookies.get(VIEWER_COOKIE))
            if view.rows and view.columns
            else None
        ),
    )
    return HTMLResponse(page("review", STYLE + body, principal))


@router.post("/review/{study_uid}/read")
def review_read(
    study_uid: str,
    db: DatabaseDep,
    settings: SettingsDep,
    principal: Writer,
    action: Annotated[str, Form()],
    present: Annotated[str | None, Form()] = None,
    region: Annotated[str | None, Form()] = None,
    reason: Annotated[str | None, Form()] = None,
    text: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    with db.session() as s:
        result = record_read(
            s,
            settings,
            principal.actor,
            study_uid,
            action,
            present=present,
            region=region,
            reason=reason,
            text=text,
            observer=principal.username,
        )
    nxt, _ = _neighbours(db, settings, study_uid)
    return JSONResponse(
        {
            "StudyInstanceUID": result.StudyInstanceUID,
            "action": result.action.value,
            "label": result.label,
            "region": list(result.region) if result.region else None,
            "reason": result.reason,
            "text": result.text,
            "written": list(result.written),
            "next": nxt,
        }
    )


@router.post("/review/{study_uid}/label")
def review_label(
    study_uid: str,
    db: DatabaseDep,
    principal: Writer,
    request_id: Annotated[int, Form(alias="request")],
    present: Annotated[str | None, Form()] = None,
    text: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Label the case of an open label request: ground truth ``radiologist``, the request closed, audited."""
    from radgate.errors import Invalid

    with db.session() as s:
        from radgate.learning.tables import LabelRequest

        req = s.get(LabelRequest, request_id)
        if req is not None and req.StudyInstanceUID != study_uid:
            raise Invalid(f"Label request {request_id} is for another study, not {study_uid}.")
        result = label_case(s, principal.actor, request_id, present, text=text)
    return JSONResponse(
        {
            "request": result.request_id,
            "StudyInstanceUID": result.StudyInstanceUID,
            "SeriesInstanceUID": result.SeriesInstanceUID,
            "label": result.label,
            "closed": list(result.closed),
            "action": "label",
        }
    )


def model_card_url(view: ReviewView) -> str | None:
    """The model card page of the model behind the shown result (``/models/{name}/{version}``)."""
    if not view.model_name or not view.model_version:
        return None
    return f"/models/{quote(view.model_name, safe='')}/{quote(view.model_version, safe='')}"


__all__ = ["model_card_url", "router"]
