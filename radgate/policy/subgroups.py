"""Validated subgroups: who a deployment's results may be released for.

A deployment's validated subgroups are its model card's (``[validated_subgroups]`` in the manifest: attribute
-> values) widened by those its site validated locally (:class:`LocalValidation` rows, recorded by a go-live
validation with enough cases). Only the attributes the model card constrains are checked: a local validation
widens a subgroup, it never invents a new restriction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SubgroupCheck", "ValidatedSubgroups"]


def _norm(value: Any) -> str:
    return str(value).strip().casefold()


@dataclass(frozen=True)
class SubgroupCheck:
    """Whether one case falls inside the validated subgroups; ``reasons`` say why not, for a person."""

    inside: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidatedSubgroups:
    """Attribute -> allowed values, with where each value was validated (``model card`` or ``site S``)."""

    allowed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # attr -> {value: source}

    @classmethod
    def build(
        cls,
        model_card: Mapping[str, Iterable[str]],
        local: Iterable[tuple[str, str, str]] = (),
    ) -> ValidatedSubgroups:
        """From the manifest's table and local ``(attribute, value, site)`` validations."""
        allowed: dict[str, dict[str, str]] = {
            attr: {str(v): "model card" for v in values} for attr, values in model_card.items()
        }
        for attr, value, site in local:
            if attr in allowed:
                allowed[attr].setdefault(str(value), f"validated at site {site}")
        return cls(allowed)

    def check(self, features: Mapping[str, Any]) -> SubgroupCheck:
        reasons = []
        for attr, values in self.allowed.items():
            value = features.get(attr)
            listed = ", ".join(sorted(values))
            if value is None or str(value).strip() == "":
                reasons.append(f"{attr} unknown; validated: {listed}")
            elif _norm(value) not in {_norm(v) for v in values}:
                reasons.append(f"{attr} {value} not in validated {listed}")
        return SubgroupCheck(not reasons, tuple(reasons))
