"""The review of one study: what the page shows (image at the model's window, region, heatmap) and the read.

The read is one of :class:`ReviewAction`:

- ``accept``: the AI's suggestion is right; the final read is the released flag (finding present when
  flagged, absent when not). Only a released result can be accepted.
- ``modify``: the radiologist states the finding present or absent and may move/resize the region.
- ``dismiss``: the AI's finding is rejected (finding absent), with an optional reason from
  :data:`DISMISS_REASONS`.

Each read becomes ground truth with source ``final_read`` (one row per study; a later read replaces the
label), a ``review_reads`` row (the history: action, label, region, reason, free text, the SR revision
written) and an audit entry in the same transaction (``review.accept`` ...); it closes the study's open
label requests. Validation and monitoring read ``ground_truth`` already. For a released result the read
goes into the verified SR revision as well (:mod:`radgate.results.review`).
"""

from __future__ import annotations

import base64
import enum
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.errors
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radgate import audit
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db.queries import newest_instances
from radgate.db.schema import Instance
from radgate.engine.tables import Prediction
from radgate.errors import Conflict, Invalid, NotFound
from radgate.models.tables import ModelVersion
from radgate.policy import Release
from radgate.results.review import MAX_TEXT
from radgate.storage import blobs_for
from radgate.validation.truth import record_label
from radgate.worklist.render import encode_png, header_window, window_param
from radgate.worklist.service import (
    FINAL_READ,
    VISIBLE,
    AIState,
    WorklistFilter,
    WorklistRow,
    study_row,
    worklist_rows,
)
from radgate.worklist.tables import ReviewRead

__all__ = [
    "DISMISS_REASONS",
    "SYNTHETIC_NOTICE",
    "ReadResult",
    "ReviewAction",
    "ReviewView",
    "neighbours",
    "record_read",
    "review_view",
]

SYNTHETIC_NOTICE = "synthetic demo model – not for clinical use"
DISMISS_REASONS = (
    "false positive",
    "artefact or device",
    "finding already known",
    "image quality",
    "other",
)


class ReviewAction(enum.StrEnum):
    ACCEPT = "accept"
    MODIFY = "modify"
    DISMISS = "dismiss"


Region = tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass(frozen=True)
class ReviewView:
    row: WorklistRow
    rows: int | None
    columns: int | None
    window_center: float | None
    window_width: float | None
    region: Region | None  # released only
    heatmap_png: str | None  # data: URL, released only
    synthetic: bool
    model_card: str | None  # the model's description from its card (manifest)
    threshold: float | None
    model_name: str | None = None  # of the visible (released or withheld) result shown
    model_version: str | None = None
    next_uid: str | None = None  # the studies before and after this one on the default worklist (j / k)
    prev_uid: str | None = None

    @property
    def window_param(self) -> str | None:
        """The ``window`` the page asks WADO-RS rendered for (the one string the pre-render uses too)."""
        if self.window_center is None or self.window_width is None:
            return None
        return window_param(self.window_center, self.window_width)


@dataclass(frozen=True)
class ReadResult:
    StudyInstanceUID: str
    action: ReviewAction
    label: int
    region: Region | None
    reason: str | None
    written: tuple[str, ...] = ()  # SOP Instance UIDs of the verified SR / GSPS revision queued for the PACS
    text: str | None = None  # the radiologist's free text


def _region(values: np.ndarray, rows: int, columns: int) -> Region | None:
    from radgate.results.sink import region_from_map

    corners = region_from_map(values, rows, columns)
    if corners is None:
        return None
    (left, top), _, (right, bottom), _ = corners
    return (left, top, right, bottom)


def _heatmap_url(values: np.ndarray) -> str:
    v = np.nan_to_num(values.astype(np.float32))
    hi = float(v.max()) if v.size else 0.0
    gray = (
        np.zeros(v.shape, dtype=np.uint8)
        if hi <= 0
        else np.rint(np.clip(v / hi, 0, 1) * 255).astype(np.uint8)
    )
    return "data:image/png;base64," + base64.b64encode(encode_png(gray)).decode("ascii")


@functools.lru_cache(maxsize=256)
def _overlay(path: str, mtime_ns: int, size: int, rows: int, columns: int) -> tuple[Region | None, str]:
    """The region outline and heatmap of one explanation map file (written once per prediction, so kept by
    its path, modification time and size: every view of a study does not load and encode it again)."""
    from radgate.inference.explain import ExplanationMap

    values = ExplanationMap.load(Path(path)).values
    return _region(values, rows, columns), _heatmap_url(values)


