"""``new_scanner``: a system never seen in the reference, named and alerted at its first study."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np

from radgate.config import MonitoringSettings
from radgate.monitoring.periods import period_of_index
from radgate.monitoring.rules.base import Finding, RuleContext

__all__ = ["SCANNER_KEYS", "NewScannerRule", "scanner_keys"]

#: What identifies an acquisition system (PS3.3 C.7.5.1 General Equipment; C.8.3.1 for the kernel).
SCANNER_KEYS: tuple[str, ...] = (
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "ConvolutionKernel",
)


def scanner_keys(context: RuleContext) -> list[str]:
    """Each row's system as ``Manufacturer | Model | Software | Kernel`` (a missing value is ``-``)."""
    columns = [
        np.where(v == "", "-", v) for v in (context.cases.categorical[k].values() for k in SCANNER_KEYS)
    ]
    return [" | ".join(parts) for parts in zip(*columns, strict=True)]


class NewScannerRule:
    """Fires on the first study from a system whose four identifying values the reference never had."""

    name = "new_scanner"
    sound = True
    description = (
        "(Manufacturer, ManufacturerModelName, SoftwareVersions, ConvolutionKernel) not in the reference"
    )

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings

    def evaluate(self, context: RuleContext) -> list[Finding]:
        keys = scanner_keys(context)
        mask = context.baseline.mask
        known = {keys[i] for i in np.flatnonzero(mask)}
        if not known:
            return []
        monitored = context.monitored
        out = []
        seen: set[str] = set()
        monitored_rows = np.flatnonzero(monitored).tolist()
        counts = Counter(keys[j] for j in monitored_rows)
        for i in monitored_rows:
            key = keys[i]
            if key in known or key in seen:
                continue
            seen.add(key)
            n = counts[key]
            day: dt.date = context.cases.study_date[i].astype(dt.date)
            period = period_of_index(int(context.period_of_row[i]), context.unit)
            values = dict(zip(SCANNER_KEYS, key.split(" | "), strict=True))
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    f"scanner:{key}",
                    period.key,
                    day,
                    f"new scanner {values['Manufacturer']} {values['ManufacturerModelName']} (software "
                    f"{values['SoftwareVersions']}, kernel {values['ConvolutionKernel']}) first seen "
                    f"{day.isoformat()}; {n} studies since; not in the reference",
                    {"scanner": values, "first_seen": day.isoformat(), "studies": n},
                )
            )
        return out
