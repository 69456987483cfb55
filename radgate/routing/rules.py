"""Routing rules on DICOM attributes: equals, one-of, regular expression, numeric range, age range.

A rule looks at a series' header features (a mapping from DICOM keyword to value, see
:mod:`radgate.routing.features`) and answers ``None`` when the series fits, or a reason a human understands
when it does not ("ViewPosition LL is not in PA, AP", "age 9Y outside 18–120"). Rules are written in TOML as
one table each, for example::

    { attribute = "ViewPosition", one_of = ["PA", "AP"] }
    { attribute = "Modality", equals = "DX" }
    { attribute = "SeriesDescription", regex = "(?i)chest" }
    { attribute = "KVP", min = 60, max = 150 }
    { attribute = "PatientAge", min = 18, max = 120 }     # years, from PatientAge (AS) or the birth date
    { attribute = "BodyPartExamined", one_of = ["CHEST"], missing = "pass" }

String comparisons ignore case and surrounding spaces (Code String values are upper case by definition,
PS3.5 6.2, but not every modality obeys). A missing value fails the rule unless ``missing = "pass"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID

from radgate.errors import Invalid
from radgate.routing.features import age_in_years, format_age

__all__ = [
    "AgeRange",
    "Equals",
    "OneOf",
    "Range",
    "Regex",
    "Rule",
    "RuleError",
    "rule_from_dict",
]

MISSING_POLICIES = ("fail", "pass")


class RuleError(Invalid, ValueError):
    """A rule definition is invalid (unknown attribute, bad pattern, empty range)."""


@runtime_checkable
class Rule(Protocol):
    """One condition on one attribute of a series."""

    @property
    def attribute(self) -> str: ...

    def check(self, features: Mapping[str, Any]) -> str | None:
        """``None`` when ``features`` satisfy the rule, else the reason they do not."""
        ...

    def describe(self) -> str:
        """The rule in words, e.g. "ViewPosition in PA, AP"."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The rule as its TOML table."""
        ...


def _check_keyword(attribute: str) -> None:
    if not isinstance(attribute, str) or tag_for_keyword(attribute) is None:
        raise RuleError(
            f"Rule attribute {attribute!r} is not a DICOM keyword; expected one such as Modality, "
            f"BodyPartExamined, ViewPosition, PatientAge, SeriesDescription."
        )


def _check_missing(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise RuleError(f"Rule option missing={missing!r}; expected 'fail' or 'pass'.")


def _norm(value: Any) -> str:
    return str(value).strip().upper()


def _value(features: Mapping[str, Any], attribute: str) -> Any:
    value = features.get(attribute)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _label(attribute: str, value: Any) -> str:
    """A value as a person reads it: SOP Class UIDs get their name."""
    text = str(value).strip()
    if attribute in ("SOPClassUID", "ReferencedSOPClassUID"):
        name = UID(text).name
        return f"{text} ({name})" if name != text else text
    return text


def _missing_reason(attribute: str, expected: str, missing: str) -> str | None:
    return None if missing == "pass" else f"{attribute} is missing (expected {expected})"


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Equals:
    """``attribute`` equals ``value``."""

    attribute: str
    value: str
    missing: str = "fail"

    def __post_init__(self) -> None:
        _check_keyword(self.attribute)
        _check_missing(self.missing)

    def check(self, features: Mapping[str, Any]) -> str | None:
        value = _value(features, self.attribute)
        if value is None:
            return _missing_reason(self.attribute, _label(self.attribute, self.value), self.missing)
        if _norm(value) == _norm(self.value):
            return None
        return f"{self.attribute} {_label(self.attribute, value)} is not {_label(self.attribute, self.value)}"

    def describe(self) -> str:
        return f"{self.attribute} is {_label(self.attribute, self.value)}"

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "equals": self.value, "missing": self.missing}


@dataclass(frozen=True)
class OneOf:
    """``attribute`` is one of ``values``."""

    attribute: str
    values: tuple[str, ...]
    missing: str = "fail"

    def __post_init__(self) -> None:
        _check_keyword(self.attribute)
        _check_missing(self.missing)
        if not self.values:
            raise RuleError(f"Rule on {self.attribute}: one_of is empty; expected at least one value.")

    def _allowed(self) -> str:
        return ", ".join(_label(self.attribute, v) for v in self.values)

    def check(self, features: Mapping[str, Any]) -> str | None:
        value = _value(features, self.attribute)
        if value is None:
            return _missing_reason(self.attribute, "one of " + self._allowed(), self.missing)
        if _norm(value) in {_norm(v) for v in self.values}:
            return None
        return f"{self.attribute} {_label(self.attribute, value)} is not in {self._allowed()}"

    def describe(self) -> str:
        return f"{self.attribute} in {self._allowed()}"

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "one_of": list(self.values), "missing": self.missing}


@dataclass(frozen=True)
class Regex:
    """``attribute`` matches the regular expression ``pattern`` (Python syntax, searched anywhere)."""

    attribute: str
    pattern: str
    missing: str = "fail"

    def __post_init__(self) -> None:
        _check_keyword(self.attribute)
        _check_missing(self.missing)
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise RuleError(f"Rule on {self.attribute}: regex {self.pattern!r} is invalid: {exc}.") from exc

    def check(self, features: Mapping[str, Any]) -> str | None:
        value = _value(features, self.attribute)
        if value is None:
            return _missing_reason(self.attribute, f"to match /{self.pattern}/", self.missing)
        if re.search(self.pattern, str(value)):
            return None
        return f"{self.attribute} {str(value).strip()!r} does not match /{self.pattern}/"

    def describe(self) -> str:
        return f"{self.attribute} matches /{self.pattern}/"

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "regex": self.pattern, "missing": self.missing}


