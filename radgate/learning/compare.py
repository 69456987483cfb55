"""Challenger against champion on paired cases: the same series scored by both deployments, with a label.

A challenger runs in ``shadow`` beside the live champion, so every series it saw has two stored predictions
(keyed by (series, deployment)); a case is *paired* when both exist and the reference standard labels it.
All arithmetic is :mod:`radgate.stats`: ΔAUC (challenger − champion) with DeLong's paired test
(:func:`radgate.stats.roc.delong_paired`), McNemar on each deployment's stored calls at its own operating
point (:func:`radgate.stats.proportions.mcnemar_paired`: correct calls overall, then the calls on positives
— sensitivity — and on negatives — specificity), per-scanner and per-subgroup tables, and calibration
(ECE, Brier, intercept and slope) of each.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.errors import Invalid, NotFound, RadgateError
from radgate.routing.tables import DeploymentRow
from radgate.stats.calibration import brier_score, calibration_intercept_slope, expected_calibration_error
from radgate.stats.proportions import mcnemar_paired, wilson
from radgate.stats.roc import delong, delong_paired
from radgate.validation.from_db import age_band
from radgate.validation.truth import reference_labels

__all__ = ["SUBGROUP_COLUMNS", "Comparison", "PairedCases", "compare_deployments", "paired_cases"]

SUBGROUP_COLUMNS: tuple[str, ...] = ("PatientSex", "AgeBand", "ViewPosition")
MIN_CLASS = 2  # per class, below which a table row reports counts only


@dataclass(frozen=True)
class PairedCases:
    """Series scored by both deployments and labelled, in one order."""

    champion: str
    challenger: str
    uids: tuple[str, ...]
    labels: NDArray[np.bool_]
    champion_scores: NDArray[np.float64]
    challenger_scores: NDArray[np.float64]
    champion_flags: NDArray[np.bool_]
    challenger_flags: NDArray[np.bool_]
    attributes: dict[str, tuple[str, ...]]  # Scanner, PatientSex, AgeBand, ViewPosition
    champion_model: dict[str, str]
    challenger_model: dict[str, str]
    unpaired: dict[str, int]  # why series were left out

    @property
    def n(self) -> int:
        return int(self.labels.size)

    def digest(self) -> str:
        """SHA-256 of the sorted paired series UIDs with their labels: which data a decision used."""
        text = "\n".join(f"{u},{int(y)}" for u, y in sorted(zip(self.uids, self.labels, strict=True)))
        return hashlib.sha256(text.encode()).hexdigest()


def _deployment(session: Any, name: str) -> DeploymentRow:
    row = session.scalars(select(DeploymentRow).where(DeploymentRow.name == name)).first()
    if row is None:
        known = ", ".join(session.scalars(select(DeploymentRow.name).order_by(DeploymentRow.name))) or "none"
        raise NotFound(f"no deployment named {name!r}; known: {known}")
    return row


def _scanner(features: dict[str, Any]) -> str:
    parts = [str(features.get(k) or "").strip() for k in ("Manufacturer", "ManufacturerModelName")]
    return " ".join(p for p in parts if p) or "unknown"


def paired_cases(db: Database, champion: str, challenger: str) -> PairedCases:
    """Load the paired, labelled cases of ``champion`` and ``challenger`` (see the module docstring)."""
    if champion == challenger:
        raise Invalid(f"champion and challenger are both {champion!r}; name two deployments")
    with db.session() as s:
        rows = {}
        models = {}
        for name in (champion, challenger):
            d = _deployment(s, name)
            rows[name] = {
                p.SeriesInstanceUID: p
                for p in s.scalars(select(Prediction).where(Prediction.deployment == name)).all()
            }
            sha = next((p.model_sha256 for p in rows[name].values()), "")
            models[name] = {"model": d.model_name, "version": d.model_version, "site": d.site, "sha256": sha}
        s.expunge_all()
    a, b = rows[champion], rows[challenger]
    both = sorted(set(a) & set(b))
    unpaired = {
        f"scored by {champion} only": len(set(a) - set(b)),
        f"scored by {challenger} only": len(set(b) - set(a)),
    }
    by_series = reference_labels(db, both)
    by_study = reference_labels(db, [a[u].StudyInstanceUID for u in both])
    uids, labels = [], []
    for u in both:
        label = by_series.get(u, by_study.get(a[u].StudyInstanceUID))
        if label is not None:
            uids.append(u)
            labels.append(bool(label))
    unpaired["paired but no reference label"] = len(both) - len(uids)
    attributes: dict[str, list[str]] = {"Scanner": [], **{c: [] for c in SUBGROUP_COLUMNS}}
    for u in uids:
        features = json.loads(a[u].features or "{}")
        attributes["Scanner"].append(_scanner(features))
        attributes["PatientSex"].append(str(features.get("PatientSex") or "unknown"))
        attributes["AgeBand"].append(age_band(features.get("PatientAge")))
        attributes["ViewPosition"].append(str(features.get("ViewPosition") or "unknown"))
    return PairedCases(
        champion,
        challenger,
        tuple(uids),
        np.asarray(labels, dtype=bool),
        np.asarray([a[u].score for u in uids], dtype=np.float64),
        np.asarray([b[u].score for u in uids], dtype=np.float64),
        np.asarray([bool(a[u].flag) for u in uids], dtype=bool),
        np.asarray([bool(b[u].flag) for u in uids], dtype=bool),
        {k: tuple(v) for k, v in attributes.items()},
        models[champion],
        models[challenger],
        unpaired,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _rate(successes: int, trials: int) -> dict[str, Any]:
    if trials == 0:
        return {"estimate": None, "ci": None, "successes": 0, "trials": 0}
    p = wilson(successes, trials)
    return {"estimate": p.estimate, "ci": list(p.ci), "successes": successes, "trials": trials}


def _calibration(labels: NDArray[np.bool_], scores: NDArray[np.float64]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ece": expected_calibration_error(labels, scores),
        "brier": brier_score(labels, scores),
    }
    try:
        fit = calibration_intercept_slope(labels, scores)
        out |= {"intercept": fit.intercept, "slope": fit.slope}
    except RadgateError as exc:  # separation: the logistic fit is unbounded
        out |= {"intercept": None, "slope": None, "note": str(exc)}
    return out


def _row(
    level: str, labels: NDArray[np.bool_], a: NDArray[np.float64], b: NDArray[np.float64]
) -> dict[str, Any]:
    pos = int(labels.sum())
    neg = int(labels.size - pos)
    row: dict[str, Any] = {"level": level, "n": int(labels.size), "positives": pos, "negatives": neg}
    row |= {"auc_champion": None, "auc_challenger": None, "delta_auc": None, "delong_p": None}
    if pos >= MIN_CLASS and neg >= MIN_CLASS and np.ptp(a) > 0 and np.ptp(b) > 0:
        try:
            c = delong_paired(labels, b, a)
        except RadgateError as exc:
            row["note"] = str(exc)
        else:
            row |= {"auc_champion": c.auc_b, "auc_challenger": c.auc_a, "delta_auc": c.difference}
            row["delong_p"] = c.p
    else:
        row["note"] = f"too few cases for an AUC ({pos} positive, {neg} negative; need {MIN_CLASS} of each)"
    return row


@dataclass(frozen=True)
class Comparison:
    """The comparison's numbers (``as_dict`` is what ``radgate compare --json`` prints)."""

    cases: PairedCases
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.values