@functools.lru_cache(maxsize=256)
def _geometry(path: str, mtime_ns: int, size: int, max_bytes: int) -> tuple[int, int, float, float]:
    """Rows, columns and the model's window (center, width) of one instance file. The window is the VOI
    the model input was rendered with (radgate.imaging.display), from the header when it says (no decode
    of a 2048² image for two numbers). Kept by the file's path, modification time and size: an instance
    file is never rewritten (a revision is a new file), so every view of a study does not parse its header
    again. A file that cannot be read raises, and nothing is kept."""
    from radgate.imaging import to_display
    from radgate.imaging.decode import read_dataset

    header = pydicom.dcmread(path, stop_before_pixels=True)
    rows, columns = int(header.Rows), int(header.Columns)
    window = header_window(header)
    if window is None:
        display = to_display(read_dataset(path), max_bytes=max_bytes)
        window = (display.window_center, display.window_width)
    return rows, columns, float(window[0]), max(float(window[1]), 1.0)


def _prediction(session: Session, row: WorklistRow) -> Prediction | None:
    if row.SeriesInstanceUID is None:
        return None
    return session.scalars(
        select(Prediction)
        .where(
            Prediction.StudyInstanceUID == row.StudyInstanceUID,
            Prediction.SeriesInstanceUID == row.SeriesInstanceUID,
            Prediction.SOPInstanceUID == row.SOPInstanceUID,
            Prediction.policy.in_(VISIBLE),
        )
        .order_by(Prediction.urgency.desc(), Prediction.id)
    ).first()


def neighbours(rows: list[WorklistRow], study_uid: str) -> tuple[str | None, str | None]:
    """(next, previous) of ``study_uid`` among ``rows`` (a worklist in priority order), for the j / k keys.

    A study not on that worklist (read since, or filtered out) has the worklist's first study as its next."""
    order = [r.StudyInstanceUID for r in rows]
    if study_uid not in order:
        return (order[0] if order else None), None
    i = order.index(study_uid)
    return (order[i + 1] if i + 1 < len(order) else None), (order[i - 1] if i > 0 else None)


def review_view(
    session: Session, settings: Settings, study_uid: str, *, identity: bool, with_neighbours: bool = False
) -> ReviewView:
    """What the review page of ``study_uid`` shows. ``with_neighbours``: also the studies before and after
    it on the default worklist (one worklist query serves both the study's row and its neighbours)."""
    nxt = prev = None
    if with_neighbours:
        every = worklist_rows(
            session, WorklistFilter(status=None), identity=identity, default_site=settings.site
        )
        row = next((r for r in every if r.StudyInstanceUID == study_uid), None)
        if row is None:
            raise NotFound(f"Study {study_uid} is not on the worklist (unknown, or not yet assembled).")
        default = WorklistFilter()
        nxt, prev = neighbours([r for r in every if default.admits(r)], study_uid)
    else:
        row = study_row(session, study_uid, identity=identity, default_site=settings.site)
    rows = columns = None
    center = width = None
    region = None
    heatmap = None
    synthetic = False
    card = None
    threshold = None
    pred = _prediction(session, row)
    if row.SOPInstanceUID is not None:
        inst = session.scalars(
            newest_instances(str(row.SeriesInstanceUID)).where(Instance.SOPInstanceUID == row.SOPInstanceUID)
        ).first()
        if inst is not None:
            from radgate.imaging.decode import DecodeError

            try:
                path = blobs_for(settings).local_path(inst.path)
                file = os.stat(path)
                rows, columns, center, width = _geometry(
                    str(path), file.st_mtime_ns, file.st_size, settings.ingest.max_decoded_bytes
                )
            except (DecodeError, ValueError, AttributeError, OSError, pydicom.errors.InvalidDicomError):
                rows = columns = None
    if pred is not None:
        # The two columns of the registry row the page shows (not the whole parsed manifest); a model
        # removed since: no row, and the page still shows the result.
        model_row = session.execute(
            select(ModelVersion.synthetic, ModelVersion.description).where(
                ModelVersion.name == pred.model_name, ModelVersion.version == pred.model_version
            )
        ).first()
        if model_row is not None:
            synthetic = bool(model_row.synthetic)
            card = model_row.description or None
        if pred.policy == Release.RELEASED.value:
            threshold = pred.threshold
            if pred.explanation_path and rows and columns:
                path = Path(settings.data_dir) / pred.explanation_path
                try:
                    st = path.stat()
                except OSError:
                    st = None
                if st is not None:
                    region, heatmap = _overlay(str(path), st.st_mtime_ns, st.st_size, rows, columns)
    return ReviewView(
        row=row,
        rows=rows,
        columns=columns,
        window_center=center,
        window_width=width,
        region=region if row.ai is AIState.RELEASED else None,
        heatmap_png=heatmap if row.ai is AIState.RELEASED else None,
        synthetic=synthetic,
        model_card=card,
        threshold=threshold,
        model_name=pred.model_name if pred is not None else None,
        model_version=pred.model_version if pred is not None else None,
        next_uid=nxt,
        prev_uid=prev,
    )


def _parse_region(text: str | None) -> Region | None:
    if text in (None, ""):
        return None
    try:
        parts = [float(p) for p in str(text).split(",")]
    except ValueError:
        raise Invalid(f"region {text!r} must be LEFT,TOP,RIGHT,BOTTOM in image pixels.") from None
    if len(parts) != 4 or not all(np.isfinite(parts)) or parts[2] <= parts[0] or parts[3] <= parts[1]:
        raise Invalid(f"region {text!r} must be LEFT,TOP,RIGHT,BOTTOM with RIGHT > LEFT and BOTTOM > TOP.")
    return (parts[0], parts[1], parts[2], parts[3])


