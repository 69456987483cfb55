"""The policy stage: the one place that turns a prediction into a :class:`Decision` people can act on.

``enum`` holds the values (:class:`Mode`, :class:`Release`, :class:`IncidentalRule`), ``decision`` the rule
(:func:`decide`), ``subgroups`` the validated subgroups, ``service`` the database side (a deployment's
:class:`PolicyContext`, local validations), ``readiness`` the go-live gate.
"""

from radgate.policy.decision import (
    Decision,
    FindingDecision,
    InstanceScores,
    PolicyContext,
    choose_operating_point,
    decide,
    urgency,
)
from radgate.policy.enum import Aggregation, IncidentalRule, Mode, Release, ThresholdSource
from radgate.policy.subgroups import SubgroupCheck, ValidatedSubgroups

__all__ = [
    "Aggregation",
    "Decision",
    "FindingDecision",
    "IncidentalRule",
    "InstanceScores",
    "Mode",
    "PolicyContext",
    "Release",
    "SubgroupCheck",
    "ThresholdSource",
    "ValidatedSubgroups",
    "choose_operating_point",
    "decide",
    "urgency",
]
