"""Validation use cases that need the deployment: the one threshold rule, and go-live local validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.inference.explain import ExplanationMap
from radgate.policy import choose_operating_point
from radgate.policy.service import record_local_validation
from radgate.policy.tables import LocalValidation
from radgate.routing.deployment import get_deployment
from radgate.stats import auc as auc_value
from radgate.validation.cases import CaseSet
from radgate.validation.explanation import ExplanationCheck, explanation_check, read_region_truth
from radgate.validation.metrics import export_threshold

if TYPE_CHECKING:
    from radgate.validation.report import ReportContext

__all__ = [
    "deployment_threshold",
    "explanation_check_from_db",
    "export_threshold",
    "record_go_live_subgroups",
    "report_context_from_registry",
    "truth_overview",
    "validated_attributes",
]


def report_context_from_registry(
    db: Database, context: ReportContext, model_name: str, model_version: str | None
) -> tuple[ReportContext, float | None]:
    """Fill version, weights hash and intended use from the registry; also return the model's first
    operating point (the threshold a report from the database uses unless --threshold says otherwise).
    An unknown model leaves the context as it is."""
    from radgate.models import get_model

    try:
        with db.session() as s:
            model = get_model(s, model_name, model_version)
    except LookupError:
        return context, None
    updated = replace(
        context,
        model_version=model.version,
        model_sha256=model.sha256,
        synthetic=context.synthetic or model.synthetic,
        intended_use=context.intended_use or model.manifest.intended_use.summary or None,
    )
    return updated, float(model.manifest.operating_points[0].threshold)


def truth_overview(db: Database) -> tuple[int, str | None]:
    """How many reference labels the ground-truth table holds, and one UID as an example."""
    from sqlalchemy import func

    from radgate.validation.tables import GroundTruth

    with db.session() as s:
        count = int(s.scalar(select(func.count(GroundTruth.id))) or 0)
        row = s.execute(
            select(GroundTruth.SeriesInstanceUID, GroundTruth.StudyInstanceUID)
            .order_by(GroundTruth.id)
            .limit(1)
        ).first()
    example = None if row is None else (row[0] or row[1])
    return count, example


def deployment_threshold(db: Database, deployment: str) -> tuple[float, str]:
    """The deployment's operating threshold and its :class:`radgate.policy.ThresholdSource`."""
    with db.session() as s:
        d = get_deployment(s, deployment)
        op, source = choose_operating_point(d.manifest, d.operating_point)
    return float(op.threshold), source.value


def validated_attributes(db: Database, deployment: str) -> list[str]:
    """The attributes the deployment's model card validates subgroups by (Manufacturer, ViewPosition ...)."""
    with db.session() as s:
        return list(get_deployment(s, deployment).manifest.validated_subgroups)


def record_go_live_subgroups(
    db: Database,
    deployment: str,
    cases: CaseSet,
    *,
    recorded_by: str,
    source: str,
    min_positives: int,
    min_negatives: int,
) -> list[LocalValidation]:
    """Record every level of the model card's subgroup attributes (beyond the card's own values) that this
    validation covered with enough positives and negatives as validated at the deployment's site; returns
    what was recorded."""
    recorded = []
    with db.session() as s:
        d = get_deployment(s, deployment)
        for attr in d.manifest.validated_subgroups:
            levels = cases.attributes.get(attr)
            if levels is None:
                continue
            values = np.asarray(levels)
            in_card = {str(v).casefold() for v in d.manifest.validated_subgroups[attr]}
            for level in sorted(set(levels) - {""}):
                if level.casefold() in in_card:
                    continue  # validated by the model card already
                mask = values == level
                y, scores = cases.labels[mask], cases.scores[mask]
                pos, neg = int((y == 1).sum()), int((y == 0).sum())
                value = float(auc_value(y, scores)) if pos and neg else None
                row = record_local_validation(
                    s,
                    d,
                    attr,
                    level,
                    pos,
                    neg,
                    auc=value,
                    recorded_by=recorded_by,
                    source=source,
                    min_positives=min_positives,
                    min_negatives=min_negatives,
                )
                if row is not None:
                    recorded.append(row)
        s.expunge_all()
    return recorded


def explanation_check_from_db(
    db: Database, settings: Settings, deployment: str, region_truth: Path
) -> Callable[[float, Sequence[str]], ExplanationCheck]:
    """The report's explanation check for ``deployment``: the true positives' stored maps against the
    regions of ``region_truth`` (a labels CSV with ``SeriesInstanceUID``, ``side`` and ``location``)."""
    regions = read_region_truth(region_truth)

    def check(_threshold: float, true_positives: Sequence[str]) -> ExplanationCheck:
        wanted = set(true_positives)
        maps = {}
        with db.session() as s:
            rows = s.execute(
                select(Prediction.SeriesInstanceUID, Prediction.explanation_path).where(
                    Prediction.deployment == deployment
                )
            ).all()
        for uid, rel in rows:
            if uid in wanted and rel:
                path = Path(settings.data_dir) / rel
                if path.is_file():
                    maps[uid] = ExplanationMap.load(path).values.astype(np.float32)
        return explanation_check(maps, regions)

    return check
