"""Deployments: a model version at a site, with routing rules, a mode, the policy's settings and destinations.

Deployments are written in the config file as ``[[deployments]]`` tables (keys in ``docs/model-package.md``
and below) and kept in the database, where ``set_mode`` changes a mode while radgate runs; every change is
recorded in ``deployment_changes`` with who and when::

    [[deployments]]
    name = "ptx-triage"                  # unique, [a-z0-9-]
    model = "demo-pneumothorax"          # an installed model (radgate models list)
    version = "1.0.0"
    site = "default"                     # default: the top-level ``site`` setting
    mode = "silent"                      # off | silent | shadow | live (radgate.policy.Mode)
    destinations = ["PACS@10.0.0.5:104"] # where live results go (the results writer reads these)
    operating_point = "default"          # one of the model's; default: its first for the primary finding
    findings = ["pneumothorax"]          # the findings this deployment declares; default: all the model's
    incidental = "review_only"           # report | suppress | review_only: outputs outside ``findings``
    drop_rules = ["BodyPartExamined"]    # intended-use checks not applied at this site
    rules = [                            # replace the intended-use rule on the same attribute, or add one
      { attribute = "ViewPosition", one_of = ["PA", "AP"] },
      { attribute = "PatientAge", min = 16, max = 120 },
    ]

Config and database meet in :func:`sync_deployments`: an entry whose text changed in the config is applied
(and audited as changed by ``config``); an unchanged entry leaves a mode set at run time alone, so a restart
does not undo ``radgate deployments set-mode``. Several deployments may run one model version (one per
site; a ``shadow`` challenger beside its ``live`` champion): each gets its own result per series.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.errors import Invalid, NotFound
from radgate.models.manifest import IntendedUse, Manifest
from radgate.models.registry import RegistryError, get_model
from radgate.policy.enum import IncidentalRule, Mode
from radgate.routing.rules import AgeRange, OneOf, Rule, RuleError, rule_from_dict
from radgate.routing.tables import DeploymentChange, DeploymentRow

__all__ = [
    "MANAGED_BY_CLI",
    "MANAGED_BY_CONFIG",
    "MODES",
    "Deployment",
    "DeploymentError",
    "DeploymentNotFound",
    "DeploymentSpec",
    "create_deployment",
    "delete_deployment",
    "deployment_history",
    "record_change",
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

MODES = tuple(m.value for m in Mode)
#: Who manages a deployment (``deployments.managed_by``): the config file's ``[[deployments]]``, or the
#: command line (``radgate deployments add`` / ``remove``). One owner each: see docs/configuration.md.
MANAGED_BY_CONFIG = "config"
MANAGED_BY_CLI = "cli"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")



class DeploymentError(Invalid, ValueError):
    """A deployment entry is invalid or refers to a model that is not installed."""


class DeploymentNotFound(DeploymentError, NotFound):  # noqa: N818 - a kind of NotFound
    """No deployment has that name."""

    kind = NotFound.kind


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


def _text(value: Any) -> Any:
    """TOML numbers where a text is meant (``version = 1.0``) are taken as written."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _rule(value: Any) -> Any:
    """A rule table of the config (``{attribute = ..., one_of = [...]}``) as a :class:`Rule`."""
    return rule_from_dict(value, "rule") if isinstance(value, Mapping) else value


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))
class DeploymentSpec:
    """One ``[[deployments]]`` entry of the config file, checked: the schema, declared once.

    A pydantic dataclass: its fields are the keys (unknown keys are refused), their types are checked and
    the checks below add the rules pydantic's types cannot say; :meth:`from_dict` turns every complaint
    into one line naming the key, the value and what was expected.
    """

    name: str
    model: str
    version: Annotated[str, BeforeValidator(_text)]
    site: str = "default"
    mode: str = Mode.SILENT.value
    destinations: tuple[str, ...] = ()
    rules: tuple[Annotated[Any, BeforeValidator(_rule)], ...] = ()
    drop_rules: tuple[str, ...] = ()
    operating_point: Annotated[str | None, BeforeValidator(_text)] = None
    findings: tuple[str, ...] | None = None  # the findings it declares; None: all the model's
    incidental: str = IncidentalRule.REVIEW_ONLY.value

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise DeploymentError(
                f"deployment name {self.name!r} is invalid; expected lower-case letters, digits and '-'."
            )
        for key in ("model", "version", "site"):
            if not getattr(self, key).strip():
                raise DeploymentError(
                    f"deployment {self.name!r}: {key} is empty; expected a non-empty string."
                )
        if self.mode not in MODES:
            raise DeploymentError(
                f"deployment {self.name!r}: mode is {self.mode!r}; expected one of {', '.join(MODES)}."
            )
        if self.incidental not in {r.value for r in IncidentalRule}:
            raise DeploymentError(
                f"deployment {self.name!r}: incidental is {self.incidental!r}; expected one of "
                f"{', '.join(r.value for r in IncidentalRule)}."
            )
        for rule in self.rules:
            if not isinstance(getattr(rule, "attribute", None), str):
                raise DeploymentError(f"deployment {self.name!r}: rule {rule!r} is not a routing rule.")

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], where: str = "deployments[0]", default_site: str = "default"
    ) -> DeploymentSpec:
        if not isinstance(raw, Mapping):
            raise DeploymentError(f"{where} is {raw!r}; expected a [[deployments]] table.")
        values = {"site": default_site, **raw}
        try:
            return _SPEC.validate_python(values)
        except RuleError as exc:
            raise DeploymentError(f"{where}: {exc}") from exc
        except ValidationError as exc:
            raise DeploymentError(_explain(exc, where)) from None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["rules"] = [r.to_dict() for r in self.rules]
        for key in ("destinations", "drop_rules"):
            out[key] = list(out[key])
        # Optional keys at their defaults are left out, so the digest of an entry written before they existed
        # does not change (a changed digest re-applies the entry).
        for key, default in (("operating_point", None), ("findings", None), ("incidental", "review_only")):
            if out[key] == default:
                del out[key]
        if "findings" in out:
            out["findings"] = list(out["findings"])
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


