"""A series' header features: the DICOM attributes routing rules look at, keyed by DICOM keyword.

Features come from the instance index (``radgate.db.Instance`` rows, filled at ingest) or straight from a
dataset. Patient identity (name, ID, birth date) is never part of a stored feature set: age is kept in years.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from radgate.dicom.age import age_in_years, format_age, parse_age_string

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
