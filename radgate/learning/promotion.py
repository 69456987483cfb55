"""Promotion of a challenger under a predetermined change control plan, and its rollback.

1. ``lock_criteria``: before comparing, the data scientist writes the criteria the challenger must meet
   against its champion (TOML, below) and locks them: the exact text, its SHA-256, who, when, and how many
   challenger results already existed (0 means truly pre-registered; more is stated in the change record).
2. ``promote``: compares the two deployments on paired cases (:mod:`radgate.learning.compare`), judges the
   locked criteria (the text recorded at lock time, never the file as it is now; an edited file is flagged),
   and only when every criterion passes makes the challenger ``live`` and the champion ``shadow`` (or
   ``off``) through :func:`radgate.services.deployments.set_deployment_mode`, so the go-live gate applies
   (``override`` passes that gate with a recorded reason; it never passes a failed promotion criterion).
   It writes a :class:`~radgate.learning.tables.ChangeRecord` — what changed (models, versions, weight
   hashes, modes), the data used (paired cases, SHA-256 of their UIDs and labels), the metrics, each
   criterion's verdict, the criteria hash, who approved — and an audit entry ``learning.promote``.
3. ``rollback``: restores both deployments' modes from the latest promotion involving the deployment,
   marks that record ``rolled_back`` and audits ``learning.rollback``.

Criteria file::

    [promotion]
    min_pairs = 200                 # paired, labelled cases
    min_positives = 20
    min_negatives = 20
    delta_auc_min = 0.0             # ΔAUC (challenger - champion) point estimate at least
    delta_auc_ci_lower_min = -0.02  # lower confidence limit at least (non-inferiority margin)
    delong_p_max = 0.05             # superiority: DeLong's paired p at most
    sensitivity_drop_max = 0.02     # challenger sensitivity >= champion's - 0.02 (operating points)
    specificity_drop_max = 0.05
    ece_max = 0.10                  # challenger's expected calibration error at most
    scanner_delta_auc_min = -0.05   # every scanner with an AUC: ΔAUC at least
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from radgate import audit
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.errors import Conflict, Invalid, NotFound
from radgate.learning.compare import Comparison, compare_deployments
from radgate.learning.tables import ChangeRecord, PromotionCriteria
from radgate.policy import Mode
from radgate.routing.deployment import get_deployment
from radgate.services.deployments import set_deployment_mode

__all__ = [
    "CRITERIA",
    "Criterion",
    "Promotion",
    "judge",
    "lock_criteria",
    "parse_criteria",
    "promote",
    "rollback",
]

CRITERIA: dict[str, str] = {
    "min_pairs": "paired labelled cases at least",
    "min_positives": "paired positives at least",
    "min_negatives": "paired negatives at least",
    "delta_auc_min": "ΔAUC point estimate at least",
    "delta_auc_ci_lower_min": "ΔAUC lower confidence limit at least",
    "delong_p_max": "DeLong paired p at most",
    "sensitivity_drop_max": "sensitivity drop from the champion at most",
    "specificity_drop_max": "specificity drop from the champion at most",
    "ece_max": "challenger ECE at most",
    "scanner_delta_auc_min": "ΔAUC on every scanner with an AUC at least",
}
_COUNTS = {"min_pairs", "min_positives", "min_negatives"}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_criteria(text: str, origin: str = "criteria") -> dict[str, float]:
    """Check a promotion criteria file: one ``[promotion]`` table of known keys with numbers."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"{origin} is not valid TOML: {exc}") from exc
    if set(doc) != {"promotion"} or not isinstance(doc["promotion"], dict) or not doc["promotion"]:
        raise Invalid(f"{origin}: expected exactly one [promotion] table with at least one criterion")
    out: dict[str, float] = {}
    for key, value in doc["promotion"].items():
        if key not in CRITERIA:
            raise Invalid(f"{origin}: unknown criterion {key!r}; known: {', '.join(sorted(CRITERIA))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid(f"{origin}: {key} must be a number, got {value!r}")
        if key in _COUNTS and (value < 0 or not float(value).is_integer()):
            raise Invalid(f"{origin}: {key} must be a whole number >= 0, got {value!r}")
        out[key] = float(value)
    return out


@dataclass(frozen=True)
class Criterion:
    key: str
    requirement: str
    required: float
    observed: float | None
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "requirement": self.requirement,
            "required": self.required,
            "observed": self.observed,
            "outcome": "pass" if self.passed else "fail",
            "detail": self.detail,
        }


