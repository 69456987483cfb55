"""Deployments: a model version at a site, with routing rules, a mode (off | silent | live) and destinations.

Deployments are written in the config file as ``[[deployments]]`` tables (keys in ``docs/model-package.md``
and below) and kept in the database, where ``set_mode`` changes a mode while radgate runs; every change is
recorded in ``deployment_changes`` with who and when::

    [[deployments]]
    name = "ptx-triage"                  # unique, [a-z0-9-]
    model = "demo-pneumothorax"          # an installed model (radgate models list)
    version = "1.0.0"
    site = "default"                     # default: the top-level ``site`` setting
    mode = "silent"                      # off | silent | live
    destinations = ["PACS@10.0.0.5:104"] # where live results go (the results writer reads these)
    drop_rules = ["BodyPartExamined"]    # intended-use checks not applied at this site
    rules = [                            # replace the intended-use rule on the same attribute, or add one
      { attribute = "ViewPosition", one_of = ["PA", "AP"] },
      { attribute = "PatientAge", min = 16, max = 120 },
    ]

Config and database meet in :func:`sync_deployments`: an entry whose text changed in the config is applied
(and audited as changed by ``config``); an unchanged entry leaves a mode set at run time alone, so a restart
does not undo ``radgate deployments set-mode``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.models.manifest import IntendedUse, Manifest
from radgate.models.registry import RegistryError, get_model, utcnow
from radgate.routing.rules import AgeRange, OneOf, Rule, RuleError, rule_from_dict
from radgate.routing.tables import DeploymentChange, DeploymentRow

__all__ = [
    "MODES",
    "Deployment",
    "DeploymentError",
    "DeploymentSpec",
    "deployment_history",
    "effective_rules",
    "get_deployment",
    "has_deployments",
    "intended_use_rules",
    "list_deployments",
    "load_deployments_file",
    "parse_deployments",
    "set_mode",
    "sync_deployments",
]

MODES = ("off", "silent", "live")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SPEC_KEYS = ("name", "model", "version", "site", "mode", "destinations", "rules", "drop_rules")


class DeploymentError(ValueError):
    """A deployment entry is invalid, refers to a model that is not installed, or does not exist."""


def intended_use_rules(use: IntendedUse) -> list[Rule]:
    """The routing rules a manifest's intended use implies, one per attribute it constrains."""
    rules: list[Rule] = [OneOf("Modality", use.modalities)]
    if use.sop_classes:
        rules.append(OneOf("SOPClassUID", use.sop_classes))
    if use.body_parts:
        rules.append(OneOf("BodyPartExamined", use.body_parts))
    if use.views:
        rules.append(OneOf("ViewPosition", use.views))
    if use.age_min is not None or use.age_max is not None:
        rules.append(AgeRange(use.age_min, use.age_max))
    if use.sexes:
        rules.append(OneOf("PatientSex", use.sexes))
    return rules


def effective_rules(
    manifest: Manifest, overrides: Sequence[Rule] = (), drop: Sequence[str] = ()
) -> list[Rule]:
    """Intended-use rules, less those on attributes in ``drop`` or overridden, plus the overrides."""
    replaced = {r.attribute for r in overrides} | set(drop)
    return [r for r in intended_use_rules(manifest.intended_use) if r.attribute not in replaced] + list(
        overrides
    )


