"""The annotation queue: stored predictions without a reference label, picked by an active-learning
strategy (:mod:`radgate.learning.strategies`) and stored as label requests.

A data scientist creates a batch (``radgate learn queue``); a radiologist labels the cases (the review UI
lists open requests; labels also come in through ``radgate truth import``); a request counts as labelled as
soon as ``ground_truth`` holds a label for its series or study.

Feature vectors for ``diversity``/``hybrid``: the bundled model package exposes no embedding, so the
vectors are the scored image's header features stored with each prediction (standardised KVP, age, matrix,
pixel spacing, bits stored; one-hot manufacturer, model, station, view, sex, photometric interpretation)
plus the score's logit. That makes "different" mean different acquisition and patient, not different
anatomy; an embedding from the package would slot in as the vector instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from radgate import audit
from radgate.clock import utcnow
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.errors import Invalid
from radgate.learning.compare import _deployment, _scanner
from radgate.learning.strategies import select as select_cases
from radgate.learning.tables import LabelRequest
from radgate.validation.from_db import age_band
from radgate.validation.truth import reference_labels

__all__ = ["NUMERIC", "CATEGORICAL", "QueuedCase", "feature_matrix", "label_requests", "queue_cases"]

NUMERIC = ("KVP", "PatientAge", "Rows", "Columns", "PixelSpacing", "BitsStored")
CATEGORICAL = (
    "Manufacturer",
    "ManufacturerModelName",
    "StationName",
    "ViewPosition",
    "PatientSex",
    "PhotometricInterpretation",
)


def _number(value: Any) -> float:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return x if np.isfinite(x) else float("nan")


def feature_matrix(features: Sequence[dict[str, Any]], scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standardised numeric header features (missing → the column mean), one-hot categoricals, and the
    score's logit: one row per case."""
    n = len(features)
    columns: list[NDArray[np.float64]] = []
    for key in NUMERIC:
        col = np.asarray([_number(f.get(key)) for f in features], dtype=np.float64)
        if np.isnan(col).all():
            continue
        col = np.where(np.isnan(col), np.nanmean(col), col)
        sd = col.std()
        columns.append((col - col.mean()) / sd if sd > 0 else np.zeros(n))
    for key in CATEGORICAL:
        values = [str(f.get(key) or "") for f in features]
        for level in sorted(set(values)):
            columns.append(np.asarray([v == level for v in values], dtype=np.float64))
    q = np.clip(scores, 1e-6, 1 - 1e-6)
    logit = np.log(q / (1 - q))
    sd = logit.std()
    columns.append((logit - logit.mean()) / sd if sd > 0 else np.zeros(n))
    return np.column_stack(columns) if columns else np.zeros((n, 1))


@dataclass(frozen=True)
class QueuedCase:
    SeriesInstanceUID: str
    StudyInstanceUID: str
    score: float
    priority: float
    reason: str
    stratum: str
    rank: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "SeriesInstanceUID": self.SeriesInstanceUID,
            "score": self.score,
            "reason": self.reason,
            "StudyInstanceUID": self.StudyInstanceUID,
            "priority": self.priority,
            "stratum": self.stratum,
            "rank": self.rank,
        }


