"""QIDO-RS (PS3.18 10.6): search studies, series and instances in radgate's index, answer DICOM JSON.

Matching follows PS3.4 C.2.2.2: single value, list of UIDs (comma or backslash separated), wildcard ``*`` and
``?`` on text attributes, and ``A-B`` ranges on dates. ``limit``, ``offset`` and ``includefield`` are
honoured; ``fuzzymatching`` is accepted and ignored (radgate answers exact matches only). Only the newest
revision of each instance is listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from radgate.db import Instance, Series, Study
from radgate.db.queries import newest_instances

__all__ = ["QidoError", "search_instances", "search_series", "search_studies"]

CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}


class QidoError(ValueError):
    """A query parameter radgate cannot honour; the message names it and what is supported."""


def _keyword(param: str) -> str:
    """Accept a keyword (``PatientID``) or a tag (``00100020``)."""
    if len(param) == 8 and all(c in "0123456789abcdefABCDEF" for c in param):
        kw = keyword_for_tag(int(param, 16))
        if kw:
            return kw
    return param


def _match(column: Any, value: str, vr: str) -> ColumnElement[bool]:
    if vr == "UI":
        uids = [u.strip() for u in value.replace("\\", ",").split(",") if u.strip()]
        return column.in_(uids)
    if vr in ("DA", "TM", "DT") and "-" in value:
        lo, _, hi = value.partition("-")
        conds = []
        if lo:
            conds.append(column >= lo)
        if hi:
            conds.append(column <= hi + ("235959.999999" if vr == "TM" else ""))
        return and_(*conds)
    if "*" in value or "?" in value:
        pattern = value.replace("%", r"\%").replace("_", r"\_").replace("*", "%").replace("?", "_")
        return column.like(pattern, escape="\\")
    return column == value


def _parse(
    params: Mapping[str, str], columns: Mapping[str, Any | None], level: str
) -> tuple[list[ColumnElement[bool]], int | None, int, set[str]]:
    conditions: list[ColumnElement[bool]] = []
    limit: int | None = None
    offset = 0
    include: set[str] = set()
    for raw, value in params.items():
        if raw in CONTROL:
            if raw == "limit":
                limit = _nonneg(raw, value)
            elif raw == "offset":
                offset = _nonneg(raw, value) or 0
            elif raw == "includefield":
                include |= {_keyword(v.strip()) for v in value.split(",") if v.strip()}
            continue
        kw = _keyword(raw)
        if kw not in columns:
            supported = ", ".join(sorted(columns))
            raise QidoError(
                f"Matching on {raw!r} is not supported at the {level} level; supported: {supported}."
            )
        if value == "" or columns[kw] is None:
            continue  # universal match, or handled by the caller
        tag = tag_for_keyword(kw)
        vr = dictionary_VR(tag) if tag is not None else "LO"
        conditions.append(_match(columns[kw], value, vr))
    return conditions, limit, offset, include


def _nonneg(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise QidoError(f"{name}={value!r} is not an integer.") from None
    if n < 0:
        raise QidoError(f"{name}={value!r} must not be negative.")
    return n


def _json(values: Mapping[str, Any]) -> dict[str, Any]:
    ds = Dataset()
    for kw, value in values.items():
        if value is None or value == "":
            continue
        setattr(ds, kw, value)
    return ds.to_json_dict()


STUDY_COLUMNS: dict[str, Any] = {
    "StudyInstanceUID": Study.StudyInstanceUID,
    "StudyDate": Study.StudyDate,
    "StudyTime": Study.StudyTime,
    "AccessionNumber": Study.AccessionNumber,
    "StudyID": Study.StudyID,
    "StudyDescription": Study.StudyDescription,
    "PatientName": Study.PatientName,
    "PatientID": Study.PatientID,
    "PatientBirthDate": Study.PatientBirthDate,
    "PatientSex": Study.PatientSex,
    "ReferringPhysicianName": Study.ReferringPhysicianName,
}


def search_studies(s: Session, params: Mapping[str, str], base_url: str = "") -> list[dict[str, Any]]:
    params = dict(params)
    modalities_param = params.pop("ModalitiesInStudy", params.pop("00080061", ""))
    conditions, limit, offset, _ = _parse(params, {**STUDY_COLUMNS, "ModalitiesInStudy": None}, "study")
    query = select(Study).where(*conditions).order_by(Study.StudyDate, Study.StudyInstanceUID)
    if modalities_param:
        wanted = [m.strip() for m in modalities_param.replace("\\", ",").split(",") if m.strip()]
        query = query.where(
            Study.StudyInstanceUID.in_(select(Series.StudyInstanceUID).where(Series.Modality.in_(wanted)))
        )
    query = query.offset(offset)
    if limit:
        query = query.limit(limit)
    studies = s.scalars(query).all()
    if not studies:
        return []
    uids = [st.StudyInstanceUID for st in studies]
    modalities: dict[str, set[str]] = {}
    n_series: dict[str, int] = {}
    for study_uid, modality in s.execute(
        select(Series.StudyInstanceUID, Series.Modality).where(Series.StudyInstanceUID.in_(uids))
    ):
        modalities.setdefault(study_uid, set())
        if modality:
            modalities[study_uid].add(modality)
        n_series[study_uid] = n_series.get(study_uid, 0) + 1
    n_instances = _latest_counts(s, Instance.StudyInstanceUID, uids)
    out = []
    for st in studies:
        values = {kw: getattr(st, kw) for kw in STUDY_COLUMNS}
        values["ModalitiesInStudy"] = sorted(modalities.get(st.StudyInstanceUID, set())) or None
        values["NumberOfStudyRelatedSeries"] = n_series.get(st.StudyInstanceUID, 0)
        values["NumberOfStudyRelatedInstances"] = n_instances.get(st.StudyInstanceUID, 0)
        if base_url:
            values["RetrieveURL"] = f"{base_url}/studies/{st.StudyInstanceUID}"
        out.append(_json(values))
    return out


def _latest_counts(s: Session, column: Any, uids: list[str]) -> dict[str, int]:
    """Instances per study/series, counting each SOPInstanceUID once whatever its revisions."""
    rows = s.execute(
        select(column, func.count(func.distinct(Instance.SOPInstanceUID)))
        .where(column.in_(uids))
        .group_by(column)
    ).all()
    return {uid: n for uid, n in rows}


SERIES_COLUMNS: dict[str, Any] = {
    "SeriesInstanceUID": Series.SeriesInstanceUID,
    "Modality": Series.Modality,
    "SeriesNumber": Series.SeriesNumber,
    "SeriesDescription": Series.SeriesDescription,
}


def search_series(
    s: Session, study_uid: str, params: Mapping[str, str], base_url: str = ""
) -> list[dict[str, Any]]:
    conditions, limit, offset, _ = _parse(params, SERIES_COLUMNS, "series")
    query = (
        select(Series)
        .where(Series.StudyInstanceUID == study_uid, *conditions)
        .order_by(Series.SeriesNumber, Series.SeriesInstanceUID)
        .offset(offset)
    )
    if limit:
        query = query.limit(limit)
    rows = s.scalars(query).all()
    counts = _latest_counts(s, Instance.SeriesInstanceUID, [r.SeriesInstanceUID for r in rows])
    out = []
    for r in rows:
        values: dict[str, Any] = {kw: getattr(r, kw) for kw in SERIES_COLUMNS}
        values["StudyInstanceUID"] = r.StudyInstanceUID
        values["NumberOfSeriesRelatedInstances"] = counts.get(r.SeriesInstanceUID, 0)
        if base_url:
            values["RetrieveURL"] = f"{base_url}/studies/{study_uid}/series/{r.SeriesInstanceUID}"
        out.append(_json(values))
    return out


INSTANCE_COLUMNS: dict[str, Any] = {
    "SOPInstanceUID": Instance.SOPInstanceUID,
    "SOPClassUID": Instance.SOPClassUID,
    "InstanceNumber": Instance.InstanceNumber,
    "Rows": Instance.Rows,
    "Columns": Instance.Columns,
    "NumberOfFrames": Instance.NumberOfFrames,
}


def search_instances(
    s: Session, study_uid: str, series_uid: str, params: Mapping[str, str], base_url: str = ""
) -> list[dict[str, Any]]:
    conditions, limit, offset, _ = _parse(params, INSTANCE_COLUMNS, "instance")
    query = (
        newest_instances(series_uid)
        .where(Instance.StudyInstanceUID == study_uid, *conditions)
        .order_by(Instance.InstanceNumber, Instance.SOPInstanceUID)
        .offset(offset)
    )
    if limit:
        query = query.limit(limit)
    out = []
    for r in s.scalars(query).all():
        values: dict[str, Any] = {kw: getattr(r, kw) for kw in INSTANCE_COLUMNS}
        values["StudyInstanceUID"] = r.StudyInstanceUID
        values["SeriesInstanceUID"] = r.SeriesInstanceUID
        if base_url:
            values["RetrieveURL"] = (
                f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{r.SOPInstanceUID}"
            )
        out.append(_json(values))
    return out
