"""Scenario files: what a synthetic site looks like month by month (TOML).

A scenario fixes the calendar (start date, number of months, studies per month), the pneumothorax
prevalence, the population, how studies are composed (lateral views, one or two series, incomplete series,
look-alike distractors) and the vendor mix, which may change during the scenario — a new scanner from month
8, say — so that drift and domain shift can be shown. Example (``radgate/synth/scenarios/demo-site.toml``)::

    [scenario]
    name = "demo-site"
    start = 2025-01-01
    months = 12
    studies_per_month = 100        # or a list with one number per month
    prevalence = 0.15              # or a list with one number per month

    [population]
    paediatric_fraction = 0.05

    [studies]
    lateral_fraction = 0.5

    [[vendors]]
    from_month = 1
    mix = { "ge-dx" = 0.7, "carestream-portable" = 0.3 }

    [[vendors]]
    from_month = 8
    mix = { "ge-dx" = 0.3, "agfa-dx" = 0.45, "carestream-portable" = 0.25 }
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from radgate.errors import Invalid
from radgate.synth.population import PopulationMix
from radgate.synth.profiles import PROFILES

__all__ = [
    "Scenario",
    "ScenarioError",
    "StudyMix",
    "VendorPhase",
    "builtin_scenario",
    "builtin_scenario_names",
    "load_scenario",
    "parse_scenario",
    "resolve_scenario",
    "single_profile_scenario",
]


class ScenarioError(Invalid, ValueError):
    """A scenario file is malformed: the message names the key, the value and what was expected."""


@dataclass(frozen=True)
class StudyMix:
    """How studies are composed. ``lateral_fraction``: PA studies that add a lateral view;
    ``two_series_fraction``: of those, the lateral in its own series (else both in one series);
    ``missing_instance_fraction``: two-image series that arrive with one instance missing;
    ``skin_fold_fraction`` / ``line_fraction``: images with a skin fold / a central line (AP studies get
    lines three times as often, capped at 0.9)."""

    lateral_fraction: float = 0.5
    two_series_fraction: float = 0.4
    missing_instance_fraction: float = 0.03
    skin_fold_fraction: float = 0.05
    line_fraction: float = 0.08


@dataclass(frozen=True)
class VendorPhase:
    """From calendar month ``from_month`` (1-based) on, profiles are drawn with weights ``mix``."""

    from_month: int
    mix: dict[str, float]


@dataclass(frozen=True)
class Scenario:
    """A synthetic site over ``months`` months from ``start`` (validated at construction)."""

    name: str
    start: dt.date
    months: int
    studies_per_month: tuple[int, ...]
    prevalence: tuple[float, ...]
    vendors: tuple[VendorPhase, ...]
    population: PopulationMix = field(default_factory=PopulationMix)
    studies: StudyMix = field(default_factory=StudyMix)
    description: str = ""
    institution: str = "Synthetic General Hospital"

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ScenarioError(f"scenario.name {self.name!r} must be non-empty letters, digits, '-' or '_'.")
        if not 1 <= self.months <= 120:
            raise ScenarioError(f"scenario.months is {self.months}; expected 1..120.")
        if len(self.studies_per_month) != self.months or any(n < 0 for n in self.studies_per_month):
            raise ScenarioError(
                f"scenario.studies_per_month has {len(self.studies_per_month)} non-negative entries needed "
                f"{self.months} (one per month): got {list(self.studies_per_month)}."
            )
        if len(self.prevalence) != self.months or any(not 0.0 <= p <= 1.0 for p in self.prevalence):
            raise ScenarioError(
                f"scenario.prevalence must be one fraction in [0, 1] per month ({self.months}); "
                f"got {list(self.prevalence)}."
            )
        if not self.vendors or self.vendors[0].from_month != 1:
            raise ScenarioError("[[vendors]]: the first phase must start at from_month = 1.")
        previous = 0
        for phase in self.vendors:
            # A phase may start after the last month (a scenario cut short keeps its file's phases).
            if phase.from_month <= previous:
                raise ScenarioError(
                    f"[[vendors]] from_month {phase.from_month} must be greater than the previous phase's "
                    f"({previous})."
                )
            previous = phase.from_month
            if not phase.mix or any(w < 0 for w in phase.mix.values()) or sum(phase.mix.values()) <= 0:
                raise ScenarioError(f"[[vendors]] from_month {phase.from_month}: mix needs positive weights.")
            unknown = sorted(set(phase.mix) - set(PROFILES))
            if unknown:
                raise ScenarioError(
                    f"[[vendors]] from_month {phase.from_month}: unknown profile(s) {unknown}; "
                    f"known: {', '.join(PROFILES)}."
                )
        for name, value in asdict(self.studies).items():
            if not 0.0 <= value <= 1.0:
                raise ScenarioError(f"studies.{name} is {value}; expected a fraction in [0, 1].")

    @property
    def total_studies(self) -> int:
        return sum(self.studies_per_month)

    def phase(self, month_index: int) -> VendorPhase:
        """The vendor phase in force in month ``month_index`` (0-based)."""
        current = self.vendors[0]
        for phase in self.vendors:
            if phase.from_month <= month_index + 1:
                current = phase
        return current

    def month_start(self, month_index: int) -> dt.date:
        y, m = divmod(self.start.month - 1 + month_index, 12)
        return dt.date(self.start.year + y, m + 1, 1)

    def with_total(self, total: int) -> Scenario:
        """The same scenario with ``total`` studies, spread over the months in proportion to the original
        volumes (largest remainders), so ``--studies N`` keeps the shape of the calendar."""
        if total < 1:
            raise ScenarioError(f"the number of studies is {total}; expected at least 1.")
        weights = list(self.studies_per_month) if self.total_studies > 0 else [1] * self.months
        wsum = sum(weights)
        exact = [total * w / wsum for w in weights]
        counts = [int(e) for e in exact]
        order = sorted(range(self.months), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[: total - sum(counts)]:
            counts[i] += 1
        return Scenario(
            name=self.name,
            start=self.start,
            months=self.months,
            studies_per_month=tuple(counts),
            prevalence=self.prevalence,
            vendors=self.vendors,
            population=self.population,
            studies=self.studies,
            description=self.description,
            institution=self.institution,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (dates as ISO strings), used for the site key and the provenance file."""
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["studies_per_month"] = list(self.studies_per_month)
        d["prevalence"] = list(self.prevalence)
        d["vendors"] = [
            {"from_month": v.from_month, "mix": dict(sorted(v.mix.items()))} for v in self.vendors
        ]
        return d

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: two scenarios that generate the same site share it."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _per_month(key: str, value: Any, months: int, kind: type) -> tuple[Any, ...]:
    if isinstance(value, list):
        if len(value) != months:
            raise ScenarioError(
                f"scenario.{key} lists {len(value)} values; expected {months} (one per month)."
            )
        items = value
    else:
        items = [value] * months
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ScenarioError(f"scenario.{key} value {item!r} is not a number.")
        if kind is int and int(item) != item:
            raise ScenarioError(f"scenario.{key} value {item!r} is not a whole number.")
        out.append(kind(item))
    return tuple(out)


