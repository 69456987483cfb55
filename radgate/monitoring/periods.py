"""Periods by acquisition date: ISO weeks (``2025-W05``), months (``2025-09``), quarters (``2025-Q3``).

A period is an integer index per row (vectorised over numpy ``datetime64[D]``) and a :class:`Period` with
its key and first and last day. Keys sort in time order.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from radgate.errors import Invalid

__all__ = ["Period", "PeriodUnit", "parse_period", "period_index", "period_of_index", "periods_between"]

_EPOCH = dt.date(1970, 1, 1)  # a Thursday; ISO weeks start on Monday, three days later in the week


class PeriodUnit(enum.Enum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


@dataclass(frozen=True, order=True)
class Period:
    index: int
    key: str
    start: dt.date
    end: dt.date  # inclusive

    def as_dict(self) -> dict[str, str]:
        return {"period": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}


def period_index(days: NDArray[np.datetime64], unit: PeriodUnit) -> NDArray[np.int64]:
    """Each date's period as an integer (months, quarters since 1970; weeks since the 1969-12-29 week)."""
    d = days.astype("datetime64[D]")
    if unit is PeriodUnit.WEEK:
        return (d.astype(np.int64) + 3) // 7
    months = d.astype("datetime64[M]").astype(np.int64)
    return months if unit is PeriodUnit.MONTH else months // 3


def period_of_index(index: int, unit: PeriodUnit) -> Period:
    if unit is PeriodUnit.WEEK:
        start = _EPOCH + dt.timedelta(days=index * 7 - 3)
        year, week, _ = start.isocalendar()
        return Period(index, f"{year}-W{week:02d}", start, start + dt.timedelta(days=6))
    months = index if unit is PeriodUnit.MONTH else index * 3
    year, month0 = divmod(months, 12)
    start = dt.date(1970 + year, month0 + 1, 1)
    span = 1 if unit is PeriodUnit.MONTH else 3
    year_end, month_end0 = divmod(months + span, 12)
    end = dt.date(1970 + year_end, month_end0 + 1, 1) - dt.timedelta(days=1)
    key = (
        f"{start.year}-{start.month:02d}" if unit is PeriodUnit.MONTH else f"{start.year}-Q{month0 // 3 + 1}"
    )
    return Period(index, key, start, end)


def parse_period(text: str, unit: PeriodUnit) -> Period:
    """A period key (``2025-09``, ``2025-W05``, ``2025-Q3``) or an ISO date (its period), as a Period."""
    value = text.strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if m:
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        return period_of_index(int(period_index(np.array([day], dtype="datetime64[D]"), unit)[0]), unit)
    patterns = {
        PeriodUnit.MONTH: (r"(\d{4})-(\d{2})", "2025-09"),
        PeriodUnit.WEEK: (r"(\d{4})-W(\d{2})", "2025-W05"),
        PeriodUnit.QUARTER: (r"(\d{4})-Q([1-4])", "2025-Q3"),
    }
    pattern, example = patterns[unit]
    m = re.fullmatch(pattern, value)
    if not m:
        raise Invalid(
            f"period {text!r} is not a {unit.value} key like {example} or an ISO date like 2025-09-30"
        )
    year, part = int(m[1]), int(m[2])
    if unit is PeriodUnit.MONTH:
        if not 1 <= part <= 12:
            raise Invalid(f"period {text!r}: month {part} is not 01-12")
        day = dt.date(year, part, 1)
    elif unit is PeriodUnit.QUARTER:
        day = dt.date(year, 3 * part - 2, 1)
    else:
        try:
            day = dt.date.fromisocalendar(year, part, 1)
        except ValueError as exc:
            raise Invalid(f"period {text!r}: {year} has no ISO week {part}") from exc
    return parse_period(day.isoformat(), unit)


def periods_between(first: int, last: int, unit: PeriodUnit) -> list[Period]:
    return [period_of_index(i, unit) for i in range(first, last + 1)]
