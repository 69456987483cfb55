"""A series' header features: the DICOM attributes routing rules look at, keyed by DICOM keyword.

Features come from the instance index (``radgate.db.Instance`` rows, filled at ingest) or straight from a
dataset. Patient identity (name, ID, birth date) is never part of a stored feature set: age is kept in years.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["FEATURE_KEYWORDS", "age_in_years", "features_from_dataset", "format_age", "parse_age_string"]

#: The attributes kept as features (routing inputs and the result's record of its input).
FEATURE_KEYWORDS: tuple[str, ...] = (
    "Modality",
    "SOPClassUID",
    "BodyPartExamined",
    "ViewPosition",
    "PatientAge",
    "PatientSex",
    "SeriesDescription",
    "Manufacturer",
    "ManufacturerModelName",
    "StationName",
    "InstitutionName",
    "PhotometricInterpretation",
    "BitsStored",
    "Rows",
    "Columns",
    "PixelSpacing",
    "KVP",
    "Exposure",
    "ConvolutionKernel",
    "SliceThickness",
)

_AS = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def parse_age_string(value: str) -> float | None:
    """Years from an Age String (VR AS, PS3.5 6.2: ``nnnD|W|M|Y``), or ``None`` when it is not one."""
    match = _AS.match(str(value))
    if not match:
        return None
    return int(match.group(1)) * _UNIT_YEARS[match.group(2).upper()]


def _parse_da(value: Any) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def age_in_years(features: Mapping[str, Any]) -> float | None:
    """Age in years from ``PatientAge`` (years, or an AS string), else from birth date and study date."""
    age = features.get("PatientAge")
    if isinstance(age, (int, float)) and not isinstance(age, bool) and not math.isnan(age):
        return float(age)
    if isinstance(age, str) and age.strip():
        parsed = parse_age_string(age)
        if parsed is not None:
            return parsed
    birth = _parse_da(features.get("PatientBirthDate"))
    when = _parse_da(features.get("StudyDate")) or _parse_da(features.get("AcquisitionDate"))
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


def _plain(value: Any) -> Any:
    """A JSON-able plain value from a pydicom element value (first value of multi-valued numbers)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        items = list(value)
        return _plain(items[0]) if items else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if type(value).__name__ in ("DSfloat", "DSdecimal", "IS"):
        return float(value)
    text = str(value).strip()
    return text or None


def features_from_dataset(ds: Dataset) -> dict[str, Any]:
    """The feature set of one dataset; PatientAge is converted to years (AS, else birth and study date)."""
    out: dict[str, Any] = {}
    for keyword in FEATURE_KEYWORDS:
        if keyword == "PatientAge":
            continue
        out[keyword] = _plain(ds.get(keyword))
    if out.get("PixelSpacing") is None and "ImagerPixelSpacing" in ds:
        out["PixelSpacing"] = _plain(ds.ImagerPixelSpacing)
    out["PatientAge"] = age_in_years(
        {
            "PatientAge": str(ds.get("PatientAge", "") or ""),
            "PatientBirthDate": ds.get("PatientBirthDate"),
            "StudyDate": ds.get("StudyDate"),
            "AcquisitionDate": ds.get("AcquisitionDate"),
        }
    )
    return out
