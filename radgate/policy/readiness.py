"""The go-live gate: should this deployment go live at this site? (the article's "when not to use AI").

:func:`readiness` runs every check over what the database knows about the deployment's site and returns a
typed :class:`Readiness` with the numbers behind each verdict. ``radgate readiness`` prints it;
``radgate deployments set-mode NAME live`` refuses while it is not ready, unless overridden with a reason that
is recorded with who and when.

Checks: ``protocol_stability``, ``prevalence``, ``sample_size``, ``subgroup_coverage``, ``silent_trial``,
``vendor_claims``, ``reference_standard`` (each documented on its function).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.config import PolicySettings
from radgate.db.schema import Instance, Study
from radgate.engine.tables import Prediction, RoutingDecisionRow
from radgate.policy.service import policy_context
from radgate.routing.deployment import Deployment
from radgate.stats import wilson
from radgate.validation.criteria import GO_LIVE
from radgate.validation.tables import GroundTruth, Trial

__all__ = ["REFERENCE_STANDARDS", "Check", "Readiness", "readiness"]

#: Ground-truth sources that are a reference standard (not the radiologists' own reads).
REFERENCE_STANDARDS = frozenset({"biopsy", "pathology", "follow-up", "consensus"})


@dataclass(frozen=True)
class Check:
    """One check's verdict, in words (``detail``) and numbers (``data``)."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.data}


@dataclass(frozen=True)
class Readiness:
    deployment: str
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "ready": self.ready,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class _Case:
    SeriesInstanceUID: str
    StudyInstanceUID: str
    score: float
    features: dict[str, Any]
    label: int | None
    sources: frozenset[str]