def _rate(values: dict[str, Any], who: str, what: str) -> float | None:
    estimate = values["operating_points"][who][what]["estimate"]
    return None if estimate is None else float(estimate)


def judge(criteria: dict[str, float], values: dict[str, Any]) -> list[Criterion]:
    """Each locked criterion against the comparison's numbers."""
    out = []
    for key, required in criteria.items():
        detail = ""
        observed: float | None
        if key == "min_pairs":
            observed = float(values["n_pairs"])
        elif key == "min_positives":
            observed = float(values["positives"])
        elif key == "min_negatives":
            observed = float(values["negatives"])
        elif key == "delta_auc_min":
            observed = values["delta_auc"]
        elif key == "delta_auc_ci_lower_min":
            observed = values["delta_auc_ci"][0]
        elif key == "delong_p_max":
            observed = values["delong_p"]
        elif key in ("sensitivity_drop_max", "specificity_drop_max"):
            what = key.split("_")[0]
            champ, chall = _rate(values, "champion", what), _rate(values, "challenger", what)
            observed = None if champ is None or chall is None else champ - chall
            detail = f"champion {champ}, challenger {chall}"
        elif key == "ece_max":
            observed = values["calibration"]["challenger"]["ece"]
        else:  # scanner_delta_auc_min
            deltas = {r["level"]: r["delta_auc"] for r in values["per_scanner"] if r["delta_auc"] is not None}
            worst = min(deltas, key=lambda k: deltas[k]) if deltas else None
            observed = deltas[worst] if worst is not None else None
            detail = f"worst scanner: {worst}" if worst else "no scanner with enough cases for an AUC"
        if observed is None:
            passed = False
        elif key.endswith("_max"):
            passed = observed <= required
        else:
            passed = observed >= required
        out.append(Criterion(key, CRITERIA[key], required, observed, passed, detail))
    return out


@dataclass(frozen=True)
class LockedCriteria:
    id: int
    challenger: str
    champion: str
    sha256: str
    text: str
    path: str | None
    locked_at: str
    locked_by: str
    challenger_results_at_lock: int


def _locked(row: PromotionCriteria) -> LockedCriteria:
    return LockedCriteria(
        row.id,
        row.challenger,
        row.champion,
        row.criteria_sha256,
        row.criteria_toml,
        row.criteria_path,
        row.locked_at.isoformat(),
        row.locked_by,
        row.challenger_results_at_lock,
    )


