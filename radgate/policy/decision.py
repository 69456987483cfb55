"""The policy stage: the one place that turns a model's scores into what people see.

:func:`decide` takes a deployment as the policy sees it (:class:`PolicyContext`) and the scores of the
instances that reached the model, and returns a typed :class:`Decision`: mode, operating point and where its
threshold came from, the series score (aggregated over the used instances), the flag, what happens to each
finding (declared, or incidental under the deployment's rule), whether the result is released or withheld
(validated subgroups) and its urgency for the worklist. The engine stores the decision with the prediction;
results, worklist and monitoring read it and decide nothing themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from radgate.models.manifest import Manifest, OperatingPoint
from radgate.policy.enum import Aggregation, IncidentalRule, Mode, Release, ThresholdSource
from radgate.policy.subgroups import ValidatedSubgroups

__all__ = [
    "Decision",
    "FindingDecision",
    "InstanceScores",
    "PolicyContext",
    "choose_operating_point",
    "decide",
    "urgency",
]


def choose_operating_point(manifest: Manifest, name: str | None) -> tuple[OperatingPoint, ThresholdSource]:
    """The deployment's operating point (by name) or else the model's first one for its primary finding."""
    if name:
        for op in manifest.operating_points:
            if op.name == name:
                return op, ThresholdSource.DEPLOYMENT
        from radgate.errors import Invalid

        known = ", ".join(op.name for op in manifest.operating_points)
        raise Invalid(
            f"operating point {name!r} is not in model {manifest.model.name} {manifest.model.version}; "
            f"known: {known}."
        )
    primary = manifest.primary.name
    for op in manifest.operating_points:
        if op.finding in (None, primary):
            return op, ThresholdSource.MODEL
    return manifest.operating_points[0], ThresholdSource.MODEL


@dataclass(frozen=True)
class PolicyContext:
    """A deployment as the policy sees it."""

    deployment: str
    site: str
    mode: Mode
    manifest: Manifest
    operating_point: OperatingPoint
    threshold_source: ThresholdSource
    declared_findings: frozenset[str]
    incidental: IncidentalRule
    subgroups: ValidatedSubgroups
    aggregation: Aggregation = Aggregation.MAX


@dataclass(frozen=True)
class InstanceScores:
    """The model's scores on one image that reached it, with that image's header features."""

    SOPInstanceUID: str
    scores: Mapping[str, float]
    features: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FindingDecision:
    """One finding of one result: its score, whether present at its operating point, and who may see it."""

    name: str
    score: float
    threshold: float
    operating_point: str
    present: bool
    declared: bool
    disposition: IncidentalRule  # REPORT for declared findings

    @property
    def sent(self) -> bool:
        """Whether this finding goes into the objects sent to the PACS."""
        return self.disposition is IncidentalRule.REPORT

    @property
    def reviewable(self) -> bool:
        """Whether the reviewing radiologist sees it."""
        return self.disposition is not IncidentalRule.SUPPRESS


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one result (series x deployment)."""

    deployment: str
    mode: Mode
    release: Release
    reasons: tuple[str, ...]
    SOPInstanceUID: str  # the image whose score is the series score
    used_instances: tuple[str, ...]
    score: float  # the primary finding's series score
    operating_point: str
    threshold: float
    threshold_source: ThresholdSource
    flag: bool  # primary finding present at the operating point
    flags: Mapping[str, bool]  # every operating point of the model
    findings: tuple[FindingDecision, ...]
    urgency: float  # 0..1, the worklist's AI term; 0 for anything not released

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def released(self) -> bool:
        return self.release is Release.RELEASED

    @property
    def findings_sent(self) -> tuple[FindingDecision, ...]:
        return tuple(f for f in self.findings if f.sent) if self.released else ()


def urgency(release: Release, flag: bool, score: float) -> float:
    """The worklist's AI urgency in [0, 1]: ``0.5 + 0.5 * score`` for a released flagged result, else 0.

    A released result that is not flagged adds nothing (waiting time alone orders it); a withheld, silent or
    shadow result never reaches a worklist, so its urgency is 0 as well.
    """
    if release is not Release.RELEASED or not flag:
        return 0.0
    return 0.5 + 0.5 * min(max(float(score), 0.0), 1.0)


def _aggregate(per_instance: Sequence[InstanceScores], finding: str) -> tuple[float, int]:
    best = max(range(len(per_instance)), key=lambda i: per_instance[i].scores.get(finding, float("-inf")))
    return float(per_instance[best].scores[finding]), best


def decide(ctx: PolicyContext, per_instance: Sequence[InstanceScores]) -> Decision:
    """Decide one result. ``per_instance``: every used image's scores (at least one)."""
    if not per_instance:
        raise ValueError(f"deployment {ctx.deployment}: a decision needs the scores of at least one image")
    manifest = ctx.manifest
    primary = manifest.primary.name
    score, best = _aggregate(per_instance, primary)
    series_scores = {
        f.name: _aggregate(per_instance, f.name)[0]
        for f in manifest.findings
        if f.name in per_instance[0].scores
    }
    flags = {
        op.name: series_scores[manifest.finding_for(op).name] >= op.threshold
        for op in manifest.operating_points
        if manifest.finding_for(op).name in series_scores
    }
    op = ctx.operating_point
    flag = score >= op.threshold

    findings = []
    for f in manifest.findings:
        if f.name not in series_scores:
            continue
        if f.name == primary:
            f_op = op
        else:
            f_op = next((o for o in manifest.operating_points if o.finding == f.name), op)
        declared = f.name in ctx.declared_findings
        findings.append(
            FindingDecision(
                name=f.name,
                score=series_scores[f.name],
                threshold=float(f_op.threshold),
                operating_point=f_op.name,
                present=series_scores[f.name] >= f_op.threshold,
                declared=declared,
                disposition=IncidentalRule.REPORT if declared else ctx.incidental,
            )
        )

    reasons: list[str]
    if ctx.mode is Mode.LIVE:
        check = ctx.subgroups.check(per_instance[best].features)
        if check.inside:
            release, reasons = Release.RELEASED, ["live, inside the validated subgroups"]
        else:
            release, reasons = Release.WITHHELD, list(check.reasons)
    elif ctx.mode is Mode.SILENT:
        release, reasons = Release.SILENT, ["silent: stored for the trial, never shown or sent"]
    elif ctx.mode is Mode.SHADOW:
        release, reasons = Release.SHADOW, ["shadow: stored for comparison, never shown or sent"]
    else:
        release, reasons = Release.OFF, ["deployment is off"]
    return Decision(
        deployment=ctx.deployment,
        mode=ctx.mode,
        release=release,
        reasons=tuple(reasons),
        SOPInstanceUID=per_instance[best].SOPInstanceUID,
        used_instances=tuple(p.SOPInstanceUID for p in per_instance),
        score=score,
        operating_point=op.name,
        threshold=float(op.threshold),
        threshold_source=ctx.threshold_source,
        flag=flag,
        flags=flags,
        findings=tuple(findings),
        urgency=urgency(release, flag, score),
    )
