"""Cases from radgate's own database: routing decisions, predictions and reference labels.

One case per series that a deployment of the model saw. Its score is the stored prediction; its label the
reference standard in ``ground_truth`` (series UID first, then study UID; precedence as in
:func:`radgate.validation.truth.reference_labels`); its attributes the input's header features stored with
the prediction (Manufacturer, ManufacturerModelName, ViewPosition, PatientSex, an age band ...). Series the
model never scored stay in the case flow with the reason: "not applicable: ViewPosition LL is not in PA,
AP", "failed: ...", so that the report's case flow accounts for everything that arrived.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from radgate.db import Database
from radgate.engine.tables import Job, Prediction, RoutingDecisionRow
from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.truth import reference_labels

__all__ = ["age_band", "cases_from_database"]


def age_band(age: Any) -> str:
    """Decade bands for subgroup tables: ``18-29``, ``30-39`` ... ``80+``; ``<18``; ``unknown``."""
    try:
        years = float(age)
    except (TypeError, ValueError):
        return "unknown"
    if years < 18:
        return "<18"
    if years < 30:
        return "18-29"
    if years >= 80:
        return "80+"
    low = int(years // 10 * 10)
    return f"{low}-{low + 9}"


def _attributes(features: dict[str, Any], mode: str) -> dict[str, str]:
    out = {k: ("" if v is None else str(v)) for k, v in features.items()}
    out["AgeBand"] = age_band(features.get("PatientAge"))
    out["mode"] = mode
    return out


def cases_from_database(
    db: Database,
    model_name: str,
    model_version: str | None = None,
    columns: Sequence[str] = (),
    site: str | None = None,
) -> CaseSet:
    """Every series routed for ``model_name`` (and ``model_version``), as a :class:`CaseSet`."""
    with db.session() as s:
        query = select(RoutingDecisionRow).where(RoutingDecisionRow.model_name == model_name)
        if model_version is not None:
            query = query.where(RoutingDecisionRow.model_version == model_version)
        decisions = s.scalars(query.order_by(RoutingDecisionRow.id)).all()
        pq = select(Prediction).where(Prediction.model_name == model_name)
        if model_version is not None:
            pq = pq.where(Prediction.model_version == model_version)
        if site is not None:
            pq = pq.where(Prediction.site == site)
        predictions = {p.SeriesInstanceUID: p for p in s.scalars(pq).all()}
        jobs = {
            j.SeriesInstanceUID: j
            for j in s.scalars(select(Job).where(Job.model_name == model_name, Job.status == "failed")).all()
        }
    if not decisions and not predictions:
        raise LookupError(
            f"No routing decision or prediction for model {model_name!r}"
            + (f" version {model_version}" if model_version else "")
            + " in the database; check `radgate models list` and `radgate predictions summary`."
        )
    series: dict[str, tuple[str, str | None]] = {}  # series -> (study, exclusion)
    for d in decisions:
        exclusion = None if d.decision == "matched" else f"not applicable: {d.reason}"
        series[d.SeriesInstanceUID] = (d.StudyInstanceUID, exclusion)
    for uid, prediction in predictions.items():
        series.setdefault(uid, (prediction.StudyInstanceUID, None))
    labels_by_series = reference_labels(db, list(series))
    labels_by_study = reference_labels(db, [study for study, _ in series.values()])
    records = []
    for uid, (study, exclusion) in series.items():
        p = predictions.get(uid)
        if exclusion is None and p is None:
            job = jobs.get(uid)
            exclusion = f"failed: {job.last_error}" if job is not None else "no result yet"
        label = labels_by_series.get(uid, labels_by_study.get(study))
        attributes = _attributes(json.loads(p.features), p.mode) if p is not None else {}
        records.append(
            CaseRecord(
                uid=uid,
                score=None if p is None else float(p.score),
                label=label,
                attributes=attributes,
                exclusion=exclusion,
            )
        )
    return CaseSet.from_records(
        records, columns, source=f"database: {model_name} {model_version or ''}".strip()
    )
