"""Silent trials: record the acceptance criteria when the trial starts; evaluate cases against them later.

``start_trial`` stores the criteria *text* and its SHA-256 with the start time, so the evaluation always
uses what was written before the trial, and any later edit of the criteria file is detected and flagged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from radgate.clock import utcnow
from radgate.db import Database
from radgate.errors import Invalid
from radgate.validation.cases import CaseSet
from radgate.validation.criteria import (
    AcceptanceCriteria,
    CriteriaError,
    Verdict,
    evaluate_criteria,
    sha256_text,
)
from radgate.validation.metrics import ValidationSummary, validation_summary_cases
from radgate.validation.tables import Trial

__all__ = [
    "TrialError",
    "TrialEvaluation",
    "TrialInfo",
    "criteria_changes",
    "evaluate_cases",
    "evaluate_trial",
    "get_trial",
    "start_trial",
]

log = logging.getLogger(__name__)


class TrialError(Invalid, ValueError):
    """A trial cannot be started or found."""


@dataclass(frozen=True)
class TrialInfo:
    name: str
    model_name: str
    model_version: str | None
    site: str
    criteria_sha256: str
    criteria_path: str | None
    started_at: datetime
    criteria_text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "site": self.site,
            "criteria_sha256": self.criteria_sha256,
            "criteria_path": self.criteria_path,
            "started_at": self.started_at.isoformat(timespec="seconds"),
        }


def _info(row: Trial) -> TrialInfo:
    return TrialInfo(
        row.name,
        row.model_name,
        row.model_version,
        row.site,
        row.criteria_sha256,
        row.criteria_path,
        row.started_at,
        row.criteria_toml,
    )


def start_trial(
    db: Database,
    criteria_path: Path,
    model_name: str,
    name: str | None = None,
    model_version: str | None = None,
    site: str = "default",
    now: datetime | None = None,
) -> TrialInfo:
    """Check the criteria file, then record its text, SHA-256 and the start time under ``name``.

    ``name`` defaults to ``MODEL-YYYYMMDD``. A trial name is used once.
    """
    criteria = AcceptanceCriteria.load(criteria_path)
    started = now or utcnow()
    trial_name = name or f"{model_name}-{started:%Y%m%d}"
    with db.session() as session:
        if session.scalars(select(Trial).where(Trial.name == trial_name)).first() is not None:
            raise TrialError(f"a trial named {trial_name!r} already exists; choose another --name")
        row = Trial(
            name=trial_name,
            model_name=model_name,
            model_version=model_version,
            site=site,
            criteria_sha256=criteria.sha256,
            criteria_toml=criteria.text,
            criteria_path=str(criteria_path.resolve()),
            started_at=started,
        )
        session.add(row)
        session.flush()
        info = _info(row)
    log.info("trial %s started for model %s, criteria sha256 %s", trial_name, model_name, criteria.sha256)
    return info


def get_trial(db: Database, name: str) -> TrialInfo:
    with db.session() as session:
        row = session.scalars(select(Trial).where(Trial.name == name)).first()
        if row is None:
            known = session.scalars(select(Trial.name).order_by(Trial.started_at)).all()
            raise TrialError(f"no trial named {name!r}; known trials: {', '.join(known) or 'none'}")
        return _info(row)


@dataclass(frozen=True)
class TrialEvaluation:
    """The validation result, each criterion's verdict, the recommendation and any flags."""

    summary: ValidationSummary
    verdict: Verdict
    criteria: AcceptanceCriteria
    trial: TrialInfo | None
    flags: tuple[str, ...]

    @property
    def validation(self) -> dict[str, Any]:
        """The validation summary as the ``radgate validate --json`` object."""
        return self.summary.to_json()

    def as_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial.as_dict() if self.trial else None,
            "criteria_sha256": self.criteria.sha256,
            "flags": list(self.flags),
            **self.verdict.as_dict(),
            "validation": self.validation,
        }


def evaluate_cases(
    cases: CaseSet, criteria: AcceptanceCriteria, trial: TrialInfo | None = None, flags: tuple[str, ...] = ()
) -> TrialEvaluation:
    """Analyse ``cases`` as the criteria's ``[analysis]`` says, then judge them."""
    plan = criteria.analysis
    missing = [c for c in plan.subgroups if c not in cases.attributes]
    if missing:
        raise CriteriaError(f"the criteria name subgroup column(s) {missing} that the cases do not have")
    summary = validation_summary_cases(
        cases,
        plan.threshold,
        plan.prevalence,
        plan.subgroups,
        None,
        plan.confidence,
        plan.min_positives_per_subgroup,
        plan.min_negatives_per_subgroup,
    )
    all_flags = list(flags)
    if trial is None:
        all_flags.append(
            "criteria were not registered with `radgate trial start`: this is not a pre-registered evaluation"
        )
    verdict = evaluate_criteria(summary, criteria)
    return TrialEvaluation(summary, verdict, criteria, trial, tuple(all_flags))


def criteria_changes(trial: TrialInfo, criteria_file: Path | None = None) -> tuple[str, ...]:
    """Flags for criteria edited after the trial started: the recorded path and/or a file given now."""
    flags = []
    candidates = [Path(trial.criteria_path)] if trial.criteria_path else []
    if criteria_file is not None and (not candidates or criteria_file.resolve() != candidates[0]):
        candidates.append(criteria_file)
    for path in candidates:
        try:
            current = sha256_text(path.read_text(encoding="utf-8"))
        except OSError:
            flags.append(f"criteria file {path} recorded at trial start can no longer be read")
            continue
        if current != trial.criteria_sha256:
            flags.append(
                f"criteria changed after the trial started: {path} now has sha256 {current[:12]}..., "
                f"the trial recorded {trial.criteria_sha256[:12]}... on {trial.started_at:%Y-%m-%d}; "
                "the evaluation uses the "
                "criteria recorded at start"
            )
    return tuple(flags)


def evaluate_trial(
    db: Database, name: str, cases: CaseSet, criteria_file: Path | None = None, now: datetime | None = None
) -> TrialEvaluation:
    """Evaluate ``cases`` against trial ``name``'s recorded criteria; flag later edits; store the verdict."""
    trial = get_trial(db, name)
    criteria = AcceptanceCriteria.from_text(trial.criteria_text, origin=f"trial {name!r} criteria")
    evaluation = evaluate_cases(cases, criteria, trial, criteria_changes(trial, criteria_file))
    with db.session() as session:
        row = session.scalars(select(Trial).where(Trial.name == name)).one()
        row.last_evaluated_at = now or utcnow()
        row.last_recommendation = evaluation.verdict.recommendation
    log.info("trial %s evaluated: %s", name, evaluation.verdict.recommendation)
    return evaluation
