"""Deployments as a use case: list, show, readiness, and the gated mode change."""

from __future__ import annotations

import json
from dataclasses import dataclass

from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Conflict
from radgate.policy import Mode
from radgate.policy.readiness import Readiness, readiness
from radgate.routing.deployment import (
    Deployment,
    deployment_history,
    get_deployment,
    list_deployments,
    record_change,
    set_mode,
)
from radgate.routing.tables import DeploymentChange

__all__ = ["ModeChange", "deployment_readiness", "list_all", "set_deployment_mode", "show"]


@dataclass(frozen=True)
class ModeChange:
    """What a mode change did: the deployment after it, and the gate's verdict when it went live."""

    deployment: Deployment
    previous: str
    readiness: Readiness | None = None
    override: str | None = None


def list_all(db: Database) -> list[Deployment]:
    with db.session() as s:
        return list_deployments(s)


def show(db: Database, name: str) -> tuple[Deployment, list[DeploymentChange]]:
    with db.session() as s:
        d = get_deployment(s, name)
        history = deployment_history(s, name)
        s.expunge_all()
    return d, history


def deployment_readiness(db: Database, settings: Settings, name: str) -> Readiness:
    """The go-live checks for deployment ``name`` (:mod:`radgate.policy.readiness`)."""
    with db.session() as s:
        return readiness(s, get_deployment(s, name), settings.policy)


def set_deployment_mode(
    db: Database,
    settings: Settings,
    name: str,
    mode: str,
    *,
    by: str,
    note: str | None = None,
    override: str | None = None,
) -> ModeChange:
    """Change a deployment's mode now. Going ``live`` passes the go-live gate first.

    When a check fails, nothing changes and :class:`radgate.errors.Conflict` lists the failed checks, unless
    ``override`` gives a reason: then the change goes through and the override is recorded (who, when, why,
    and which checks failed) in the deployment's history.
    """
    target = Mode.parse(mode)
    with db.session() as s:
        current = get_deployment(s, name)
        verdict = None
        if target is Mode.LIVE and current.mode != Mode.LIVE.value:
            verdict = readiness(s, current, settings.policy)
            if not verdict.ready:
                failed = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failed)
                if not override:
                    raise Conflict(
                        f"deployment {name!r} is not ready to go live: {failed}. "
                        f"See `radgate readiness {name}`; to go live anyway, give "
                        "--override \"REASON\" (recorded with who and when)."
                    )
                record_change(
                    s,
                    name,
                    "readiness_override",
                    None,
                    json.dumps([c.to_json() for c in verdict.failed], default=str),
                    by,
                    note=override,
                )
        d = set_mode(s, name, target.value, changed_by=by, note=note)
    overridden = override if verdict is not None and not verdict.ready else None
    return ModeChange(d, current.mode, verdict, overridden)