def queue_cases(
    db: Database,
    deployment: str,
    budget: int,
    strategy: str,
    *,
    by: str,
    subgroup: str | None = "PatientSex",
    seed: int = 0,
    store: bool = True,
) -> tuple[str, list[QueuedCase]]:
    """Pick up to ``budget`` unlabelled cases of ``deployment`` not already requested; store them as a
    batch of label requests (audited as ``learning.queue``). Returns (batch id, picked cases in order)."""
    with db.session() as s:
        _deployment(s, deployment)
        preds = s.scalars(
            select(Prediction).where(Prediction.deployment == deployment).order_by(Prediction.id)
        ).all()
        open_requests = set(
            s.scalars(
                select(LabelRequest.SeriesInstanceUID).where(
                    LabelRequest.deployment == deployment, LabelRequest.status == "open"
                )
            )
        )
        s.expunge_all()
    if not preds:
        raise Invalid(f"deployment {deployment!r} has no stored predictions to pick from")
    by_series = reference_labels(db, [p.SeriesInstanceUID for p in preds])
    by_study = reference_labels(db, [p.StudyInstanceUID for p in preds])
    labelled = [p.SeriesInstanceUID in by_series or p.StudyInstanceUID in by_study for p in preds]
    features = [json.loads(p.features or "{}") for p in preds]
    scores = np.asarray([p.score for p in preds], dtype=np.float64)
    x = feature_matrix(features, scores)
    candidates = np.asarray(
        [not lab and p.SeriesInstanceUID not in open_requests for p, lab in zip(preds, labelled, strict=True)]
    )
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        raise Invalid(
            f"every stored case of {deployment!r} is labelled or already requested; nothing to queue"
        )
    thresholds = np.asarray([p.threshold if p.threshold is not None else 0.5 for p in preds])[idx]
    finding_scores = _finding_scores([preds[int(i)].scores for i in idx], scores[idx])

    def stratum(f: dict[str, Any]) -> str:
        parts = [_scanner(f)]
        if subgroup:
            value = age_band(f.get("PatientAge")) if subgroup == "AgeBand" else f.get(subgroup)
            parts.append(f"{subgroup}={value if value not in (None, '') else 'unknown'}")
        return " / ".join(parts)

    strata = [stratum(features[i]) for i in idx]
    picks = select_cases(
        strategy,
        budget,
        scores[idx],
        thresholds,
        strata,
        features=x[idx],
        labelled_features=x[np.asarray(labelled)],
        finding_scores=finding_scores,
        seed=seed,
    )
    batch = uuid.uuid4().hex[:12]
    out = []
    for rank, pick in enumerate(picks, start=1):
        p = preds[int(idx[pick.index])]
        out.append(
            QueuedCase(
                p.SeriesInstanceUID,
                p.StudyInstanceUID,
                float(p.score),
                pick.priority,
                pick.reason,
                strata[pick.index],
                rank,
            )
        )
    if store:
        now = utcnow()
        with db.session() as s:
            for c in out:
                s.add(
                    LabelRequest(
                        batch=batch,
                        deployment=deployment,
                        StudyInstanceUID=c.StudyInstanceUID,
                        SeriesInstanceUID=c.SeriesInstanceUID,
                        strategy=strategy,
                        rank=c.rank,
                        score=c.score,
                        priority=c.priority,
                        stratum=c.stratum,
                        reason=c.reason,
                        status="open",
                        requested_by=by,
                        requested_at=now,
                    )
                )
            audit.record(
                s,
                by,
                "learning.queue",
                deployment,
                {
                    "batch": batch,
                    "strategy": strategy,
                    "budget": budget,
                    "picked": len(out),
                    "series": [c.SeriesInstanceUID for c in out],
                },
            )
    return batch, out


def _finding_scores(raw: Sequence[str], fallback: NDArray[np.float64]) -> NDArray[np.float64]:
    """(cases × findings) from each prediction's ``scores`` JSON; the primary score where a finding is
    missing."""
    parsed = [json.loads(r or "{}") for r in raw]
    names = sorted({k for d in parsed for k in d})
    if not names:
        return fallback[:, None]
    return np.asarray([[float(d.get(k, fallback[i])) for k in names] for i, d in enumerate(parsed)])


def label_requests(
    db: Database, deployment: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Label requests with their status brought up to date: ``labelled`` once ``ground_truth`` has a label."""
    with db.session() as s:
        q = select(LabelRequest).order_by(LabelRequest.id)
        if deployment:
            q = q.where(LabelRequest.deployment == deployment)
        rows = s.scalars(q).all()
        open_rows = [r for r in rows if r.status == "open"]
        if open_rows:
            by_series = reference_labels(db, [r.SeriesInstanceUID for r in open_rows])
            by_study = reference_labels(db, [r.StudyInstanceUID for r in open_rows])
            for r in open_rows:
                if r.SeriesInstanceUID in by_series or r.StudyInstanceUID in by_study:
                    r.status = "labelled"
        out = [
            {
                "id": r.id,
                "batch": r.batch,
                "deployment": r.deployment,
                "SeriesInstanceUID": r.SeriesInstanceUID,
                "StudyInstanceUID": r.StudyInstanceUID,
                "strategy": r.strategy,
                "rank": r.rank,
                "score": r.score,
                "reason": r.reason,
                "status": r.status,
                "requested_by": r.requested_by,
                "requested_at": r.requested_at.isoformat(),
            }
            for r in rows
        ]
    return [r for r in out if status is None or r["status"] == status]
