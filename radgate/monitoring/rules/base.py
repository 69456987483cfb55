"""The plug-in point: a monitoring rule reads one deployment's :class:`RuleContext` and returns findings.

Built-in rules implement :class:`MonitoringRule` exactly as a third-party rule would (configured with
``monitoring.plugins = ["package.module:Class"]``): a class with a ``name``, whether it is ``sound`` (controls
its false-alarm rate) or a heuristic, a one-line ``description``, a constructor taking
:class:`radgate.config.MonitoringSettings`, and ``evaluate(context) -> list[Finding]``. Rules compute; they
never write: the service turns findings into alerts (one open alert per rule x deployment x scope).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from radgate.config import MonitoringSettings
from radgate.monitoring.data import CaseTable
from radgate.monitoring.metrics import Calibration, GroupMetrics
from radgate.monitoring.periods import Period, PeriodUnit

__all__ = ["Baseline", "BaselineSource", "Finding", "MonitoringRule", "RuleContext"]


class BaselineSource(enum.Enum):
    GO_LIVE = "go-live validation"
    CONFIGURED = "configured reference period"
    FIRST_PERIODS = "first periods"


@dataclass(frozen=True)
class Baseline:
    """What "in control" means for a deployment: the reference cases and their metrics."""

    source: BaselineSource
    description: str
    start: dt.date
    end: dt.date
    mask: NDArray[np.bool_]  # rows of the context's cases that form the reference
    metrics: GroupMetrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "description": self.description,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "n": int(self.mask.sum()),
        }


@dataclass(frozen=True)
class Finding:
    """A rule fired for ``scope`` in ``period``; ``detected_on`` is the day the data showed it."""

    rule: str
    deployment: str
    site: str
    scope: str
    period: str
    detected_on: dt.date
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    change_point: dt.date | None = None


@dataclass
class RuleContext:
    """One deployment x site: its cases in acquisition order, periods, baseline and per-period metrics."""

    deployment: str
    site: str
    model: str
    cases: CaseTable
    unit: PeriodUnit
    period_of_row: NDArray[np.int64]
    periods: list[Period]  # every period from the first case to ``until``
    baseline: Baseline
    metrics: dict[str, GroupMetrics]  # the whole deployment, by period key
    calibration: Calibration
    settings: MonitoringSettings
    until: dt.date
    cache: dict[str, Any] = field(default_factory=dict)  # results rules share (e.g. feature drift)

    @property
    def monitored(self) -> NDArray[np.bool_]:
        """Rows after the reference (the cases the rules judge)."""
        return ~self.baseline.mask & (self.cases.study_date > np.datetime64(self.baseline.end, "D"))

    def monitored_periods(self, complete_only: bool = True) -> list[Period]:
        return [
            p
            for p in self.periods
            if p.start > self.baseline.end and (p.end <= self.until or not complete_only)
        ]

    def rows(self, period: Period) -> NDArray[np.intp]:
        return np.flatnonzero(self.period_of_row == period.index)

    def labels_known_on(self, rows: NDArray[np.intp], period: Period) -> dt.date:
        """The day all labels of ``rows`` had arrived (at least the period's last day)."""
        dates = self.cases.label_date[rows]
        dates = dates[~np.isnat(dates)]
        last = dates.max().astype(dt.date) if dates.size else period.end
        return max(period.end, last)


@runtime_checkable
class MonitoringRule(Protocol):
    """What every rule, built-in or plug-in, provides."""

    name: str
    sound: bool
    description: str

    def evaluate(self, context: RuleContext) -> list[Finding]: ...
