"""Routing: does a series fit a deployment? Matched, or not applicable with every reason why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from radgate.routing.deployment import Deployment
from radgate.routing.rules import Rule

__all__ = ["DECISIONS", "InstanceRouting", "RoutingDecision", "decide", "decide_series", "evaluate_rules"]

DECISIONS = ("matched", "not_applicable", "off")


@dataclass(frozen=True)
class InstanceRouting:
    """Whether one instance of a series fits a deployment's intended use, and if not, why."""

    SOPInstanceUID: str
    applicable: bool
    reason: str


@dataclass(frozen=True)
class RoutingDecision:
    """The decision for one series and one deployment; ``reason`` is written for a person."""

    deployment: str
    model_name: str
    model_version: str
    mode: str
    decision: str  # matched | not_applicable | off
    reason: str
    instances: tuple[InstanceRouting, ...] = ()

    @property
    def matched(self) -> bool:
        return self.decision == "matched"

    @property
    def used_instances(self) -> tuple[str, ...]:
        """The instances the model will see (those that fit)."""
        return tuple(i.SOPInstanceUID for i in self.instances if i.applicable and i.SOPInstanceUID)


def evaluate_rules(rules: Sequence[Rule], features: Mapping[str, Any]) -> tuple[bool, str]:
    """``(True, what matched)`` or ``(False, every failed rule's reason joined by '; ')``."""
    failures = _failures(rules, features)
    if failures:
        return False, "; ".join(failures)
    return True, "fits " + "; ".join(rule.describe() for rule in rules)


def _failures(rules: Sequence[Rule], features: Mapping[str, Any]) -> list[str]:
    return [reason for rule in rules if (reason := rule.check(features)) is not None]


def decide(features: Mapping[str, Any], deployment: Deployment) -> RoutingDecision:
    """Route one image (its header features) for one deployment: :func:`decide_series` of one instance.

    An ``off`` deployment runs nothing, but the decision is still recorded so that the question "why did
    this model not see this study?" always has an answer.
    """
    return decide_series([("", features)], deployment)


def decide_series(
    instances: Sequence[tuple[str, Mapping[str, Any]]], deployment: Deployment
) -> RoutingDecision:
    """Route a series instance by instance: it matches when at least one instance fits.

    ``instances``: ``(SOPInstanceUID, header features)`` of every instance. Only the instances that fit
    reach the model (a lateral image in a mixed PA + lateral series never reaches a PA/AP model); the others
    are recorded as not applicable with their reason.
    """
    routed = []
    for uid, features in instances:
        ok, why = evaluate_rules(deployment.rules, features)
        routed.append(InstanceRouting(uid, ok, why))
    fitting = [i for i in routed if i.applicable]
    unfit = [i for i in routed if not i.applicable]
    if deployment.mode == "off":
        first = (unfit or routed)[0]
        decision = "off"
        reason = "deployment is off" + ("" if not unfit else f" (and {first.reason})")
    elif not fitting:
        decision = "not_applicable"
        # each failed rule named once, in the order first met (a child's PA + lateral series fails on age
        # twice: the reason says so once)
        failed = dict.fromkeys(f for _, features in instances for f in _failures(deployment.rules, features))
        reason = "; ".join(failed)
    else:
        decision = "matched"
        reason = fitting[0].reason
        if unfit:
            reason = (
                f"{len(fitting)} of {len(routed)} instances fit ({reason}); not applicable: "
                + "; ".join(f"{i.SOPInstanceUID}: {i.reason}" for i in unfit)
            )
    return RoutingDecision(
        deployment=deployment.name,
        model_name=deployment.model_name,
        model_version=deployment.model_version,
        mode=deployment.mode,
        decision=decision,
        reason=reason,
        instances=tuple(routed),
    )