def compare_deployments(
    db: Database,
    champion: str,
    challenger: str,
    confidence: float = 0.95,
    subgroups: Sequence[str] = SUBGROUP_COLUMNS,
) -> Comparison:
    """Compare ``challenger`` with ``champion`` on their paired, labelled cases."""
    cases = paired_cases(db, champion, challenger)
    y = cases.labels
    pos, neg = int(y.sum()), int(y.size - y.sum())
    if pos < MIN_CLASS or neg < MIN_CLASS:
        raise Invalid(
            f"{cases.n} paired labelled case(s) of {champion} and {challenger} ({pos} positive, {neg} "
            f"negative); a comparison needs at least {MIN_CLASS} of each. Left out: "
            + ", ".join(f"{k}: {v}" for k, v in cases.unpaired.items())
            + ". Run the challenger in shadow beside the champion and import labels (`radgate truth import`)."
        )
    a, b = cases.champion_scores, cases.challenger_scores
    paired = delong_paired(y, b, a, confidence)  # difference = challenger - champion
    auc_a, auc_b = delong(y, a, confidence), delong(y, b, confidence)
    fa, fb = cases.champion_flags, cases.challenger_flags
    correct_a, correct_b = fa == y, fb == y
    overall = mcnemar_paired(correct_b, correct_a)
    sens = mcnemar_paired(fb[y], fa[y])
    spec = mcnemar_paired(~fb[~y], ~fa[~y])
    values: dict[str, Any] = {
        "champion": {"deployment": champion, **cases.champion_model},
        "challenger": {"deployment": challenger, **cases.challenger_model},
        "n_pairs": cases.n,
        "positives": pos,
        "negatives": neg,
        "left_out": cases.unpaired,
        "data_sha256": cases.digest(),
        "confidence": confidence,
        "auc_champion": paired.auc_b,
        "auc_champion_ci": list(auc_a.ci),
        "auc_challenger": paired.auc_a,
        "auc_challenger_ci": list(auc_b.ci),
        "delta_auc": paired.difference,
        "delta_auc_ci": list(paired.ci),
        "delta_auc_se": paired.se,
        "delong_z": paired.z,
        "delong_p": paired.p,
        "mcnemar_p": overall.p,
        "mcnemar": {
            "correct_calls": {"b": overall.b, "c": overall.c, "p": overall.p, "method": overall.method},
            "sensitivity": {"b": sens.b, "c": sens.c, "p": sens.p, "method": sens.method},
            "specificity": {"b": spec.b, "c": spec.c, "p": spec.p, "method": spec.method},
            "note": "b: challenger right where the champion is wrong; c: the reverse "
            "(each at its own operating point)",
        },
        "operating_points": {
            "champion": {
                "sensitivity": _rate(int(fa[y].sum()), pos),
                "specificity": _rate(int((~fa[~y]).sum()), neg),
            },
            "challenger": {
                "sensitivity": _rate(int(fb[y].sum()), pos),
                "specificity": _rate(int((~fb[~y]).sum()), neg),
            },
        },
        "calibration": {"champion": _calibration(y, a), "challenger": _calibration(y, b)},
    }
    tables: dict[str, list[dict[str, Any]]] = {}
    for column in ("Scanner", *subgroups):
        levels = np.asarray(cases.attributes[column])
        tables[column] = [
            _row(str(level), y[levels == level], a[levels == level], b[levels == level])
            for level in sorted(set(levels.tolist()))
        ]
    values["per_scanner"] = tables.pop("Scanner")
    values["subgroups"] = tables
    return Comparison(cases, values)