def _section(data: dict[str, Any], name: str, cls: type) -> Any:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ScenarioError(f"[{name}] must be a table, got {type(raw).__name__}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ScenarioError(f"[{name}] has unknown key(s) {unknown}; known keys: {sorted(known)}.")
    try:
        return cls(**{k: float(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"[{name}]: {exc}") from exc


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Build a :class:`Scenario` from parsed TOML, naming ``source`` in errors."""
    try:
        head = data.get("scenario")
        if not isinstance(head, dict):
            raise ScenarioError("the [scenario] table is missing.")
        allowed = {"name", "description", "start", "months", "studies_per_month", "prevalence", "institution"}
        unknown = sorted(set(head) - allowed)
        if unknown:
            raise ScenarioError(f"[scenario] has unknown key(s) {unknown}; known keys: {sorted(allowed)}.")
        months = head.get("months")
        if not isinstance(months, int) or isinstance(months, bool):
            raise ScenarioError(f"scenario.months is {months!r}; expected a whole number.")
        start = head.get("start", dt.date(2025, 1, 1))
        if isinstance(start, str):
            start = dt.date.fromisoformat(start)
        if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
            raise ScenarioError(f"scenario.start is {start!r}; expected a date such as 2025-01-01.")
        vendors_raw = data.get("vendors")
        if not isinstance(vendors_raw, list) or not vendors_raw:
            raise ScenarioError("at least one [[vendors]] table (from_month, mix) is needed.")
        vendors = []
        for item in vendors_raw:
            if (
                not isinstance(item, dict)
                or set(item) != {"from_month", "mix"}
                or not isinstance(item["mix"], dict)
            ):
                raise ScenarioError(
                    f"each [[vendors]] needs exactly from_month and a mix table; got {item!r}."
                )
            vendors.append(
                VendorPhase(int(item["from_month"]), {str(k): float(v) for k, v in item["mix"].items()})
            )
        unknown_tables = sorted(set(data) - {"scenario", "population", "studies", "vendors"})
        if unknown_tables:
            raise ScenarioError(
                f"unknown table(s) {unknown_tables}; expected scenario, population, studies, vendors."
            )
        return Scenario(
            name=str(head.get("name", "")),
            description=str(head.get("description", "")),
            institution=str(head.get("institution", "Synthetic General Hospital")),
            start=start,
            months=months,
            studies_per_month=_per_month(
                "studies_per_month", head.get("studies_per_month", 100), months, int
            ),
            prevalence=_per_month("prevalence", head.get("prevalence", 0.15), months, float),
            vendors=tuple(vendors),
            population=_section(data, "population", PopulationMix),
            studies=_section(data, "studies", StudyMix),
        )
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    except ValueError as exc:  # PopulationMix checks, date parsing
        raise ScenarioError(f"{source}: {exc}") from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {p} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return parse_scenario(data, str(p))


def builtin_scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``radgate/synth/scenarios/``."""
    folder = resources.files("radgate.synth").joinpath("scenarios")
    return sorted(e.name[: -len(".toml")] for e in folder.iterdir() if e.name.endswith(".toml"))


def builtin_scenario(name: str) -> Scenario:
    """A shipped scenario by name (``demo-site`` ...)."""
    if name not in builtin_scenario_names():
        raise ScenarioError(
            f"no built-in scenario {name!r}; built-in: {', '.join(builtin_scenario_names())}."
        )
    ref = resources.files("radgate.synth").joinpath("scenarios").joinpath(f"{name}.toml")
    return parse_scenario(tomllib.loads(ref.read_text(encoding="utf-8")), f"built-in scenario {name}")


def single_profile_scenario(profile: str, studies: int, prevalence: float = 0.15) -> Scenario:
    """One month, one profile: what ``radgate synth --profile NAME`` generates."""
    if profile not in PROFILES:
        raise ScenarioError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}.")
    return Scenario(
        name=f"profile-{profile}",
        description=f"All studies on the {profile} profile.",
        start=dt.date(2025, 1, 1),
        months=1,
        studies_per_month=(studies,),
        prevalence=(prevalence,),
        vendors=(VendorPhase(1, {profile: 1.0}),),
    )


def resolve_scenario(
    scenario: str | None = None,
    profile: str | None = None,
    studies: int | None = None,
    prevalence: float = 0.15,
) -> Scenario:
    """The scenario ``radgate synth`` means: a file path or built-in name, or one profile, or ``demo-site``;
    ``studies`` rescales it to that many studies."""
    if scenario is not None and profile is not None:
        raise ScenarioError("give either a scenario or a profile, not both.")
    if profile is not None:
        return single_profile_scenario(profile, studies if studies is not None else 20, prevalence)
    if scenario is None:
        chosen = builtin_scenario("demo-site")
    elif Path(scenario).is_file():
        chosen = load_scenario(scenario)
    elif scenario in builtin_scenario_names():
        chosen = builtin_scenario(scenario)
    else:
        raise ScenarioError(
            f"scenario {scenario!r} is neither a file nor a built-in scenario "
            f"({', '.join(builtin_scenario_names())})."
        )
    return chosen.with_total(studies) if studies is not None else chosen
