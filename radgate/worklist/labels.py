"""Label requests in the radiologist's UI: the cases active learning picked (``radgate learn queue``), shown
as "Label requests" on the worklist; labelling one records ground truth and closes the request.

A data scientist creates the requests (``label_requests``, status ``open``); a radiologist opens one from
the worklist's "Label requests" section, states the finding present or absent (optionally with free text),
and :func:`label_case` stores, in one transaction:

- ground truth with source ``radiologist`` (:data:`LABEL_SOURCE`) for the request's series and study (one
  row per UID and source, a later label replaces it), which ``learn queue``, validation and monitoring read;
- the request (and any other open request of the same series) marked ``labelled``;
- a ``review_reads`` row (action ``label``, with the request id and the free text);
- the audit entry ``review.label`` (UIDs, request id, label; never the free text).

What a radiologist sees of a request is the case, not the model's output: the request's deployment may be
silent or shadow, so its score and the strategy's reason (which quotes the score) are never shown; the
review page shows whatever the policy lets through for the study, as for any other study.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radgate import audit
from radgate.clock import utcnow
from radgate.db.schema import Study
from radgate.errors import Conflict, Invalid, NotFound
from radgate.validation.truth import record_label
from radgate.worklist.tables import ReviewRead

__all__ = ["LABEL_SOURCE", "LabelRequestRow", "LabelResult", "label_case", "open_label_requests"]

LABEL_SOURCE = "radiologist"
OPEN = "open"
LABELLED = "labelled"


@dataclass(frozen=True)
class LabelRequestRow:
    id: int
    StudyInstanceUID: str
    SeriesInstanceUID: str
    requested_at: datetime
    requested_by: str
    description: str | None
    patient_name: str | None  # only for callers with patient.identity
    patient_id: str | None


@dataclass(frozen=True)
class LabelResult:
    request_id: int
    StudyInstanceUID: str
    SeriesInstanceUID: str
    label: int
    closed: tuple[int, ...]  # every request this label closed (the same series may have been requested twice)


def open_label_requests(
    session: Session, *, identity: bool, study_uid: str | None = None
) -> list[LabelRequestRow]:
    """Open label requests of stored studies, oldest first (then by the queue's rank)."""
    from radgate.learning.tables import LabelRequest

    q = (
        select(LabelRequest, Study)
        .join(Study, Study.StudyInstanceUID == LabelRequest.StudyInstanceUID)
        .where(LabelRequest.status == OPEN)
        .order_by(LabelRequest.requested_at, LabelRequest.rank, LabelRequest.id)
    )
    if study_uid is not None:
        q = q.where(LabelRequest.StudyInstanceUID == study_uid)
    rows = []
    for req, study in session.execute(q):
        rows.append(
            LabelRequestRow(
                id=req.id,
                StudyInstanceUID=req.StudyInstanceUID,
                SeriesInstanceUID=req.SeriesInstanceUID,
                requested_at=req.requested_at,
                requested_by=req.requested_by,
                description=study.StudyDescription,
                patient_name=(study.PatientName or "") if identity else None,
                patient_id=(study.PatientID or "") if identity else None,
            )
        )
    return rows


def _truth(session: Session, now: datetime, label: int, origin: str, **uid: str | None) -> None:
    ((column, _),) = uid.items()
    record_label(session, source=LABEL_SOURCE, label=label, origin=origin, now=now, key=column, **uid)


def label_case(
    session: Session, actor: str, request_id: int, present: str | None, *, text: str | None = None
) -> LabelResult:
    """Record the radiologist's label for label request ``request_id`` and close it (see the module)."""
    from radgate.learning.tables import LabelRequest
    from radgate.worklist.review import _parse_text

    if present not in ("present", "absent"):
        raise Invalid(f"present {present!r} is not known; a label is present or absent.")
    req = session.get(LabelRequest, request_id)
    if req is None:
        raise NotFound(f"Label request {request_id} does not exist.")
    if req.status != OPEN:
        raise Conflict(f"Label request {request_id} is {req.status}, not open; nothing to label.")
    note = _parse_text(text)
    label = 1 if present == "present" else 0
    now = utcnow()
    origin = f"label-request:{request_id}:{actor}"
    _truth(session, now, label, origin, SeriesInstanceUID=req.SeriesInstanceUID)
    # the study-level row too: a study with one series requested is labelled as a whole
    series_requested = session.scalars(
        select(LabelRequest.SeriesInstanceUID).where(LabelRequest.StudyInstanceUID == req.StudyInstanceUID)
    ).all()
    if len(set(series_requested)) == 1:
        _truth(session, now, label, origin, StudyInstanceUID=req.StudyInstanceUID)
    same = list(
        session.scalars(
            select(LabelRequest).where(
                or_(LabelRequest.id == request_id, LabelRequest.SeriesInstanceUID == req.SeriesInstanceUID),
                LabelRequest.status == OPEN,
            )
        )
    )
    for r in same:
        r.status = LABELLED
    closed = tuple(sorted(r.id for r in same))
    session.add(
        ReviewRead(
            StudyInstanceUID=req.StudyInstanceUID,
            SeriesInstanceUID=req.SeriesInstanceUID,
            action="label",
            label=label,
            text=note,
            actor=actor,
            label_request_id=request_id,
            created_at=now,
        )
    )
    detail = {
        "StudyInstanceUID": req.StudyInstanceUID,
        "SeriesInstanceUID": req.SeriesInstanceUID,
        "label_request": request_id,
        "closed": list(closed),
        "label": label,
        "source": LABEL_SOURCE,
    }
    if note is not None:
        detail["text_chars"] = len(note)
    audit.record(session, actor, "review.label", req.StudyInstanceUID, detail)
    return LabelResult(request_id, req.StudyInstanceUID, req.SeriesInstanceUID, label, closed)