def record_read(
    session: Session,
    settings: Settings,
    actor: str,
    study_uid: str,
    action: str,
    *,
    present: str | None = None,
    region: str | None = None,
    reason: str | None = None,
    text: str | None = None,
    observer: str | None = None,
    writeback: bool = True,
) -> ReadResult:
    """Store the final read of ``study_uid`` (ground truth ``final_read``, a ``review_reads`` row with the
    free ``text``) and its audit entry (without the free text: it may name the patient).

    For a released result, also the VERIFIED SR (+ GSPS) revision with ``observer`` (PN, default the
    actor) as Verifying Observer, queued for the PACS in the same transaction
    (:func:`radgate.worklist.writeback.publish_review`).
    """
    try:
        act = ReviewAction(action)
    except ValueError:
        raise Invalid(f"action {action!r} is not known; use accept, modify or dismiss.") from None
    row = study_row(session, study_uid, identity=False, default_site=settings.site)
    reg = _parse_region(region)
    note = _parse_text(text)
    why: str | None = None
    if act is ReviewAction.ACCEPT:
        if row.ai is not AIState.RELEASED:
            raise Conflict(
                f"Study {study_uid} has no released AI result to accept; use modify to record the read."
            )
        label = int(row.flagged)
    elif act is ReviewAction.MODIFY:
        if present not in ("present", "absent"):
            raise Invalid(f"present {present!r} is not known; modify needs present or absent.")
        label = 1 if present == "present" else 0
    else:
        if reason not in (None, "") and reason not in DISMISS_REASONS:
            raise Invalid(f"reason {reason!r} is not known; use one of: {', '.join(DISMISS_REASONS)}.")
        why = reason or None
        label = 0
    now = utcnow()
    origin = f"review:{actor}:{act.value}"
    record_label(
        session, source=FINAL_READ, label=label, origin=origin, now=now, key="StudyInstanceUID",
        StudyInstanceUID=study_uid, SeriesInstanceUID=row.SeriesInstanceUID,
    )
    detail: dict[str, Any] = {
        "StudyInstanceUID": study_uid,
        "SeriesInstanceUID": row.SeriesInstanceUID,
        "ai": row.ai.value,
        "label": label,
    }
    if reg is not None:
        detail["region"] = list(reg)
    if why is not None:
        detail["reason"] = why
    if note is not None:
        detail["text_chars"] = len(note)  # the text itself is in review_reads and the SR, not the audit log
    written: list[str] = []
    sr_uid: str | None = None
    if row.ai is AIState.RELEASED and writeback:
        pred = _prediction(session, row)
        if pred is not None:
            from radgate.worklist.writeback import publish_review

            # The region drawn on the review page, else (accept) the AI's; none when the finding is absent
            stored = publish_review(
                session,
                settings,
                pred,
                observer=observer or actor,
                present=bool(label),
                region=reg,
                kind=act.value,
                reason=why,
                text=note,
            )
            written = [o.SOPInstanceUID for o in stored]
            sr_uid = next((o.SOPInstanceUID for o in stored if o.kind == "SR"), None)
            detail["written"] = written
    requests = close_label_requests(session, study_uid, row.SeriesInstanceUID)
    if requests:
        detail["label_requests"] = requests
    session.add(
        ReviewRead(
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=row.SeriesInstanceUID,
            action=act.value,
            label=label,
            region=json.dumps(list(reg)) if reg is not None else None,
            reason=why,
            text=note,
            actor=actor,
            sr_sop_uid=sr_uid,
            label_request_id=requests[0] if requests else None,
            created_at=now,
        )
    )
    audit.record(session, actor, f"review.{act.value}", study_uid, json.loads(json.dumps(detail)))
    return ReadResult(study_uid, act, label, reg, why, tuple(written), note)


def _parse_text(text: str | None) -> str | None:
    if text is None:
        return None
    value = str(text).strip()
    if len(value) > MAX_TEXT:
        raise Invalid(
            f"The free text is {len(value):,} characters; at most {MAX_TEXT:,} are kept. Shorten it."
        )
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise Invalid("The free text holds control characters; use plain text (line breaks are fine).")
    return value or None


def close_label_requests(session: Session, study_uid: str, series_uid: str | None) -> list[int]:
    """Mark the open label requests of this study (or its series) ``labelled``; their ids."""
    from radgate.learning.tables import LabelRequest

    where = LabelRequest.StudyInstanceUID == study_uid
    if series_uid is not None:
        where = or_(where, LabelRequest.SeriesInstanceUID == series_uid)
    rows = list(session.scalars(select(LabelRequest).where(where, LabelRequest.status == "open")))
    for r in rows:
        r.status = "labelled"
    return [r.id for r in rows]