def _check_bounds(attribute: str, lo: float | None, hi: float | None) -> None:
    for name, bound in (("min", lo), ("max", hi)):
        if bound is not None and (
            isinstance(bound, bool) or not isinstance(bound, (int, float)) or math.isnan(bound)
        ):
            raise RuleError(f"Rule on {attribute}: {name}={bound!r}; expected a number.")
    if lo is None and hi is None:
        raise RuleError(f"Rule on {attribute}: a range needs min, max or both.")
    if lo is not None and hi is not None and lo > hi:
        raise RuleError(f"Rule on {attribute}: min {lo} is above max {hi}.")


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{_fmt_number(lo)}–{_fmt_number(hi)}"
    if lo is not None:
        return f"{_fmt_number(lo)}+"
    return f"up to {_fmt_number(hi)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class Range:
    """The numeric value of ``attribute`` lies in ``[min, max]`` (either bound may be left out)."""

    attribute: str
    min: float | None = None
    max: float | None = None
    missing: str = "fail"

    def __post_init__(self) -> None:
        _check_keyword(self.attribute)
        _check_missing(self.missing)
        _check_bounds(self.attribute, self.min, self.max)

    def check(self, features: Mapping[str, Any]) -> str | None:
        raw = _value(features, self.attribute)
        if raw is None:
            return _missing_reason(
                self.attribute, "a value in " + _range_text(self.min, self.max), self.missing
            )
        try:
            value = float(raw[0] if isinstance(raw, (list, tuple)) else raw)
        except (TypeError, ValueError):
            return f"{self.attribute} {raw!r} is not a number (expected {_range_text(self.min, self.max)})"
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            return f"{self.attribute} {_fmt_number(value)} outside {_range_text(self.min, self.max)}"
        return None

    def describe(self) -> str:
        return f"{self.attribute} in {_range_text(self.min, self.max)}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        out["missing"] = self.missing
        return out


@dataclass(frozen=True)
class AgeRange:
    """The patient's age in years lies in ``[min, max]``.

    Age comes from PatientAge (VR AS, PS3.5 6.2: ``nnnD``, ``nnnW``, ``nnnM``, ``nnnY``), a number of years
    already computed at ingest, or PatientBirthDate and the study (or acquisition) date.
    """

    min: float | None = None
    max: float | None = None
    missing: str = "fail"

    @property
    def attribute(self) -> str:
        return "PatientAge"

    def __post_init__(self) -> None:
        _check_missing(self.missing)
        _check_bounds("PatientAge", self.min, self.max)

    def check(self, features: Mapping[str, Any]) -> str | None:
        years = age_in_years(features)
        if years is None:
            return _missing_reason("PatientAge", f"an age in {_range_text(self.min, self.max)}", self.missing)
        if (self.min is not None and years < self.min) or (self.max is not None and years > self.max):
            return f"age {format_age(features, years)} outside {_range_text(self.min, self.max)}"
        return None

    def describe(self) -> str:
        return f"age in {_range_text(self.min, self.max)} years"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": "PatientAge"}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        out["missing"] = self.missing
        return out


def rule_from_dict(raw: Mapping[str, Any], where: str = "rule") -> Rule:
    """Build a rule from its TOML table; ``where`` names it in errors (e.g. ``deployments[0].rules[1]``)."""
    if not isinstance(raw, Mapping):
        raise RuleError(
            f'{where} is {raw!r}; expected a table such as {{ attribute = "Modality", equals = "DX" }}.'
        )
    known = {"attribute", "equals", "one_of", "regex", "min", "max", "missing"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RuleError(
            f"{where} has unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}."
        )
    attribute = raw.get("attribute")
    if not isinstance(attribute, str):
        raise RuleError(f"{where}.attribute is {attribute!r}; expected a DICOM keyword.")
    missing = raw.get("missing", "fail")
    kinds = [k for k in ("equals", "one_of", "regex") if k in raw] + (
        ["range"] if "min" in raw or "max" in raw else []
    )
    if len(kinds) != 1:
        raise RuleError(
            f"{where} on {attribute} has {', '.join(kinds) or 'no condition'}; expected exactly one of "
            f"equals, one_of, regex, or min/max."
        )
    try:
        if "equals" in raw:
            return Equals(attribute, str(raw["equals"]), missing)
        if "one_of" in raw:
            values = raw["one_of"]
            if isinstance(values, str) or not isinstance(values, Sequence):
                raise RuleError(f"{where}.one_of is {values!r}; expected a list of values.")
            return OneOf(attribute, tuple(str(v) for v in values), missing)
        if "regex" in raw:
            return Regex(attribute, str(raw["regex"]), missing)
        if attribute == "PatientAge":
            return AgeRange(raw.get("min"), raw.get("max"), missing)
        return Range(attribute, raw.get("min"), raw.get("max"), missing)
    except RuleError as exc:
        raise RuleError(f"{where}: {exc}") from exc