def lock_criteria(db: Database, challenger: str, champion: str, path: Path, by: str) -> LockedCriteria:
    """Record the criteria file's exact text and SHA-256 for ``challenger`` against ``champion``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"cannot read criteria file {path}: {exc.strerror or exc}") from exc
    parse_criteria(text, path.name)
    if challenger == champion:
        raise Invalid(f"champion and challenger are both {challenger!r}; name two deployments")
    with db.session() as s:
        get_deployment(s, challenger)
        get_deployment(s, champion)
        existing = int(
            s.scalar(select(func.count()).select_from(Prediction).where(Prediction.deployment == challenger))
            or 0
        )
        row = PromotionCriteria(
            challenger=challenger,
            champion=champion,
            criteria_sha256=sha256_text(text),
            criteria_toml=text,
            criteria_path=str(path.resolve()),
            locked_at=utcnow(),
            locked_by=by,
            challenger_results_at_lock=existing,
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            by,
            "learning.lock_criteria",
            challenger,
            {"champion": champion, "criteria_sha256": row.criteria_sha256, "criteria_id": row.id},
        )
        return _locked(row)


def latest_criteria(db: Database, challenger: str) -> LockedCriteria:
    with db.session() as s:
        row = s.scalars(
            select(PromotionCriteria)
            .where(PromotionCriteria.challenger == challenger)
            .order_by(PromotionCriteria.id.desc())
        ).first()
        if row is None:
            raise Conflict(
                f"no promotion criteria are locked for {challenger!r}; write them first and run "
                f"`radgate deployments lock-criteria {challenger} --champion CHAMPION --criteria FILE`"
            )
        return _locked(row)


@dataclass(frozen=True)
class Promotion:
    record_id: int
    passed: bool
    criteria: list[Criterion]
    comparison: Comparison
    flags: tuple[str, ...]
    record: dict[str, Any]


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def promote(
    db: Database,
    settings: Settings,
    challenger: str,
    *,
    by: str,
    override: str | None = None,
    champion_mode: str = "shadow",
) -> Promotion:
    """Promote ``challenger`` over the champion its locked criteria name (see the module docstring)."""
    demoted = Mode.parse(champion_mode)
    if demoted not in (Mode.SHADOW, Mode.OFF, Mode.SILENT):
        raise Invalid(f"--champion-mode must be shadow, silent or off, got {champion_mode!r}")
    locked = latest_criteria(db, challenger)
    criteria = parse_criteria(locked.text, f"criteria locked for {challenger}")
    flags = []
    if locked.challenger_results_at_lock:
        flags.append(
            f"criteria were locked when {challenger} already had "
            f"{locked.challenger_results_at_lock} result(s)"
        )
    if locked.path:
        try:
            now_sha = sha256_text(Path(locked.path).read_text(encoding="utf-8"))
        except OSError:
            flags.append(f"criteria file {locked.path} can no longer be read; the locked text is used")
        else:
            if now_sha != locked.sha256:
                flags.append(
                    f"criteria file {locked.path} changed after locking (sha256 {now_sha[:12]}..., locked "
                    f"{locked.sha256[:12]}...); the locked text is used"
                )
    with db.session() as s:
        champ = get_deployment(s, locked.champion)
        chall = get_deployment(s, challenger)
        before = {locked.champion: champ.mode, challenger: chall.mode}
    if chall.mode == Mode.LIVE.value:
        raise Conflict(f"deployment {challenger!r} is already live; nothing to promote")
    comparison = compare_deployments(db, locked.champion, challenger)
    verdict = judge(criteria, comparison.values)
    failed = [c for c in verdict if not c.passed]
    if failed:
        listed = "; ".join(
            f"{c.key}: observed {c.observed if c.observed is None else round(c.observed, 4)}, required "
            f"{'<=' if c.key.endswith('_max') else '>='} {c.required:g}"
            for c in failed
        )
        raise Conflict(
            f"{challenger} does not meet the criteria locked on {locked.locked_at[:10]} "
            f"(sha256 {locked.sha256[:12]}...): {listed}. It stays {chall.mode}."
        )
    note = f"promotion over {locked.champion} (criteria sha256 {locked.sha256[:12]})"
    change = set_deployment_mode(
        db, settings, challenger, Mode.LIVE.value, by=by, note=note, override=override
    )
    set_deployment_mode(db, settings, locked.champion, demoted.value, by=by, note=f"replaced by {challenger}")
    values = comparison.values
    record: dict[str, Any] = {
        "kind": "promotion",
        "what": {
            "challenger": values["challenger"],
            "champion": values["champion"],
            "modes_before": before,
            "modes_after": {challenger: Mode.LIVE.value, locked.champion: demoted.value},
        },
        "data": {
            "n_pairs": values["n_pairs"],
            "positives": values["positives"],
            "negatives": values["negatives"],
            "left_out": values["left_out"],
            "paired_cases_sha256": values["data_sha256"],
        },
        "metrics": {
            k: values[k]
            for k in (
                "auc_champion",
                "auc_challenger",
                "delta_auc",
                "delta_auc_ci",
                "delong_p",
                "mcnemar_p",
                "operating_points",
                "calibration",
                "per_scanner",
                "subgroups",
                "mcnemar",
            )
        },
        "criteria": {
            "id": locked.id,
            "sha256": locked.sha256,
            "locked_at": locked.locked_at,
            "locked_by": locked.locked_by,
            "flags": flags,
        },
        "verdict": [c.as_dict() for c in verdict],
        "approved_by": by,
        "override": change.override,
    }
    digest = hashlib.sha256(_canonical(record).encode()).hexdigest()
    with db.session() as s:
        row = ChangeRecord(
            kind="promotion",
            status="promoted",
            challenger=challenger,
            champion=locked.champion,
            what=_canonical(record["what"]),
            data=_canonical(record["data"]),
            metrics=_canonical(record["metrics"]),
            verdict=_canonical({"criteria": record["verdict"], "flags": flags}),
            criteria_id=locked.id,
            criteria_sha256=locked.sha256,
            approved_by=by,
            override=change.override,
            record_sha256=digest,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            by,
            "learning.promote",
            challenger,
            {
                "change_record": row.id,
                "record_sha256": digest,
                "champion": locked.champion,
                "criteria_sha256": locked.sha256,
                "override": change.override,
                "delta_auc": values["delta_auc"],
                "n_pairs": values["n_pairs"],
            },
        )
        record_id = row.id
    return Promotion(record_id, True, verdict, comparison, tuple(flags), record | {"record_sha256": digest})


@dataclass(frozen=True)
class Rollback:
    record_id: int
    modes: dict[str, str]


def rollback(
    db: Database,
    settings: Settings,
    deployment: str,
    *,
    by: str,
    note: str | None = None,
    override: str | None = None,
) -> Rollback:
    """Undo the latest promotion that involved ``deployment``: both deployments get their modes back."""
    with db.session() as s:
        get_deployment(s, deployment)
        row = s.scalars(
            select(ChangeRecord)
            .where(
                ChangeRecord.status == "promoted",
                (ChangeRecord.challenger == deployment) | (ChangeRecord.champion == deployment),
            )
            .order_by(ChangeRecord.id.desc())
        ).first()
        if row is None:
            raise NotFound(
                f"no promotion of or over {deployment!r} to roll back (see `radgate deployments changes`)"
            )
        before: dict[str, str] = json.loads(row.what)["modes_before"]
        record_id, challenger, champion = row.id, row.challenger, row.champion
    why = note or f"rollback of change record {record_id}"
    # the champion comes back first (through the go-live gate): if the gate refuses, nothing has changed and
    # the challenger stays live, so the site is never left without its live deployment
    set_deployment_mode(db, settings, champion, before[champion], by=by, note=why, override=override)
    set_deployment_mode(db, settings, challenger, before[challenger], by=by, note=why)
    with db.session() as s:
        row = s.get(ChangeRecord, record_id)
        assert row is not None
        row.status = "rolled_back"
        row.rolled_back_at = utcnow()
        row.rolled_back_by = by
        row.rollback_note = note
        audit.record(
            s,
            by,
            "learning.rollback",
            deployment,
            {"change_record": record_id, "modes": before, "note": note},
        )
    return Rollback(record_id, before)


def change_records(db: Database, deployment: str | None = None) -> list[dict[str, Any]]:
    with db.session() as s:
        q = select(ChangeRecord).order_by(ChangeRecord.id)
        if deployment:
            q = q.where((ChangeRecord.challenger == deployment) | (ChangeRecord.champion == deployment))
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "challenger": r.challenger,
                "champion": r.champion,
                "approved_by": r.approved_by,
                "created_at": r.created_at.isoformat(),
                "criteria_sha256": r.criteria_sha256,
                "record_sha256": r.record_sha256,
                "override": r.override,
                "what": json.loads(r.what),
                "data": json.loads(r.data),
                "metrics": json.loads(r.metrics),
                "verdict": json.loads(r.verdict),
                "rolled_back_at": r.rolled_back_at.isoformat() if r.rolled_back_at else None,
                "rolled_back_by": r.rolled_back_by,
            }
            for r in s.scalars(q)
        ]
