"""Deployments as a use case: list, show, readiness, the gated mode change, add and remove.

**One owner per deployment** (``deployments.managed_by``). The database holds what runs; each deployment in
it is managed either by the config file or by the command line, never both:

- a ``[[deployments]]`` entry of the config file creates its deployment and keeps it in line with the
  entry's text (a changed entry is applied at the next command or ``serve``; a removed one is turned off);
- ``radgate deployments add`` creates one that the config file does not know; ``radgate deployments
  remove`` deletes it (or turns it off when results refer to it). The config leaves it alone, and refuses
  an entry of the same name; ``add`` refuses a name the config declares.

Modes change at run time for both with ``radgate deployments set-mode``. ``live`` is granted only by the
go-live gate (:func:`set_deployment_mode`): for a mode change, for ``deployments add --mode live`` and for
a config entry's ``mode = "live"`` (:func:`config_live_gate`) alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radgate.config import PolicySettings, Settings
from radgate.db import Database
from radgate.errors import Conflict, Invalid
from radgate.policy import Mode
from radgate.policy.readiness import Readiness, readiness
from radgate.routing.deployment import (
    MANAGED_BY_CONFIG,
    Deployment,
    DeploymentSpec,
    SyncGate,
    create_deployment,
    delete_deployment,
    deployment_history,
    get_deployment,
    list_deployments,
    record_change,
    set_mode,
)
from radgate.routing.tables import DeploymentChange, DeploymentRow

__all__ = [
    "ModeChange",
    "Removal",
    "add_deployment",
    "config_live_gate",
    "deployment_readiness",
    "list_all",
    "parse_rule_option",
    "remove_deployment",
    "set_deployment_mode",
    "show",
]


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
            verdict = _gate(s, settings.policy, current, by=by, override=override)
        d = set_mode(s, name, target.value, changed_by=by, note=note)
    overridden = override if verdict is not None and not verdict.ready else None
    return ModeChange(d, current.mode, verdict, overridden)


def _gate(
    s: Session, policy: PolicySettings, current: Deployment, *, by: str, override: str | None
) -> Readiness:
    """The go-live gate: the verdict when ready; else Conflict, unless ``override`` records a reason."""
    name = current.name
    verdict = readiness(s, current, policy)
    if not verdict.ready:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failed)
        if not override:
            raise Conflict(
                f"deployment {name!r} is not ready to go live: {failed}. "
                f"See `radgate readiness {name}`; to go live anyway, give "
                '--override "REASON" (recorded with who and when).'
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
    return verdict


def config_live_gate(policy: PolicySettings, source: str = "the config file") -> SyncGate:
    """The gate a config entry's ``mode = "live"`` passes (:func:`radgate.routing.sync_deployments`).

    A deployment that is live already stays live. One that is not goes live from the config only when the
    go-live checks pass; a new deployment has no silent results to check, so it cannot. The refusal names
    the file, the entry and the way through the gate.
    """

    def gate(session: Session, spec: DeploymentSpec, row: DeploymentRow | None) -> None:
        if spec.mode != Mode.LIVE.value or (row is not None and row.mode == Mode.LIVE.value):
            return
        how = (
            f'set mode = "silent" there, collect silent results and validate them, then go live with '
            f"`radgate deployments set-mode {spec.name} live` (the go-live gate; --override \"REASON\" "
            "records an exception)"
        )
        if row is None:
            raise Conflict(
                f"{source}: deployment {spec.name!r} is new and has mode = \"live\"; a deployment goes live "
                f"only through the go-live gate: {how}."
            )
        verdict = readiness(session, Deployment.from_row(session, row), policy)
        if not verdict.ready:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failed)
            raise Conflict(
                f"{source}: deployment {spec.name!r} has mode = \"live\" but is not ready to go live "
                f"({failed}); keep mode = {row.mode!r} there and see `radgate readiness {spec.name}`, "
                f"or go live with `radgate deployments set-mode {spec.name} live --override \"REASON\"`."
            )

    return gate


_RANGE = re.compile(r"^(?P<min>-?[0-9.]*)\.\.(?P<max>-?[0-9.]*)$")


def parse_rule_option(text: str) -> dict[str, Any]:
    """``--rule`` as a rule table: ``ATTR=A,B`` (one of), ``ATTR=MIN..MAX`` (range, either side may be
    empty), ``ATTR~REGEX`` (regular expression)."""
    for sep in ("~", "="):
        attribute, found, value = text.partition(sep)
        if found and attribute.strip() and "=" not in attribute and "~" not in attribute:
            break
    else:
        raise Invalid(
            f"--rule {text!r} is not a rule; expected ATTR=A,B (one of), ATTR=MIN..MAX (a range) or "
            "ATTR~REGEX, e.g. --rule ViewPosition=PA,AP --rule PatientAge=16..120."
        )
    attribute, value = attribute.strip(), value.strip()
    if sep == "~":
        return {"attribute": attribute, "regex": value}
    m = _RANGE.match(value)
    if m is not None and (m["min"] or m["max"]):
        rule: dict[str, Any] = {"attribute": attribute}
        for key in ("min", "max"):
            if m[key]:
                try:
                    rule[key] = float(m[key]) if "." in m[key] else int(m[key])
                except ValueError:
                    raise Invalid(f"--rule {text!r}: {m[key]!r} is not a number.") from None
        return rule
    values = [v.strip() for v in value.split(",") if v.strip()]
    if not values:
        raise Invalid(f"--rule {text!r} has no value after '='; expected ATTR=A,B or ATTR=MIN..MAX.")
    return {"attribute": attribute, "one_of": values}


def _declared_in(config: Path | None, name: str) -> bool:
    from radgate.routing.deployment import load_deployments_file

    return config is not None and any(s.name == name for s in load_deployments_file(config))


def add_deployment(
    db: Database,
    settings: Settings,
    name: str,
    model: str,
    version: str,
    *,
    by: str,
    mode: str = Mode.SILENT.value,
    site: str | None = None,
    rules: Sequence[str] = (),
    destinations: Sequence[str] = (),
    operating_point: str | None = None,
    override: str | None = None,
    config: Path | None = None,
) -> ModeChange:
    """Create a deployment managed from the command line; ``mode="live"`` passes the go-live gate.

    Creation and the gate are one transaction: a refused ``--mode live`` creates nothing. A new deployment
    has no silent results, so without ``override`` the gate refuses; the usual path is ``--mode silent``,
    then ``set-mode NAME live`` once the checks pass.
    """
    target = Mode.parse(mode)
    if _declared_in(config, name):
        raise Conflict(
            f"deployment {name!r} is declared in {config} ([[deployments]]) and managed there; "
            "edit that entry, or choose another name."
        )
    raw: dict[str, Any] = {
        "name": name,
        "model": model,
        "version": version,
        "mode": Mode.SILENT.value if target is Mode.LIVE else target.value,
        "rules": [parse_rule_option(r) for r in rules],
        "destinations": list(destinations),
    }
    if operating_point is not None:
        raw["operating_point"] = operating_point
    spec = DeploymentSpec.from_dict(raw, f"deployment {name!r}", site or settings.site)
    with db.session() as s:
        d = create_deployment(s, spec, changed_by=by)
        verdict = None
        if target is Mode.LIVE:
            verdict = _gate(s, settings.policy, d, by=by, override=override)
            d = set_mode(s, name, Mode.LIVE.value, changed_by=by, note="deployments add --mode live")
    overridden = override if verdict is not None and not verdict.ready else None
    return ModeChange(d, "none", verdict, overridden)


@dataclass(frozen=True)
class Removal:
    """What ``remove`` did: ``deleted``, or ``turned_off`` (results refer to it and keep its name)."""

    name: str
    outcome: str
    results: int


def remove_deployment(db: Database, name: str, *, by: str, note: str | None = None) -> Removal:
    """Remove a deployment created with ``deployments add``: deleted when nothing refers to it, else off.

    A deployment the config file manages is refused (remove its ``[[deployments]]`` entry: it is then
    turned off). Its change history stays in both cases.
    """
    from radgate.engine.tables import Job, Prediction

    with db.session() as s:
        d = get_deployment(s, name)
        row = s.scalars(select(DeploymentRow).where(DeploymentRow.name == name)).one()
        if row.managed_by == MANAGED_BY_CONFIG:
            raise Conflict(
                f"deployment {name!r} is managed by the config file's [[deployments]]; remove its entry "
                "there (the deployment is then turned off, its results kept)."
            )
        results = (s.scalar(select(func.count(Prediction.id)).where(Prediction.deployment == name)) or 0) + (
            s.scalar(select(func.count(Job.id)).where(Job.deployment == name)) or 0
        )
        if results:
            set_mode(s, name, Mode.OFF.value, changed_by=by, note=note or "deployments remove: results kept")
            return Removal(d.name, "turned_off", results)
        delete_deployment(s, name, by, note)
    return Removal(d.name, "deleted", 0)
