"""Routing: which deployed model's intended use a series fits, and why not when it does not."""

from radgate.routing.deployment import (
    MODES,
    Deployment,
    DeploymentError,
    DeploymentSpec,
    deployment_history,
    effective_rules,
    get_deployment,
    intended_use_rules,
    list_deployments,
    load_deployments_file,
    parse_deployments,
    set_mode,
    sync_deployments,
)
from radgate.routing.features import FEATURE_KEYWORDS, age_in_years, features_from_dataset, format_age
from radgate.routing.router import RoutingDecision, decide, evaluate_rules
from radgate.routing.rules import AgeRange, Equals, OneOf, Range, Regex, Rule, RuleError, rule_from_dict

__all__ = [
    "FEATURE_KEYWORDS",
    "MODES",
    "AgeRange",
    "Deployment",
    "DeploymentError",
    "DeploymentSpec",
    "Equals",
    "OneOf",
    "Range",
    "Regex",
    "RoutingDecision",
    "Rule",
    "RuleError",
    "age_in_years",
    "decide",
    "deployment_history",
    "effective_rules",
    "evaluate_rules",
    "features_from_dataset",
    "format_age",
    "get_deployment",
    "intended_use_rules",
    "list_deployments",
    "load_deployments_file",
    "parse_deployments",
    "rule_from_dict",
    "set_mode",
    "sync_deployments",
]
