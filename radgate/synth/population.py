"""Synthetic patients: age, sex and a birth date consistent with the study date, under obviously fake names.

PatientAge is the age in completed years at the study date, written ``nnnY`` (PS3.5 6.2, VR AS);
PatientBirthDate is drawn so that the completed years between it and StudyDate equal that age, so the three
attributes agree (PS3.3 C.7.1.1 / C.7.2.2). Names follow ``SYNTHETIC^PHANTOM-000123`` and IDs
``SYN-3F9C-000123`` (a per-site tag, then the number): no one could take them for a person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

__all__ = ["Patient", "PopulationMix", "age_on", "sample_patient"]


@dataclass(frozen=True)
class PopulationMix:
    """Who comes for a chest radiograph: the share of children (1-17 years) and of women, and the adult
    age distribution (a normal truncated to 18-99 years)."""

    paediatric_fraction: float = 0.05
    female_fraction: float = 0.48
    adult_age_mean: float = 58.0
    adult_age_sd: float = 18.0

    def __post_init__(self) -> None:
        for name in ("paediatric_fraction", "female_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"population.{name} is {value}; expected a fraction in [0, 1].")
        if not 18.0 <= self.adult_age_mean <= 99.0:
            raise ValueError(f"population.adult_age_mean is {self.adult_age_mean}; expected 18..99 years.")
        if self.adult_age_sd <= 0:
            raise ValueError(f"population.adult_age_sd is {self.adult_age_sd}; expected > 0.")


@dataclass(frozen=True)
class Patient:
    """One synthetic patient as the DICOM Patient Module (PS3.3 C.7.1.1) will carry them."""

    PatientID: str
    PatientName: str
    PatientSex: str  # F | M
    PatientBirthDate: dt.date
    age: int  # completed years at the study date

    @property
    def PatientAge(self) -> str:
        return f"{self.age:03d}Y"


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years between ``birth`` and ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _anniversary(day: dt.date, years: int) -> dt.date:
    """``day`` moved by ``years``; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def sample_patient(
    rng: np.random.Generator, number: int, study_date: dt.date, mix: PopulationMix, id_prefix: str = "SYN"
) -> Patient:
    """Draw patient ``number`` (name and ID derive from it; ``id_prefix`` keeps sites apart) imaged on
    ``study_date``."""
    if rng.random() < mix.paediatric_fraction:
        age = int(rng.integers(1, 18))
    else:
        age = int(np.clip(round(rng.normal(mix.adult_age_mean, mix.adult_age_sd)), 18, 99))
    sex = "F" if rng.random() < mix.female_fraction else "M"
    # Birth dates d with age_on(d, study_date) == age lie in (study - (age+1) years, study - age years].
    latest = _anniversary(study_date, -age)
    earliest = _anniversary(study_date, -(age + 1)) + dt.timedelta(days=1)
    span = (latest - earliest).days
    birth = latest - dt.timedelta(days=int(rng.integers(0, span + 1)))
    if age_on(birth, study_date) != age:  # guards the date arithmetic, e.g. around 29 February
        raise AssertionError(f"birth date {birth} gives age {age_on(birth, study_date)}, not {age}")
    return Patient(
        PatientID=f"{id_prefix}-{number:06d}",
        PatientName=f"SYNTHETIC^PHANTOM-{number:06d}",
        PatientSex=sex,
        PatientBirthDate=birth,
        age=age,
    )
