"""Patient age from DICOM: Age Strings (VR AS, PS3.5 6.2), dates (VR DA), and age at the study.

Ingest stores the age in years per instance, routing checks it against a model's intended use, and reports
band it; all three use these functions so that "age 9Y" means the same everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

__all__ = ["age_in_years", "format_age", "parse_age_string", "parse_da"]

_AS = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def parse_age_string(value: str) -> float | None:
    """Years from an Age String (VR AS, PS3.5 6.2: ``nnnD|W|M|Y``), or ``None`` when it is not one."""
    match = _AS.match(str(value))
    if not match:
        return None
    return int(match.group(1)) * _UNIT_YEARS[match.group(2).upper()]


def parse_da(value: Any) -> date | None:
    """A date from a DA value (``YYYYMMDD``), or ``None`` when it is not a valid one."""
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def age_in_years(features: Mapping[str, Any] | Any) -> float | None:
    """Age in years from ``PatientAge`` (years, or an AS string), else from birth date and study date."""
    age = features.get("PatientAge")
    if isinstance(age, (int, float)) and not isinstance(age, bool) and not math.isnan(age):
        return float(age)
    if isinstance(age, str) and age.strip():
        parsed = parse_age_string(age)
        if parsed is not None:
            return parsed
    birth = parse_da(features.get("PatientBirthDate"))
    when = parse_da(features.get("StudyDate")) or parse_da(features.get("AcquisitionDate"))
    if birth is None or when is None or when < birth:
        return None
    years = when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))
    if years >= 1:
        return float(years)
    return (when - birth).days / 365.25


def format_age(features: Mapping[str, Any], years: float) -> str:
    """An age as a radiologist writes it: the AS string if any (``009Y`` -> ``9Y``), else derived."""
    raw = features.get("PatientAge")
    if isinstance(raw, str):
        match = _AS.match(raw)
        if match:
            return f"{int(match.group(1))}{match.group(2).upper()}"
    if years >= 2:
        return f"{int(years)}Y"
    if years * 12 >= 1:
        return f"{int(years * 12)}M"
    return f"{int(round(years * 365.25))}D"
