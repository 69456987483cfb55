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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from radgate.db import Database
from radgate.engine.tables import Job, Prediction, RoutingDecisionRow
from radgate.errors import Invalid, NotFound
from radgate.routing.tables import DeploymentRow
from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.truth import reference_labels

__all__ = ["DatabaseSource", "age_band", "cases_from_database", "resolve_deployment"]


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


@dataclass(frozen=True)
class DatabaseSource:
    """Which results a report from the database used: one deployment, its model version and site."""

    deployment: str
    model_name: str
    model_version: str
    site: str

    def describe(self) -> str:
        return f"deployment {self.deployment} ({self.model_name} {self.model_version}, site {self.site})"


def resolve_deployment(
    db: Database, model_name: str | None, model_version: str | None, deployment: str | None
) -> DatabaseSource:
    """The one deployment a report from the database is about.

    Given ``deployment``, that one (its model must match ``model_name`` / ``model_version`` when given).
    Otherwise the deployments that ran ``model_name`` (``model_version``): exactly one must have results or
    decisions, else the error lists them and asks for ``--deployment``: a report never mixes versions or
    sites.
    """
    with db.session() as s:
        rows = s.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all()
        if deployment is not None:
            chosen = [r for r in rows if r.name == deployment]
            if not chosen:
                raise NotFound(
                    f"No deployment named {deployment!r}; known: {', '.join(r.name for r in rows) or 'none'}."
                )
            row = chosen[0]
            if (model_name and row.model_name != model_name) or (
                model_version and row.model_version != model_version
            ):
                raise Invalid(
                    f"deployment {deployment!r} runs {row.model_name} {row.model_version}, not "
                    f"{model_name} {model_version or ''}".rstrip()
                    + "; drop --model/--version or name the matching deployment."
                )
            return DatabaseSource(row.name, row.model_name, row.model_version, row.site)
        used = set(s.scalars(select(RoutingDecisionRow.deployment).distinct())) | set(
            s.scalars(select(Prediction.deployment).distinct())
        )
        candidates = [
            r
            for r in rows
            if r.name in used
            and (model_name is None or r.model_name == model_name)
            and (model_version is None or r.model_version == model_version)
        ]
    what = f"model {model_name!r}" + (f" version {model_version}" if model_version else "")
    if not candidates:
        raise NotFound(
            f"No routing decision or prediction for {what} in the database; check `radgate models list` "
            "and `radgate predictions summary`."
        )
    if len(candidates) > 1:
        listed = ", ".join(f"{r.name} ({r.model_version}, {r.site}, {r.mode})" for r in candidates)
        raise Invalid(
            f"{what} has results from several deployments: {listed}; choose one with --deployment NAME."
        )
    r = candidates[0]
    return DatabaseSource(r.name, r.model_name, r.model_version, r.site)


def cases_from_database(
    db: Database,
    model_name: str | None = None,
    model_version: str | None = None,
    columns: Sequence[str] = (),
    site: str | None = None,
    deployment: str | None = None,
) -> CaseSet:
    """Every series routed for one deployment of ``model_name``, as a :class:`CaseSet`.

    Predictions, decisions and failed jobs are keyed by (series, deployment), so two deployments of one
    model (two versions, or two sites) never mix; the case set's ``source`` names the one used.
    """
    src = resolve_deployment(db, model_name, model_version, deployment)
    if site is not None and site != src.site:
        raise Invalid(f"{src.describe()} is not at site {site!r}; name its deployment with --deployment.")
    with db.session() as s:
        decisions = s.scalars(
            select(RoutingDecisionRow)
            .where(RoutingDecisionRow.deployment == src.deployment)
            .order_by(RoutingDecisionRow.id)
        ).all()
        predictions = {
            p.SeriesInstanceUID: p
            for p in s.scalars(select(Prediction).where(Prediction.deployment == src.deployment)).all()
        }
        jobs = {
            j.SeriesInstanceUID: j
            for j in s.scalars(
                select(Job).where(Job.deployment == src.deployment, Job.status == "failed")
            ).all()
        }
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
    return CaseSet.from_records(records, columns, source=f"database: {src.describe()}")
