"""What an informaticist's pages show, as typed views: models, deployments, series, outbox, rejections.

Read-only use cases for ``radgate.web.pages`` (the one change those pages make, a deployment's mode, goes
through :func:`radgate.services.deployments.set_deployment_mode`). No patient names or IDs: UIDs, statuses,
reasons and numbers only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import RoutingDecisionRow
from radgate.ingest.status import ingest_counts, recent_rejections, series_status
from radgate.models.package import ModelPackage
from radgate.models.registry import InstalledModel, ensure_default_models, get_model, list_models
from radgate.policy.readiness import Readiness, readiness
from radgate.results.tables import OutboxItem
from radgate.routing.deployment import Deployment, deployment_history, get_deployment, list_deployments
from radgate.routing.tables import DeploymentChange

__all__ = [
    "DecisionView",
    "DeploymentView",
    "ModelView",
    "OutboxView",
    "deployment_view",
    "deployments_view",
    "model_view",
    "models_view",
    "outbox_view",
    "rejections_view",
    "series_view",
]


@dataclass(frozen=True)
class ModelView:
    model: InstalledModel
    deployments: tuple[Deployment, ...] = ()
    card: str = ""  # MODEL_CARD.md, as written by the vendor (markdown)


@dataclass(frozen=True)
class DecisionView:
    """One routing decision: which series, what was decided for which deployment, and why."""

    decided_at: datetime
    SeriesInstanceUID: str
    deployment: str
    mode: str
    decision: str
    reason: str
    instances: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    readiness: Readiness | None
    readiness_error: str | None = None
    decisions: tuple[DecisionView, ...] = ()
    decision_counts: dict[str, int] = field(default_factory=dict)
    history: tuple[DeploymentChange, ...] = ()


@dataclass(frozen=True)
class OutboxView:
    items: tuple[OutboxItem, ...]
    counts: dict[str, int]


def models_view(db: Database, settings: Settings) -> list[ModelView]:
    """Every installed version, with the deployments that run it."""
    with db.session() as s:
        ensure_default_models(s, settings.data_dir)
        models = list_models(s)
        deployments = list_deployments(s)
    return [
        ModelView(m, tuple(d for d in deployments if (d.model_name, d.model_version) == (m.name, m.version)))
        for m in models
    ]


def model_view(db: Database, settings: Settings, name: str, version: str) -> ModelView:
    """One version with its model card (raises :class:`radgate.errors.NotFound` for an unknown one)."""
    with db.session() as s:
        ensure_default_models(s, settings.data_dir)
        model = get_model(s, name, version)
        deployments = tuple(
            d for d in list_deployments(s) if (d.model_name, d.model_version) == (model.name, model.version)
        )
    try:
        card = ModelPackage.open(model.path).model_card
    except Exception as exc:  # a package removed from disk behind radgate's back: say so, keep the page
        card = f"*The model card cannot be read: {exc}*"
    return ModelView(model, deployments, card)


def _decision(row: RoutingDecisionRow) -> DecisionView:
    try:
        instances = tuple(json.loads(row.instances)) if row.instances else ()
    except ValueError:
        instances = ()
    return DecisionView(
        row.decided_at, row.SeriesInstanceUID, row.deployment, row.mode, row.decision, row.reason, instances
    )


def deployment_view(db: Database, settings: Settings, name: str, decisions: int = 20) -> DeploymentView:
    """A deployment, its go-live checks with their numbers, its recent routing decisions and its history."""
    with db.session() as s:
        d = get_deployment(s, name)
        try:
            verdict, error = readiness(s, d, settings.policy), None
        except Exception as exc:  # a check that cannot run (no data yet) must not hide the page
            verdict, error = None, f"{type(exc).__name__}: {exc}"
        rows = s.scalars(
            select(RoutingDecisionRow)
            .where(RoutingDecisionRow.deployment == name)
            .order_by(RoutingDecisionRow.id.desc())
            .limit(decisions)
        ).all()
        counts = dict(
            s.execute(
                select(RoutingDecisionRow.decision, func.count())
                .where(RoutingDecisionRow.deployment == name)
                .group_by(RoutingDecisionRow.decision)
            ).all()
        )
        history = tuple(deployment_history(s, name))
        s.expunge_all()
    return DeploymentView(d, verdict, error, tuple(_decision(r) for r in rows), counts, history)


def deployments_view(db: Database, settings: Settings, decisions: int = 10) -> list[DeploymentView]:
    with db.session() as s:
        names = [d.name for d in list_deployments(s)]
    return [deployment_view(db, settings, n, decisions) for n in names]


def series_view(db: Database, limit: int = 200) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Series newest first with their assembly status, and the store's counts."""
    with db.session() as s:
        return series_status(s, limit), ingest_counts(s)


def outbox_view(db: Database, status: str | None = None, limit: int = 200) -> OutboxView:
    """Result objects on their way to the PACS, newest first, and how many are in each status."""
    with db.session() as s:
        query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxItem.status == status)
        items = tuple(s.scalars(query))
        counts = dict(s.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all())
        s.expunge_all()
    return OutboxView(items, {str(k): int(v) for k, v in counts.items()})


def rejections_view(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    with db.session() as s:
        return recent_rejections(s, limit)
