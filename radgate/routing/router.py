"""Routing: does a series fit a deployment? Matched, or not applicable with every reason why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from radgate.routing.deployment import Deployment
from radgate.routing.rules import Rule

__all__ = ["DECISIONS", "RoutingDecision", "decide", "evaluate_rules"]

DECISIONS = ("matched", "not_applicable", "off")


@dataclass(frozen=True)
class RoutingDecision:
    """The decision for one series and one deployment; ``reason`` is written for a person."""

    deployment: str
    model_name: str
    model_version: str
    mode: str
    decision: str  # matched | not_applicable | off
    reason: str

    @property
    def matched(self) -> bool:
        return self.decision == "matched"


def evaluate_rules(rules: Sequence[Rule], features: Mapping[str, Any]) -> tuple[bool, str]:
    """``(True, what matched)`` or ``(False, every failed rule's reason joined by '; ')``."""
    failures = [reason for rule in rules if (reason := rule.check(features)) is not None]
    if failures:
        return False, "; ".join(failures)
    return True, "fits " + "; ".join(rule.describe() for rule in rules)


def decide(features: Mapping[str, Any], deployment: Deployment) -> RoutingDecision:
    """Route one series (its header features) for one deployment.

    An ``off`` deployment runs nothing, but the decision is still recorded so that the question "why did
    this model not see this study?" always has an answer.
    """
    ok, reason = evaluate_rules(deployment.rules, features)
    if deployment.mode == "off":
        decision, reason = "off", "deployment is off" + ("" if ok else f" (and {reason})")
    else:
        decision = "matched" if ok else "not_applicable"
    return RoutingDecision(
        deployment=deployment.name,
        model_name=deployment.model_name,
        model_version=deployment.model_version,
        mode=deployment.mode,
        decision=decision,
        reason=reason,
    )