_SPEC = TypeAdapter(DeploymentSpec)
#: The keys of a ``[[deployments]]`` table (the schema's fields).
SPEC_KEYS = tuple(f.name for f in dataclasses.fields(DeploymentSpec))


def _explain(exc: ValidationError, where: str) -> str:
    """pydantic's complaints as radgate's one-line errors: the key, the value, what was expected."""
    parts = []
    unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "unexpected_keyword_argument")
    if unknown:
        parts.append(f"has unknown key(s) {', '.join(unknown)}; expected {', '.join(SPEC_KEYS)}")
    for e in exc.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "unexpected_keyword_argument":
            continue
        if e["type"] == "value_error" and isinstance(e.get("ctx", {}).get("error"), DeploymentError):
            return str(e["ctx"]["error"])  # our own check, already one line
        if e["type"] == "missing":
            parts.append(f"has no {key!r}; every deployment needs name, model and version")
        elif e["type"] in ("tuple_type", "list_type"):
            parts.append(f"{key} is {e['input']!r}; expected a list")
        else:
            parts.append(f"{key} is {e['input']!r}; {e['msg'][0].lower()}{e['msg'][1:]}")
    return f"{where} " + "; ".join(parts) + "."


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
    operating_point: str | None = None
    findings: tuple[str, ...] | None = None  # declared; None: every finding of the model
    incidental: IncidentalRule = IncidentalRule.REVIEW_ONLY
    managed_by: str = MANAGED_BY_CONFIG  # config: the config file's [[deployments]]; cli: deployments add

    @property
    def Mode(self) -> Mode:  # noqa: N802 - the typed view of ``mode``
        return Mode(self.mode)

    @property
    def declared_findings(self) -> frozenset[str]:
        if self.findings is None:
            return frozenset(f.name for f in self.manifest.findings)
        return frozenset(self.findings)

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
            operating_point=row.operating_point,
            findings=None if row.findings is None else tuple(json.loads(row.findings)),
            incidental=IncidentalRule(row.incidental or IncidentalRule.REVIEW_ONLY.value),
            managed_by=row.managed_by or MANAGED_BY_CONFIG,
        )


