"""Monitoring rules: the :class:`MonitoringRule` interface, the built-ins, and plug-ins from the config."""

from __future__ import annotations

import importlib

from radgate.config import MonitoringSettings
from radgate.errors import Invalid
from radgate.monitoring.rules.base import Baseline, BaselineSource, Finding, MonitoringRule, RuleContext
from radgate.monitoring.rules.cusum import CusumSensitivityRule, CusumSpecificityRule
from radgate.monitoring.rules.drift import InputDriftRule, OutputDriftRule, feature_drift
from radgate.monitoring.rules.performance import AucDropCIRule, AucDropRule, CbpeRule
from radgate.monitoring.rules.scanner import NewScannerRule

__all__ = [
    "BUILTIN_RULES",
    "Baseline",
    "BaselineSource",
    "Finding",
    "MonitoringRule",
    "RuleContext",
    "feature_drift",
    "load_rules",
]

BUILTIN_RULES: dict[str, type] = {
    cls.name: cls
    for cls in (
        AucDropRule,
        AucDropCIRule,
        CusumSensitivityRule,
        CusumSpecificityRule,
        InputDriftRule,
        OutputDriftRule,
        NewScannerRule,
        CbpeRule,
    )
}


def _plugin(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise Invalid(f"monitoring.plugins entry {spec!r} must be 'package.module:Class'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise Invalid(f"monitoring.plugins entry {spec!r} cannot be loaded: {exc}") from exc
    if not isinstance(getattr(cls, "name", None), str):
        raise Invalid(f"monitoring.plugins entry {spec!r} has no string attribute 'name'")
    return cls


def load_rules(settings: MonitoringSettings) -> list[MonitoringRule]:
    """The rules ``settings.rules`` names, built-in or from ``settings.plugins``, each checked."""
    available = dict(BUILTIN_RULES)
    for spec in settings.plugins:
        cls = _plugin(spec)
        available[str(getattr(cls, "name"))] = cls  # noqa: B009 (checked to be a str in _plugin)
    rules: list[MonitoringRule] = []
    for name in settings.rules:
        if name not in available:
            raise Invalid(
                f"monitoring.rules names {name!r}, which is neither built in nor a plug-in; "
                f"known rules: {', '.join(sorted(available))}"
            )
        rule = available[name](settings)
        if not isinstance(rule, MonitoringRule):
            raise Invalid(
                f"rule {name!r} does not implement MonitoringRule (name, sound, description, evaluate)"
            )
        rules.append(rule)
    return rules