def _cases(session: Session, deployment: Deployment) -> list[_Case]:
    preds = session.scalars(select(Prediction).where(Prediction.deployment == deployment.name)).all()
    uids = {p.SeriesInstanceUID for p in preds} | {p.StudyInstanceUID for p in preds}
    truth: dict[str, list[GroundTruth]] = {}
    wanted = sorted(uids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in session.scalars(
            select(GroundTruth).where(
                GroundTruth.SeriesInstanceUID.in_(chunk) | GroundTruth.StudyInstanceUID.in_(chunk)
            )
        ):
            for uid in (row.SeriesInstanceUID, row.StudyInstanceUID):
                if uid in uids:
                    truth.setdefault(uid, []).append(row)
    cases = []
    for p in preds:
        rows = truth.get(p.SeriesInstanceUID) or truth.get(p.StudyInstanceUID) or []
        ranked = sorted(rows, key=lambda r: (r.source not in REFERENCE_STANDARDS, r.source))
        cases.append(
            _Case(
                p.SeriesInstanceUID,
                p.StudyInstanceUID,
                float(p.score),
                json.loads(p.features or "{}"),
                ranked[0].label if ranked else None,
                frozenset(r.source for r in rows),
            )
        )
    return cases


def _labelled(cases: Sequence[_Case]) -> tuple[list[_Case], int, int]:
    labelled = [c for c in cases if c.label is not None]
    pos = sum(1 for c in labelled if c.label == 1)
    return labelled, pos, len(labelled) - pos


def _study_date(text: str | None) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if text and len(text) >= 8 else None
    except ValueError:
        return None


def protocol_stability(session: Session, deployment: Deployment, months: int) -> Check:
    """No scanner model, software version or reconstruction kernel first seen at the site in the last
    ``months`` months, counted back from the newest StudyDate of the series routed to this deployment (so a
    retrospective load is judged by when its images were acquired, not when they arrived)."""
    rows = session.execute(
        select(
            Instance.Manufacturer,
            Instance.ManufacturerModelName,
            Instance.SoftwareVersions,
            Instance.ConvolutionKernel,
            Study.StudyDate,
        )
        .join(RoutingDecisionRow, RoutingDecisionRow.SeriesInstanceUID == Instance.SeriesInstanceUID)
        .join(Study, Study.StudyInstanceUID == Instance.StudyInstanceUID)
        .where(RoutingDecisionRow.deployment == deployment.name)
    ).all()
    first_seen: dict[tuple[str, ...], date] = {}
    dates = []
    for manufacturer, model, software, kernel, study_date in rows:
        d = _study_date(study_date)
        if d is None:
            continue
        dates.append(d)
        key = tuple(str(v or "") for v in (manufacturer, model, software, kernel))
        if key not in first_seen or d < first_seen[key]:
            first_seen[key] = d
    if not dates:
        return Check("protocol_stability", False, "no dated images routed to this deployment yet")
    newest, oldest = max(dates), min(dates)
    window_start = newest - timedelta(days=round(months * 30.44))
    data: dict[str, Any] = {"as_of": newest.isoformat(), "months": months, "history_from": oldest.isoformat()}
    if oldest > window_start:
        return Check(
            "protocol_stability",
            False,
            f"only {(newest - oldest).days} days of images (from {oldest}); {months} months are needed to "
            "judge stability",
            data,
        )
    new = sorted((d, k) for k, d in first_seen.items() if d > window_start)
    data["new_equipment"] = [
        {
            "Manufacturer": k[0],
            "ManufacturerModelName": k[1],
            "SoftwareVersions": k[2],
            "ConvolutionKernel": k[3],
            "first_seen": d.isoformat(),
        }
        for d, k in new
    ]
    if new:
        listed = "; ".join(f"{k[0]} {k[1]} {k[2]} {k[3]}".strip() + f" (first seen {d})" for d, k in new)
        return Check(
            "protocol_stability", False, f"new equipment in the last {months} months: {listed}", data
        )
    return Check(
        "protocol_stability",
        True,
        f"no new scanner model, software version or kernel since {window_start} ({len(first_seen)} known)",
        data,
    )


def _local_rates(cases: Sequence[_Case], threshold: float) -> tuple[int, int, int, int]:
    tp = sum(1 for c in cases if c.label == 1 and c.score >= threshold)
    fn = sum(1 for c in cases if c.label == 1 and c.score < threshold)
    tn = sum(1 for c in cases if c.label == 0 and c.score < threshold)
    fp = sum(1 for c in cases if c.label == 0 and c.score >= threshold)
    return tp, fn, tn, fp


def readiness(session: Session, deployment: Deployment, settings: PolicySettings | None = None) -> Readiness:
    """Every go-live check for ``deployment``, with the numbers behind each."""
    cfg = settings or PolicySettings()
    ctx = policy_context(session, deployment)
    threshold = ctx.operating_point.threshold
    cases = _cases(session, deployment)
    labelled, pos, neg = _labelled(cases)
    tp, fn, tn, fp = _local_rates(labelled, threshold)
    checks = [protocol_stability(session, deployment, cfg.stability_months)]

    # prevalence: the site's prevalence and the work-up burden it implies at the operating point
    if pos and neg:
        prev = pos / (pos + neg)
        sens, spec = tp / pos, tn / neg
        fp_per_tp = ((1 - prev) * (1 - spec)) / (prev * sens) if sens > 0 else float("inf")
        checks.append(
            Check(
                "prevalence",
                fp_per_tp <= cfg.max_fp_per_tp,
                f"prevalence {prev:.3f} ({pos} of {pos + neg}); at threshold {threshold:g} expect "
                f"{fp_per_tp:.2f} false positives per true positive (limit {cfg.max_fp_per_tp:g})",
                {
                    "prevalence": prev,
                    "fp_per_tp": fp_per_tp if fp_per_tp != float("inf") else None,
                    "threshold": threshold,
                },
            )
        )
    else:
        checks.append(
            Check(
                "prevalence",
                False,
                f"needs labelled positives and negatives (have {pos}+ / {neg}-)",
                {"positives": pos, "negatives": neg},
            )
        )

    # sample_size: enough local cases to validate
    checks.append(
        Check(
            "sample_size",
            pos >= cfg.min_positives and neg >= cfg.min_negatives,
            f"{pos} positives and {neg} negatives with ground truth (need {cfg.min_positives} and "
            f"{cfg.min_negatives})",
            {
                "positives": pos,
                "negatives": neg,
                "min_positives": cfg.min_positives,
                "min_negatives": cfg.min_negatives,
            },
        )
    )

    # subgroup_coverage: the site's cases against the validated subgroups
    if cases:
        outside: Counter[str] = Counter()
        n_out = 0
        for c in cases:
            check = ctx.subgroups.check(c.features)
            if not check.inside:
                n_out += 1
                outside.update(check.reasons)
        share = n_out / len(cases)
        top = "; ".join(f"{n} x {r}" for r, n in outside.most_common(3))
        checks.append(
            Check(
                "subgroup_coverage",
                share <= cfg.max_outside_share,
                f"{n_out} of {len(cases)} cases ({share:.0%}) outside the validated subgroups"
                + (f" ({top})" if top else "")
                + f"; limit {cfg.max_outside_share:.0%}; their live results would be withheld",
                {
                    "outside": n_out,
                    "cases": len(cases),
                    "share_outside": share,
                    "validated": {k: sorted(v) for k, v in ctx.subgroups.allowed.items()},
                },
            )
        )
    else:
        checks.append(Check("subgroup_coverage", False, "no results of this deployment yet"))

    # silent_trial: a trial with locked criteria has passed
    trials = session.scalars(
        select(Trial).where(Trial.model_name == deployment.model_name).order_by(Trial.started_at)
    ).all()
    trials = [t for t in trials if t.model_version in (None, deployment.model_version)]
    passed = [t for t in trials if t.last_recommendation == GO_LIVE]
    checks.append(
        Check(
            "silent_trial",
            bool(passed),
            (
                f"trial {passed[-1].name!r} recommends {GO_LIVE!r} "
                f"(criteria sha256 {passed[-1].criteria_sha256[:12]})"
                if passed
                else (
                    "no silent trial registered (radgate trial start)"
                    if not trials
                    else "; ".join(
                        f"trial {t.name!r}: {t.last_recommendation or 'not evaluated'}" for t in trials
                    )
                )
            ),
            {"trials": [{"name": t.name, "recommendation": t.last_recommendation} for t in trials]},
        )
    )

    # vendor_claims: claimed sensitivity/specificity beside the local ones, with Wilson CIs
    op = ctx.operating_point
    claims: dict[str, Any] = {"claimed_sensitivity": op.sensitivity, "claimed_specificity": op.specificity}
    verdicts = []
    ok = True
    for what, claimed, x, n in (
        ("sensitivity", op.sensitivity, tp, pos),
        ("specificity", op.specificity, tn, neg),
    ):
        if claimed is None:
            verdicts.append(f"no {what} claimed")
            continue
        if n == 0:
            ok = False
            verdicts.append(f"{what}: claimed {claimed:.3f}, no local cases")
            continue
        local = wilson(x, n)
        claims[f"local_{what}"] = local.estimate
        claims[f"local_{what}_ci"] = list(local.ci)
        below = local.ci[1] < claimed
        ok = ok and not below
        verdicts.append(
            f"{what}: claimed {claimed:.3f}, local {local.estimate:.3f} ({local.ci[0]:.3f}-{local.ci[1]:.3f})"
            + (" - below the claim" if below else "")
        )
    checks.append(Check("vendor_claims", ok, "; ".join(verdicts), claims))

    # reference_standard: diagnostic models need a reference standard, not final reads alone
    sources = Counter(s for c in labelled for s in c.sources)
    task = deployment.manifest.model.task
    with_ref = sum(1 for c in labelled if c.sources & REFERENCE_STANDARDS)
    if task == "diagnostic":
        ref_ok = bool(labelled) and with_ref == len(labelled)
        detail = (
            f"diagnostic model: {with_ref} of {len(labelled)} labelled cases have a reference standard "
            f"({', '.join(sorted(REFERENCE_STANDARDS))}); final reads alone do not validate a diagnosis"
        )
    else:
        ref_ok = bool(labelled)
        detail = f"triage model: {len(labelled)} labelled cases; sources " + (
            ", ".join(f"{s} {n}" for s, n in sources.most_common()) or "none"
        )
    checks.append(Check("reference_standard", ref_ok, detail, {"task": task, "sources": dict(sources)}))
    return Readiness(deployment.name, tuple(checks))