def record_change(
    session: Session, name: str, field_: str, old: Any, new: Any, by: str, note: str | None = None
) -> None:
    """Record a change to deployment ``name`` in its history and in the audit log (same transaction)."""
    from radgate import audit  # the audit log is a leaf package; imported here to keep routing light

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
    audit.record(
        session,
        by,
        f"deployment.{field_}",
        name,
        {"from": None if old is None else str(old), "to": None if new is None else str(new), "note": note},
    )


#: Called before a config entry is applied (created, or changed since last applied) with the stored row
#: (``None`` for a new one); raises to refuse it. The config path passes the go-live gate here
#: (:func:`radgate.services.deployments.config_live_gate`), so ``mode = "live"`` cannot bypass it.
SyncGate = Callable[[Session, DeploymentSpec, DeploymentRow | None], None]


def sync_deployments(
    session: Session,
    specs: Sequence[DeploymentSpec],
    changed_by: str = "config",
    gate: SyncGate | None = None,
) -> list[str]:
    """Bring the database in line with the config's deployments; returns the changes made, in words.

    New entries are created; entries whose config text changed are updated field by field; entries the
    config created and no longer lists are turned off (their history stays). Deployments created with
    ``radgate deployments add`` (``managed_by = "cli"``) are not the config's: a config entry of the same
    name is refused, and leaving them out of the config changes nothing. Several deployments may run the
    same model version: each has its own result per series.
    """
    changes: list[str] = []
    now = utcnow()
    rows = {r.name: r for r in session.scalars(select(DeploymentRow))}
    for spec in specs:
        values = _spec_values(session, spec)
        digest = spec.digest()
        row = rows.get(spec.name)
        if row is not None and row.managed_by == MANAGED_BY_CLI:
            raise DeploymentError(
                f"deployment {spec.name!r} is managed from the command line (`radgate deployments add`), "
                "not by the config file; give this [[deployments]] entry another name."
            )
        if gate is not None and (row is None or row.config_digest != digest):
            gate(session, spec, row)
        if row is None:
            _insert(session, spec, values, MANAGED_BY_CONFIG, changed_by, digest)
            changes.append(f"created {spec.name} ({spec.model} {spec.version}, {spec.mode})")
            continue
        if row.config_digest == digest:
            continue
        for key, value in values.items():
            old = getattr(row, key)
            if old != value:
                if key != "model_version_id":
                    record_change(session, spec.name, key, old, value, changed_by)
                    changes.append(f"{spec.name}: {key} {old} -> {value}")
                setattr(row, key, value)
        row.config_digest = digest
        row.updated_at = now
    names = {s.name for s in specs}
    for name, row in rows.items():
        if name not in names and row.mode != "off" and row.managed_by != MANAGED_BY_CLI:
            record_change(session, name, "mode", row.mode, "off", changed_by, note="no longer in the config")
            changes.append(f"{name}: mode {row.mode} -> off (no longer in the config)")
            row.mode = "off"
            row.config_digest = None
            row.updated_at = now
    session.flush()
    return changes


def _spec_values(session: Session, spec: DeploymentSpec) -> dict[str, Any]:
    """The row's columns for ``spec``, once its model, rules and policy settings are checked."""
    try:
        model = get_model(session, spec.model, spec.version)
    except RegistryError as exc:
        raise DeploymentError(f"deployment {spec.name!r}: {exc}") from exc
    effective_rules(model.manifest, spec.rules, spec.drop_rules)
    _check_policy_settings(spec, model.manifest)
    return {
        "model_version_id": model.id,
        "model_name": spec.model,
        "model_version": spec.version,
        "site": spec.site,
        "mode": spec.mode,
        "rules": json.dumps([r.to_dict() for r in spec.rules]),
        "drop_rules": json.dumps(list(spec.drop_rules)),
        "destinations": json.dumps(list(spec.destinations)),
        "operating_point": spec.operating_point,
        "findings": None if spec.findings is None else json.dumps(list(spec.findings)),
        "incidental": spec.incidental,
    }


