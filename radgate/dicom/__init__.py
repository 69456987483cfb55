"""DICOM value handling shared by the stages: Age Strings, dates, patient age in years."""

from radgate.dicom.age import age_in_years, format_age, parse_age_string, parse_da

__all__ = ["age_in_years", "format_age", "parse_age_string", "parse_da"]
