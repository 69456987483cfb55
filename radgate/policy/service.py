"""The policy's database side: a deployment's :class:`PolicyContext`, and subgroups validated at the site."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.policy.decision import Decision, PolicyContext, choose_operating_point
from radgate.policy.enum import IncidentalRule, Mode
from radgate.policy.subgroups import ValidatedSubgroups
from radgate.policy.tables import LocalValidation
from radgate.routing.deployment import Deployment

__all__ = [
    "DEFAULT_MIN_NEGATIVES",
    "DEFAULT_MIN_POSITIVES",
    "decision_columns",
    "local_validations",
    "policy_context",
    "record_local_validation",
]

#: A go-live validation records a subgroup as validated at the site with at least this many cases of each
#: class (the issue's default; below it, a subgroup's sensitivity CI is wider than +-0.06 at 0.9).
DEFAULT_MIN_POSITIVES = 100
DEFAULT_MIN_NEGATIVES = 100


#: Built once: it is read on every completed series' path (radgate.engine.queue says why).
_LOCAL_VALIDATIONS = (
    select(LocalValidation)
    .where(LocalValidation.deployment == bindparam("deployment"))
    .order_by(LocalValidation.attribute, LocalValidation.value)
)


def local_validations(session: Session, deployment: str) -> list[LocalValidation]:
    return list(session.scalars(_LOCAL_VALIDATIONS, {"deployment": deployment}))


def policy_context(session: Session, deployment: Deployment) -> PolicyContext:
    """The deployment as the policy sees it: mode, operating point, findings, validated subgroups."""
    op, source = choose_operating_point(deployment.manifest, deployment.operating_point)
    local = [(v.attribute, v.value, v.site) for v in local_validations(session, deployment.name)]
    return PolicyContext(
        deployment=deployment.name,
        site=deployment.site,
        mode=Mode(deployment.mode),
        manifest=deployment.manifest,
        operating_point=op,
        threshold_source=source,
        declared_findings=deployment.declared_findings,
        incidental=IncidentalRule(deployment.incidental),
        subgroups=ValidatedSubgroups.build(deployment.manifest.validated_subgroups, local),
    )


def record_local_validation(
    session: Session,
    deployment: Deployment,
    attribute: str,
    value: str,
    positives: int,
    negatives: int,
    *,
    auc: float | None,
    recorded_by: str,
    source: str,
    min_positives: int = DEFAULT_MIN_POSITIVES,
    min_negatives: int = DEFAULT_MIN_NEGATIVES,
) -> LocalValidation | None:
    """Record ``attribute = value`` as validated at the deployment's site when the counts suffice.

    Returns the row, or ``None`` when there are too few cases (nothing is recorded then).
    """
    if positives < min_positives or negatives < min_negatives:
        return None
    row = session.scalars(
        select(LocalValidation).where(
            LocalValidation.deployment == deployment.name,
            LocalValidation.attribute == attribute,
            LocalValidation.value == value,
        )
    ).one_or_none()
    if row is None:
        row = LocalValidation(deployment=deployment.name, attribute=attribute, value=value)
        session.add(row)
    row.site = deployment.site
    row.positives, row.negatives, row.auc = positives, negatives, auc
    row.validated_at, row.recorded_by, row.source = utcnow(), recorded_by, source
    session.flush()
    return row


def decision_columns(decision: Decision) -> dict[str, Any]:
    """The prediction columns that store a decision (``predictions.policy`` ... ``findings``)."""
    return {
        "mode": decision.mode.value,
        "score": decision.score,
        "flag": decision.flag,
        "flags": json.dumps(dict(decision.flags)),
        "SOPInstanceUID": decision.SOPInstanceUID,
        "used_instances": json.dumps(list(decision.used_instances)),
        "policy": decision.release.value,
        "policy_reason": decision.reason,
        "operating_point": decision.operating_point,
        "threshold": decision.threshold,
        "threshold_source": decision.threshold_source.value,
        "urgency": decision.urgency,
        "findings": json.dumps([_finding(f) for f in decision.findings]),
    }


def _finding(f: Any) -> dict[str, Any]:
    d = asdict(f)
    d["disposition"] = f.disposition.value
    return d
