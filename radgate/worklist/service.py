"""The worklist service: typed rows for the studies awaiting a read, the change counter, final reads.

What a radiologist may see of a result is decided by the policy stage, stored on each prediction
(``predictions.policy``); this module only reads it:

- ``released``: the score, flag, finding, score band and model contribute (priority from ``urgency``);
- ``withheld``: the row says "AI not validated for this patient group", with no score, and no urgency;
- ``silent``, ``shadow``, ``off``: never read at all (every query here filters on the two visible values),
  so they cannot reach a page, an API response or an event.

Patient name and ID are filled in only for callers holding ``patient.identity``.
A study's read (accept / modify / dismiss on the review page) is stored as ground truth with source
``final_read`` (one row per study, a later read replaces the label) and audited by the caller.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.db.schema import Series, Study
from radgate.engine.tables import Prediction
from radgate.errors import Invalid, NotFound
from radgate.policy import Release
from radgate.validation.tables import GroundTruth
from radgate.worklist.priority import priority

__all__ = [
    "FINAL_READ",
    "NOT_VALIDATED",
    "VISIBLE",
    "AIState",
    "ReadStatus",
    "WorklistFilter",
    "WorklistRow",
    "score_band",
    "synthetic_models",
    "visible_predictions",
    "worklist_rows",
    "worklist_version",
]

FINAL_READ = "final_read"
NOT_VALIDATED = "AI not validated for this patient group"
VISIBLE = (Release.RELEASED.value, Release.WITHHELD.value)
READABLE_STUDY_STATUSES = ("complete", "reopened")


class AIState(enum.StrEnum):
    NONE = "none"  # no result a radiologist may see (none run, or silent/shadow)
    RELEASED = "released"
    WITHHELD = "withheld"


class ReadStatus(enum.StrEnum):
    AWAITING = "awaiting"
    READ = "read"


@dataclass(frozen=True)
class WorklistFilter:
    site: str | None = None
    modality: str | None = None
    status: ReadStatus | None = ReadStatus.AWAITING  # None: every study
    flagged_only: bool = False

    @classmethod
    def parse(
        cls, site: str | None, modality: str | None, status: str | None, flagged: str | None
    ) -> WorklistFilter:
        st: ReadStatus | None
        if status in (None, ""):
            st = ReadStatus.AWAITING
        elif status == "all":
            st = None
        else:
            try:
                st = ReadStatus(status)
            except ValueError:
                raise Invalid(f"status {status!r} is not known; use awaiting, read or all.") from None
        if flagged not in (None, "", "0", "1", "true", "false"):
            raise Invalid(f"flagged {flagged!r} is not known; use 1 (flagged only) or 0.")
        return cls(
            site=site or None,
            modality=(modality or None) and str(modality).upper(),
            status=st,
            flagged_only=flagged in ("1", "true"),
        )

    def admits(self, row: WorklistRow) -> bool:
        """Whether ``row`` is on the worklist this filter shows."""
        return (
            (not self.site or row.site == self.site)
            and (not self.modality or (row.modality or "").upper() == self.modality.upper())
            and (self.status is None or row.status is self.status)
            and (not self.flagged_only or row.flagged)
        )


@dataclass(frozen=True)
class WorklistRow:
    StudyInstanceUID: str
    priority: float
    waiting_s: float
    received_at: datetime
    patient_name: str | None  # only for callers with patient.identity
    patient_id: str | None
    modality: str | None
    description: str | None
    site: str | None
    status: ReadStatus
    ai: AIState
    flagged: bool
    finding: str | None  # released only
    score: float | None  # released only
    score_band: str | None  # released only
    operating_point: str | None
    model: str | None  # "name version" (released or withheld)
    note: str | None  # NOT_VALIDATED for a withheld result
    SeriesInstanceUID: str | None  # the scored image, for the review page (released or withheld)
    SOPInstanceUID: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "StudyInstanceUID": self.StudyInstanceUID,
            "priority": round(self.priority, 3),
            "waiting_s": round(self.waiting_s, 1),
            "received_at": self.received_at.isoformat(),
            "patient_name": self.patient_name,
            "patient_id": self.patient_id,
            "modality": self.modality,
            "description": self.description,
            "site": self.site,
            "status": self.status.value,
            "ai": self.ai.value,
            "flagged": self.flagged,
            "finding": self.finding,
            "score": None if self.score is None else round(self.score, 4),
            "score_band": self.score_band,
            "operating_point": self.operating_point,
            "model": self.model,
            "note": self.note,
        }


def score_band(score: float, threshold: float | None) -> str:
    """``low`` below the operating threshold; ``elevated`` from it; ``high`` from 0.9 (or halfway above)."""
    t = 0.5 if threshold is None else float(threshold)
    if score < t:
        return "low"
    return "high" if score >= max(0.9, (1 + t) / 2) else "elevated"


def visible_predictions(session: Session, study_uids: Iterable[str] | None = None) -> list[Prediction]:
    """The released and withheld predictions (never silent, shadow or off), optionally of some studies."""
    q = select(Prediction).where(Prediction.policy.in_(VISIBLE))
    if study_uids is not None:
        uids = list(study_uids)
        if not uids:
            return []
        q = q.where(Prediction.StudyInstanceUID.in_(uids))
    return list(session.scalars(q.order_by(Prediction.id)))


def _primary_finding(p: Prediction) -> str | None:
    try:
        findings = json.loads(p.findings or "[]")
    except ValueError:
        return None
    for f in findings:
        same_score = abs(float(f.get("score", -1)) - p.score) < 1e-9
        if f.get("declared") and f.get("disposition") != "suppress" and same_score:
            return str(f.get("name"))
    for f in findings:
        if f.get("declared"):
            return str(f.get("name"))
    return None


def _best(preds: list[Prediction]) -> Prediction | None:
    """The prediction that speaks for the study: the most urgent released one, else a withheld one."""
    released = [p for p in preds if p.policy == Release.RELEASED.value]
    if released:
        return max(released, key=lambda p: (p.urgency, p.score, -p.id))
    withheld = [p for p in preds if p.policy == Release.WITHHELD.value]
    return withheld[0] if withheld else None


def final_reads(session: Session, study_uids: Iterable[str]) -> dict[str, GroundTruth]:
    uids = list(study_uids)
    if not uids:
        return {}
    rows = session.scalars(
        select(GroundTruth).where(GroundTruth.source == FINAL_READ, GroundTruth.StudyInstanceUID.in_(uids))
    )
    return {str(r.StudyInstanceUID): r for r in rows}


def worklist_rows(
    session: Session,
    flt: WorklistFilter = WorklistFilter(),  # noqa: B008 - frozen dataclass
    *,
    identity: bool = False,
    default_site: str | None = None,
    now: datetime | None = None,
    only: str | None = None,
) -> list[WorklistRow]:
    """Every study ready to read (assembled), in priority order (highest first), after ``flt``.

    ``only``: just that StudyInstanceUID (the review page's one row).
    """
    now = now or utcnow()
    query = select(Study).where(Study.status.in_(READABLE_STUDY_STATUSES))
    if only is not None:
        query = query.where(Study.StudyInstanceUID == only)
    studies = list(session.scalars(query))
    uids = [s.StudyInstanceUID for s in studies]
    modality: dict[str, str | None] = {}
    if uids:
        for study_uid, mod in session.execute(
            select(Series.StudyInstanceUID, Series.Modality)
            .where(Series.StudyInstanceUID.in_(uids))
            .order_by(Series.SeriesNumber, Series.SeriesInstanceUID)
        ):
            if mod and not modality.get(study_uid):
                modality[study_uid] = str(mod)
    by_study: dict[str, list[Prediction]] = {}
    for p in visible_predictions(session, uids):
        by_study.setdefault(p.StudyInstanceUID, []).append(p)
    reads = final_reads(session, uids)
    rows: list[WorklistRow] = []
    for s in studies:
        preds = by_study.get(s.StudyInstanceUID, [])
        best = _best(preds)
        received = s.first_received
        status = ReadStatus.READ if s.StudyInstanceUID in reads else ReadStatus.AWAITING
        site = best.site if best is not None else default_site
        if best is None:
            ai, urgency, flagged = AIState.NONE, 0.0, False
            finding = band = model = note = op = None
            score = None
        elif best.policy == Release.RELEASED.value:
            ai, urgency, flagged = AIState.RELEASED, float(best.urgency or 0.0), bool(best.flag)
            score = float(best.score)
            band = score_band(score, best.threshold)
            finding = _primary_finding(best)
            model = f"{best.model_name} {best.model_version}"
            op = best.operating_point
            note = None
        else:
            ai, urgency, flagged = AIState.WITHHELD, 0.0, False
            score = band = finding = op = None
            model = f"{best.model_name} {best.model_version}"
            note = NOT_VALIDATED
        row = WorklistRow(
            StudyInstanceUID=s.StudyInstanceUID,
            priority=priority(urgency, received, now),
            waiting_s=max((now - received).total_seconds(), 0.0),
            received_at=received,
            patient_name=(s.PatientName or "") if identity else None,
            patient_id=(s.PatientID or "") if identity else None,
            modality=modality.get(s.StudyInstanceUID),
            description=s.StudyDescription,
            site=site,
            status=status,
            ai=ai,
            flagged=flagged,
            finding=finding,
            score=score,
            score_band=band,
            operating_point=op,
            model=model,
            note=note,
            SeriesInstanceUID=best.SeriesInstanceUID if best is not None else None,
            SOPInstanceUID=best.SOPInstanceUID if best is not None else None,
        )
        if flt.admits(row):
            rows.append(row)
    rows.sort(key=lambda r: (-r.priority, r.received_at, r.StudyInstanceUID))
    return rows


def synthetic_models(session: Session, rows: Iterable[WorklistRow]) -> set[str]:
    """The "name version" of each model behind ``rows`` whose card says it was trained on synthetic data."""
    from radgate.models.registry import list_models

    shown = {r.model for r in rows if r.model}
    if not shown:
        return set()
    return {m.label for m in list_models(session) if m.synthetic and m.label in shown}


def worklist_version(session: Session) -> str:
    """A token that changes when the worklist may have: a visible result stored, a study assembled or read.

    Silent and shadow results do not change it (they are not counted), so they never cause an event.
    """
    last_visible = session.scalar(select(func.max(Prediction.id)).where(Prediction.policy.in_(VISIBLE)))
    reads = session.scalar(select(func.count(GroundTruth.id)).where(GroundTruth.source == FINAL_READ))
    last_read = session.scalar(
        select(func.max(GroundTruth.imported_at)).where(GroundTruth.source == FINAL_READ)
    )
    ready = session.scalar(
        select(func.count(Study.StudyInstanceUID)).where(Study.status.in_(READABLE_STUDY_STATUSES))
    )
    return f"{last_visible or 0}-{ready or 0}-{reads or 0}-{last_read.isoformat() if last_read else ''}"


def study_row(
    session: Session, study_uid: str, *, identity: bool, default_site: str | None = None
) -> WorklistRow:
    """The worklist row of one study (read or not), or NotFound."""
    every = WorklistFilter(status=None)
    for row in worklist_rows(session, every, identity=identity, default_site=default_site, only=study_uid):
        return row
    raise NotFound(f"Study {study_uid} is not on the worklist (unknown, or not yet assembled).")