@dataclass(frozen=True)
class DeploymentSpec:
    """One ``[[deployments]]`` entry of the config file, checked."""

    name: str
    model: str
    version: str
    site: str = "default"
    mode: str = "silent"
    destinations: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    drop_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise DeploymentError(
                f"deployment name {self.name!r} is invalid; expected lower-case letters, digits and '-'."
            )
        for key in ("model", "version", "site"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise DeploymentError(
                    f"deployment {self.name!r}: {key} is {value!r}; expected a non-empty string."
                )
        if self.mode not in MODES:
            raise DeploymentError(
                f"deployment {self.name!r}: mode is {self.mode!r}; expected one of off, silent, live."
            )

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], where: str = "deployments[0]", default_site: str = "default"
    ) -> DeploymentSpec:
        if not isinstance(raw, Mapping):
            raise DeploymentError(f"{where} is {raw!r}; expected a [[deployments]] table.")
        unknown = sorted(set(raw) - set(SPEC_KEYS))
        if unknown:
            raise DeploymentError(
                f"{where} has unknown key(s) {', '.join(unknown)}; expected {', '.join(SPEC_KEYS)}."
            )
        for key in ("name", "model", "version"):
            if key not in raw:
                raise DeploymentError(
                    f"{where} has no {key!r}; every deployment needs name, model and version."
                )
        lists: dict[str, tuple[Any, ...]] = {}
        for key in ("destinations", "rules", "drop_rules"):
            value = raw.get(key, [])
            if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
                raise DeploymentError(f"{where}.{key} is {value!r}; expected a list.")
            lists[key] = tuple(value)
        try:
            rules = tuple(rule_from_dict(r, f"{where}.rules[{i}]") for i, r in enumerate(lists["rules"]))
        except RuleError as exc:
            raise DeploymentError(str(exc)) from exc
        return cls(
            name=raw["name"],
            model=raw["model"],
            version=str(raw["version"]),
            site=raw.get("site", default_site),
            mode=raw.get("mode", "silent"),
            destinations=tuple(str(d) for d in lists["destinations"]),
            rules=rules,
            drop_rules=tuple(str(d) for d in lists["drop_rules"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "site": self.site,
            "mode": self.mode,
            "destinations": list(self.destinations),
            "rules": [r.to_dict() for r in self.rules],
            "drop_rules": list(self.drop_rules),
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def parse_deployments(raw: Any, default_site: str = "default") -> list[DeploymentSpec]:
    """Check the ``deployments`` array of the config (a list of tables); names must be unique."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DeploymentError(f"'deployments' is {raw!r}; expected an array of tables ([[deployments]]).")
    specs = [DeploymentSpec.from_dict(item, f"deployments[{i}]", default_site) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise DeploymentError(f"deployment name {spec.name!r} appears twice; names must be unique.")
        seen.add(spec.name)
    return specs


def has_deployments(path: Path) -> bool:
    """Whether a TOML config file has a ``deployments`` key (an empty array counts: it means "none")."""
    try:
        return "deployments" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeploymentError(f"Cannot read deployments from {str(path)!r}: {exc}") from exc


def load_deployments_file(path: Path | None, default_site: str = "default") -> list[DeploymentSpec]:
    """The ``[[deployments]]`` of a TOML config file (none when ``path`` is ``None`` or has no such array)."""
    if path is None:
        return []
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeploymentError(f"Cannot read deployments from {str(path)!r}: {exc}") from exc
    return parse_deployments(data.get("deployments"), default_site)


@dataclass(frozen=True)
class Deployment:
    """A deployment as stored, with its model's manifest and the rules in force."""

    id: int
    name: str
    model_version_id: int
    model_name: str
    model_version: str
    site: str
    mode: str
    destinations: tuple[str, ...]
    overrides: tuple[Rule, ...]
    drop_rules: tuple[str, ...]
    manifest: Manifest
    created_at: datetime
    updated_at: datetime
    rules: tuple[Rule, ...] = field(default=())

    @classmethod
    def from_row(cls, session: Session, row: DeploymentRow) -> Deployment:
        model = get_model(session, row.model_name, row.model_version)
        overrides = tuple(rule_from_dict(r, f"deployment {row.name} rule") for r in json.loads(row.rules))
        drop = tuple(json.loads(row.drop_rules))
        return cls(
            id=row.id,
            name=row.name,
            model_version_id=row.model_version_id,
            model_name=row.model_name,
            model_version=row.model_version,
            site=row.site,
            mode=row.mode,
            destinations=tuple(json.loads(row.destinations)),
            overrides=overrides,
            drop_rules=drop,
            manifest=model.manifest,
            created_at=row.created_at,
            updated_at=row.updated_at,
            rules=tuple(effective_rules(model.manifest, overrides, drop)),
        )


def _audit(
    session: Session, name: str, field_: str, old: Any, new: Any, by: str, note: str | None = None
) -> None:
    session.add(
        DeploymentChange(
            at=utcnow(),
            deployment=name,
            field=field_,
            old_value=None if old is None else str(old),
            new_value=None if new is None else str(new),
            changed_by=by,
            note=note,
        )
    )


def sync_deployments(
    session: Session, specs: Sequence[DeploymentSpec], changed_by: str = "config"
) -> list[str]:
    """Bring the database in line with the config's deployments; returns the changes made, in words.

    New entries are created; entries whose config text changed are updated field by field; entries no
    longer in the config are turned off (their history stays). Two active deployments of the same model
    version are refused: there is exactly one result per series and model version.
    """
    active: dict[tuple[str, str], str] = {}
    for spec in specs:
        if spec.mode == "off":
            continue
        model_key = (spec.model, spec.version)
        if model_key in active:
            raise DeploymentError(
                f"deployments {active[model_key]!r} and {spec.name!r} both run {spec.model} {spec.version}; "
                f"one model version can have one active deployment (turn one off)."
            )
        active[model_key] = spec.name
    changes: list[str] = []
    now = utcnow()
    rows = {r.name: r for r in session.scalars(select(DeploymentRow))}
    for spec in specs:
        try:
            model = get_model(session, spec.model, spec.version)
        except RegistryError as exc:
            raise DeploymentError(f"deployment {spec.name!r}: {exc}") from exc
        effective_rules(model.manifest, spec.rules, spec.drop_rules)
        digest = spec.digest()
        values: dict[str, Any] = {
            "model_version_id": model.id,
            "model_name": spec.model,
            "model_version": spec.version,
            "site": spec.site,
            "mode": spec.mode,
            "rules": json.dumps([r.to_dict() for r in spec.rules]),
            "drop_rules": json.dumps(list(spec.drop_rules)),
            "destinations": json.dumps(list(spec.destinations)),
        }
        row = rows.get(spec.name)
        if row is None:
            session.add(
                DeploymentRow(name=spec.name, config_digest=digest, created_at=now, updated_at=now, **values)
            )
            _audit(session, spec.name, "created", None, json.dumps(spec.to_dict()), changed_by)
            changes.append(f"created {spec.name} ({spec.model} {spec.version}, {spec.mode})")
            continue
        if row.config_digest == digest:
            continue
        for key, value in values.items():
            old = getattr(row, key)
            if old != value:
                if key != "model_version_id":
                    _audit(session, spec.name, key, old, value, changed_by)
                    changes.append(f"{spec.name}: {key} {old} -> {value}")
                setattr(row, key, value)
        row.config_digest = digest
        row.updated_at = now
    names = {s.name for s in specs}
    for name, row in rows.items():
        if name not in names and row.mode != "off":
            _audit(session, name, "mode", row.mode, "off", changed_by, note="no longer in the config")
            changes.append(f"{name}: mode {row.mode} -> off (no longer in the config)")
            row.mode = "off"
            row.config_digest = None
            row.updated_at = now
    session.flush()
    return changes


def _row(session: Session, name: str) -> DeploymentRow:
    row = session.scalars(select(DeploymentRow).where(DeploymentRow.name == name)).one_or_none()
    if row is None:
        known = sorted(session.scalars(select(DeploymentRow.name)))
        raise DeploymentError(f"No deployment named {name!r}; known: {', '.join(known) or 'none'}.")
    return row


def list_deployments(session: Session) -> list[Deployment]:
    return [
        Deployment.from_row(session, r)
        for r in session.scalars(select(DeploymentRow).order_by(DeploymentRow.name))
    ]


def get_deployment(session: Session, name: str) -> Deployment:
    return Deployment.from_row(session, _row(session, name))


def set_mode(session: Session, name: str, mode: str, changed_by: str, note: str | None = None) -> Deployment:
    """Change a deployment's mode now (workers read it per job), recording who and when."""
    if mode not in MODES:
        raise DeploymentError(f"mode {mode!r} is not one of off, silent, live.")
    row = _row(session, name)
    if mode != "off":
        clash = session.scalars(
            select(DeploymentRow).where(
                DeploymentRow.model_name == row.model_name,
                DeploymentRow.model_version == row.model_version,
                DeploymentRow.name != name,
                DeploymentRow.mode != "off",
            )
        ).first()
        if clash is not None:
            raise DeploymentError(
                f"deployment {clash.name!r} already runs {row.model_name} {row.model_version} "
                f"({clash.mode}); "
                f"turn it off first."
            )
    if row.mode != mode:
        _audit(session, name, "mode", row.mode, mode, changed_by, note)
        row.mode = mode
        row.updated_at = utcnow()
        session.flush()
    return Deployment.from_row(session, row)


def deployment_history(session: Session, name: str | None = None) -> list[DeploymentChange]:
    query = select(DeploymentChange).order_by(DeploymentChange.at, DeploymentChange.id)
    if name is not None:
        query = query.where(DeploymentChange.deployment == name)
    return list(session.scalars(query))
