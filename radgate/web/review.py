"""``/review/{StudyInstanceUID}``: one study's image, the AI region and heatmap, and the read.

``GET`` (``worklist.read``): the image from WADO-RS rendered at the model's window, the region as an SVG
overlay, the heatmap behind a toggle ("rough guide, not proof"), score, operating point, model and the
synthetic-model notice; window/level by drag and presets; zoom. ``POST /review/{uid}/read``
(``review.write``, CSRF-protected like every cookie POST): ``action=accept|modify|dismiss`` (+ ``present``,
``region``, ``reason``, ``text``: free text) stores the final read
(:func:`radgate.worklist.review.record_read`), audited.
Released results only show a score; a withheld one says "AI not validated for this patient group".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.web.deps import DatabaseDep, SettingsDep
from radgate.web.pages import page
from radgate.web.security import require
from radgate.web.viewer import viewer_url
from radgate.web.worklist import templates
from radgate.worklist.review import DISMISS_REASONS, SYNTHETIC_NOTICE, record_read, review_view
from radgate.worklist.service import ReadStatus, WorklistFilter, worklist_rows

router = APIRouter(tags=["review"])
Reader = Annotated[Principal, require(Permission.WORKLIST_READ)]
Writer = Annotated[Principal, require(Permission.REVIEW_WRITE)]

STYLE = """<style>.viewer{position:relative;display:inline-block;overflow:hidden;background:#000;
width:min(70vw,900px);height:min(80vh,900px);cursor:crosshair}
.stage{position:absolute;left:0;top:0;transform-origin:0 0}
.stage img,.stage svg{position:absolute;left:0;top:0}
.heat{opacity:.45;mix-blend-mode:screen;image-rendering:pixelated}.side{display:inline-block;vertical-align:top;
margin-left:1em;max-width:28em}.not-validated{font-style:italic}.synthetic{color:#a00;font-weight:bold}
button[data-action]{font-size:16px;margin:.2em}</style>"""


def _neighbours(db: DatabaseDep, settings: SettingsDep, uid: str) -> tuple[str | None, str | None]:
    with db.session() as s:
        order = [r.StudyInstanceUID for r in worklist_rows(s, WorklistFilter(), default_site=settings.site)]
    if uid not in order:
        return (order[0] if order else None), None
    i = order.index(uid)
    nxt = order[i + 1] if i + 1 < len(order) else None
    prev = order[i - 1] if i > 0 else None
    return nxt, prev


@router.get("/review/{study_uid}", response_class=HTMLResponse)
def review_page(
    study_uid: str, request: Request, db: DatabaseDep, settings: SettingsDep, principal: Reader
) -> HTMLResponse:
    identity = principal.may(Permission.PATIENT_IDENTITY)
    with db.session() as s:
        view = review_view(s, settings, study_uid, identity=identity)
    nxt, prev = _neighbours(db, settings, study_uid)
    audit.record_in(
        db,
        principal.actor,
        "review.view",
        study_uid,
        {
            "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": view.row.SeriesInstanceUID,
            "ai": view.row.ai.value,
        },
    )
    body = templates.get_template("review.html").render(
        v=view,
        r=view.row,
        identity=identity,
        may_write=principal.may(Permission.REVIEW_WRITE),
        reasons=DISMISS_REASONS,
        synthetic_notice=SYNTHETIC_NOTICE,
        next_uid=nxt,
        prev_uid=prev,
        csrf=principal.csrf_token or "",
        read=view.row.status is ReadStatus.READ,
        ohif_url=viewer_url(study_uid) if principal.may(Permission.DICOMWEB_READ) else None,
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


__all__ = ["router"]