def _insert(
    session: Session,
    spec: DeploymentSpec,
    values: dict[str, Any],
    managed_by: str,
    changed_by: str,
    digest: str | None,
) -> DeploymentRow:
    now = utcnow()
    row = DeploymentRow(
        name=spec.name, config_digest=digest, managed_by=managed_by, created_at=now, updated_at=now, **values
    )
    session.add(row)
    record_change(session, spec.name, "created", None, json.dumps(spec.to_dict()), changed_by)
    session.flush()
    return row


def create_deployment(session: Session, spec: DeploymentSpec, changed_by: str) -> Deployment:
    """Create a deployment managed from the command line (``radgate deployments add``), recording who.

    The caller decides the mode: :func:`radgate.services.deployments.add_deployment` creates it in the
    requested mode unless that is ``live``, which only the go-live gate may grant.
    """
    if session.scalars(select(DeploymentRow.id).where(DeploymentRow.name == spec.name)).first() is not None:
        raise DeploymentError(
            f"deployment {spec.name!r} already exists; see `radgate deployments show {spec.name}`, "
            "or choose another name."
        )
    row = _insert(session, spec, _spec_values(session, spec), MANAGED_BY_CLI, changed_by, None)
    return Deployment.from_row(session, row)


def delete_deployment(session: Session, name: str, changed_by: str, note: str | None = None) -> None:
    """Delete deployment ``name``'s row (its change history stays), recording who and why."""
    row = _row(session, name)
    record_change(session, name, "removed", row.mode, None, changed_by, note)
    session.delete(row)
    session.flush()


def _check_policy_settings(spec: DeploymentSpec, manifest: Manifest) -> None:
    ops = [op.name for op in manifest.operating_points]
    if spec.operating_point is not None and spec.operating_point not in ops:
        raise DeploymentError(
            f"deployment {spec.name!r}: operating_point is {spec.operating_point!r}; model "
            f"{spec.model} {spec.version} has {', '.join(ops)}."
        )
    names = [f.name for f in manifest.findings]
    for finding in spec.findings or ():
        if finding not in names:
            raise DeploymentError(
                f"deployment {spec.name!r}: finding {finding!r} is not one of model {spec.model} "
                f"{spec.version}'s ({', '.join(names)})."
            )


def _row(session: Session, name: str) -> DeploymentRow:
    row = session.scalars(select(DeploymentRow).where(DeploymentRow.name == name)).one_or_none()
    if row is None:
        known = sorted(session.scalars(select(DeploymentRow.name)))
        raise DeploymentNotFound(
            f"No deployment named {name!r}; known: {', '.join(known) or 'none'}. "
            "See `radgate deployments list`."
        )
    return row


#: Built once: it is read on every completed series' path (radgate.engine.queue says why).
_ALL_DEPLOYMENTS = select(DeploymentRow).order_by(DeploymentRow.name)


def list_deployments(session: Session) -> list[Deployment]:
    return [Deployment.from_row(session, r) for r in session.scalars(_ALL_DEPLOYMENTS)]


def get_deployment(session: Session, name: str) -> Deployment:
    return Deployment.from_row(session, _row(session, name))


def set_mode(session: Session, name: str, mode: str, changed_by: str, note: str | None = None) -> Deployment:
    """Change a deployment's mode now (workers read it per job), recording who and when."""
    if mode not in MODES:
        raise DeploymentError(f"mode {mode!r} is not one of {', '.join(MODES)}.")
    row = _row(session, name)
    if row.mode != mode:
        record_change(session, name, "mode", row.mode, mode, changed_by, note)
        row.mode = mode
        row.updated_at = utcnow()
        session.flush()
    return Deployment.from_row(session, row)


def deployment_history(session: Session, name: str | None = None) -> list[DeploymentChange]:
    query = select(DeploymentChange).order_by(DeploymentChange.at, DeploymentChange.id)
    if name is not None:
        query = query.where(DeploymentChange.deployment == name)
    return list(session.scalars(query))
