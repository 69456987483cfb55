"""Every read monitoring makes of other packages' tables, in one module (to re-point them in one place).

Monitoring reads:

- ``predictions`` (:mod:`radgate.engine.tables`): deployment, site, model, mode, score and the flag at the
  locked operating point, one row per scored series;
- the index (:mod:`radgate.db.schema`): ``studies.StudyDate`` (the acquisition date that puts a case in its
  period, so a retrospective load lands in the right months) and the header features of the scored image
  (``instances`` row of the prediction's ``SOPInstanceUID``, newest revision), with the prediction's
  ``features`` JSON as a fallback;
- ``ground_truth`` (:mod:`radgate.validation.tables`): one label per series or study, with the precedence of
  :func:`radgate.validation.truth.reference_labels`; a label counts from its ``reference_date`` (else the
  day it was imported), so ``--until`` sees only labels that had arrived;
- ``deployments`` and ``deployment_changes`` (:mod:`radgate.routing.tables`): the deployment's go-live;
- ``image_statistics`` (its own, written by the engine through :mod:`radgate.monitoring.imagestats`): the
  scored image's statistics on the model input, as the numeric features ``image_p05`` ... ``image_noise``.

Columns are held as numpy arrays; strings as integer codes into a list of levels (1M predictions stay
small).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from radgate.clock import as_utc
from radgate.db import Database
from radgate.db.schema import Instance, Study
from radgate.engine.tables import Prediction
from radgate.monitoring.imagestats import IMAGE_FEATURES
from radgate.monitoring.tables import ImageStatisticRow
from radgate.routing.tables import DeploymentChange, DeploymentRow
from radgate.validation.tables import GroundTruth
from radgate.validation.truth import DEFAULT_PRECEDENCE

__all__ = [
    "CATEGORICAL_FEATURES",
    "NUMERIC_FEATURES",
    "Categorical",
    "CaseTable",
    "DeploymentInfo",
    "read_cases",
    "read_deployments",
]

#: Header features read from the index (categorical and numeric).
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "ConvolutionKernel",
    "StationName",
    "InstitutionName",
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "PhotometricInterpretation",
    "BitsStored",
    "PatientSex",
)
NUMERIC_FEATURES: tuple[str, ...] = (
    "PatientAge",
    "KVP",
    "Exposure",
    "PixelSpacing",
    "Rows",
    "Columns",
    "SliceThickness",
)
MISSING = ""  # the level of a missing categorical value


@dataclass
class Categorical:
    """A string column as codes into ``levels`` (``levels[codes[i]]`` is row i's value)."""

    codes: NDArray[np.int32]
    levels: list[str]

    def values(self) -> NDArray[np.str_]:
        return (
            np.asarray(self.levels, dtype=str)[self.codes]
            if self.levels
            else np.zeros(self.codes.size, dtype=str)
        )

    def take(self, index: NDArray[Any]) -> Categorical:
        return Categorical(self.codes[index], self.levels)


def _encode(values: list[Any]) -> Categorical:
    """Codes and levels of a column; a value's level is its text, stripped (None and "" are missing)."""
    distinct = list(dict.fromkeys(values))
    levels: dict[str, int] = {}
    mapping = {}
    for v in distinct:
        text = MISSING if v is None else str(v).strip()
        mapping[v] = levels.setdefault(text, len(levels))
    codes = np.fromiter(map(mapping.__getitem__, values), dtype=np.int32, count=len(values))
    return Categorical(codes, list(levels))


def _floats(values: list[Any]) -> NDArray[np.float64]:
    try:
        return np.asarray(values, dtype=np.float64)  # None becomes NaN
    except (TypeError, ValueError):
        return np.asarray([_number(v) for v in values], dtype=np.float64)


@dataclass
class CaseTable:
    """One row per prediction, sorted by acquisition date (then prediction id)."""

    prediction_id: NDArray[np.int64]
    deployment: Categorical
    site: Categorical
    model: Categorical  # "name version"
    mode: Categorical
    study_date: NDArray[np.datetime64]  # datetime64[D]
    score: NDArray[np.float64]
    flag: NDArray[np.bool_]
    label: NDArray[np.int8]  # 1, 0, or -1 (no reference label available)
    label_date: NDArray[np.datetime64]  # when the label became available (NaT: none)
    categorical: dict[str, Categorical] = field(default_factory=dict)
    numeric: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.prediction_id.size)

    def take(self, index: NDArray[Any]) -> CaseTable:
        return CaseTable(
            self.prediction_id[index],
            self.deployment.take(index),
            self.site.take(index),
            self.model.take(index),
            self.mode.take(index),
            self.study_date[index],
            self.score[index],
            self.flag[index],
            self.label[index],
            self.label_date[index],
            {k: v.take(index) for k, v in self.categorical.items()},
            {k: v[index] for k, v in self.numeric.items()},
        )

    def feature_values(self, name: str) -> NDArray[Any]:
        """A feature as strings (categorical) or floats (numeric); ``AgeBand`` from ``PatientAge``."""
        if name in self.categorical:
            return self.categorical[name].values()
        if name in self.numeric:
            return self.numeric[name]
        if name == "AgeBand":
            return age_bands(self.numeric.get("PatientAge", np.full(len(self), np.nan)))
        raise KeyError(name)


def age_bands(age: NDArray[np.float64]) -> NDArray[np.str_]:
    """Decade bands as :func:`radgate.validation.from_db.age_band` names them (``unknown`` when missing)."""
    names = np.array(["<18", "18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+", "unknown"])
    a = np.nan_to_num(age, nan=-1.0)
    code = np.where(a < 18, 0, np.where(a < 30, 1, np.minimum(a // 10, 8) - 1)).astype(np.intp)
    code[np.isnan(age)] = 8
    return names[code]


def _parse_da(value: str | None) -> dt.date | None:
    if not value:
        return None
    text = value.strip().replace("-", "").replace(".", "")[:8]
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except (ValueError, IndexError):
        return None


def _number(value: Any) -> float:
    if value is None or value == "":
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _raw_rows(db: Database, query: Any) -> list[tuple[Any, ...]]:
    """Every row of a parameter-free ``query``, fetched from the DBAPI cursor in one ``fetchall``.

    Monitoring reads whole tables (a million predictions): SQLAlchemy's per-row result processing cost
    more than the query itself (``bench/monitoring.py``), so the compiled SQL runs on the driver's own
    cursor. Dates and times come back as the driver gives them (SQLite: ISO text; PostgreSQL: date and
    datetime objects); :func:`_day` reads both.
    """
    sql = str(query.compile(dialect=db.engine.dialect))
    with db.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()


def _day(value: Any) -> dt.date | None:
    """A DATE or a UTC DATETIME column's day, from the driver's object or SQLite's ISO text."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return as_utc(value).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _labels(db: Database, precedence: Sequence[str] = DEFAULT_PRECEDENCE) -> dict[str, tuple[int, dt.date]]:
    """Every UID's chosen label and the date it became available (precedence as in ``reference_labels``)."""
    rank = {s: i for i, s in enumerate(precedence)}
    best: dict[str, tuple[tuple[int, dt.date, Any], int, dt.date]] = {}
    query = select(
        GroundTruth.StudyInstanceUID,
        GroundTruth.SeriesInstanceUID,
        GroundTruth.label,
        GroundTruth.source,
        GroundTruth.reference_date,
        GroundTruth.imported_at,
    )
    for study, series, label, source, ref_raw, imported in _raw_rows(db, query):
        ref_date = _day(ref_raw)
        key = (-rank.get(source, len(rank)), ref_date or dt.date.min, imported)
        for uid in (series, study):
            if uid and (uid not in best or key > best[uid][0]):
                best[uid] = (key, int(label), ref_date or _day(imported) or dt.date.min)
    return {uid: (label, available) for uid, (_, label, available) in best.items()}


_FIXED = (
    "id",
    "deployment",
    "site",
    "model_name",
    "model_version",
    "mode",
    "score",
    "flag",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "created_at",
    "features",
    "StudyDate",
    "revision",
)


def read_cases(db: Database, until: dt.date | None = None) -> CaseTable:
    """Every prediction acquired up to ``until`` with its features and (available) label."""
    labels = _labels(db)
    instance_cols = [getattr(Instance, k) for k in (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)]
    query = (
        select(
            Prediction.id,
            Prediction.deployment,
            Prediction.site,
            Prediction.model_name,
            Prediction.model_version,
            Prediction.mode,
            Prediction.score,
            Prediction.flag,
            Prediction.StudyInstanceUID,
            Prediction.SeriesInstanceUID,
            Prediction.created_at,
            Prediction.features,
            Study.StudyDate,
            Instance.revision,
            *instance_cols,
        )
        .join(Study, Study.StudyInstanceUID == Prediction.StudyInstanceUID, isouter=True)
        .join(Instance, Instance.SOPInstanceUID == Prediction.SOPInstanceUID, isouter=True)
    )
    newest: dict[int, tuple[Any, ...]] = {}
    for row in _raw_rows(db, query):
        previous = newest.get(row[0])
        if previous is None or (row[13] or 0) > (previous[13] or 0):
            newest[row[0]] = row
    rows = list(newest.values())
    days = [_parse_da(r[12]) or _day(r[10]) or dt.date.min for r in rows]
    if until is not None:
        keep = [i for i, d in enumerate(days) if d <= until]
        rows, days = [rows[i] for i in keep], [days[i] for i in keep]
    n = len(rows)
    columns: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in range(14 + len(instance_cols))]
    )
    n_cat = len(CATEGORICAL_FEATURES)
    missing_index = [i for i, r in enumerate(rows) if r[13] is None]
    if missing_index:  # no index row for the scored image: the features stored with the prediction
        feature_cols = [list(c) for c in columns[14:]]
        for i in missing_index:
            try:
                f = json.loads(rows[i][11] or "{}")
            except ValueError:
                f = {}
            for j, name in enumerate((*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)):
                feature_cols[j][i] = f.get(name)
        columns = [*columns[:14], *feature_cols]
    label_info = [labels.get(r[9]) or labels.get(r[8]) for r in rows]
    label = np.fromiter(
        (-1 if x is None or (until is not None and x[1] > until) else x[0] for x in label_info),
        np.int8,
        count=n,
    )
    label_date = np.array(
        [None if x is None or lab < 0 else x[1] for x, lab in zip(label_info, label.tolist(), strict=True)],
        dtype="datetime64[D]",
    )
    table = CaseTable(
        prediction_id=np.asarray(columns[0], dtype=np.int64),
        deployment=_encode(list(columns[1])),
        site=_encode(list(columns[2])),
        model=_encode([f"{a} {b}" for a, b in zip(columns[3], columns[4], strict=True)]),
        mode=_encode(list(columns[5])),
        study_date=np.array(days, dtype="datetime64[D]"),
        score=np.asarray(columns[6], dtype=np.float64),
        flag=np.asarray(columns[7], dtype=bool),
        label=label,
        label_date=label_date,
        categorical={k: _encode(list(columns[14 + i])) for i, k in enumerate(CATEGORICAL_FEATURES)},
        numeric={k: _floats(list(columns[14 + n_cat + j])) for j, k in enumerate(NUMERIC_FEATURES)},
    )
    table.numeric.update(_image_statistics(db, table.prediction_id))
    order = np.lexsort((table.prediction_id, table.study_date))
    return table.take(order)


def _image_statistics(db: Database, prediction_ids: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    """The scored image's statistics per prediction (NaN where none were measured); {} when none exist.
    Several rows for one image (another preprocessing or file revision): the newest is taken."""
    columns = [getattr(ImageStatisticRow, attr) for attr in IMAGE_FEATURES.values()]
    query = (
        select(Prediction.id, *columns)
        .join(ImageStatisticRow, ImageStatisticRow.SOPInstanceUID == Prediction.SOPInstanceUID)
        .order_by(ImageStatisticRow.id)
    )
    rows = _raw_rows(db, query)
    n = prediction_ids.size
    if not rows or n == 0:
        return {}
    values = np.asarray(rows, dtype=np.float64)
    ids = values[:, 0].astype(np.int64)
    order = np.argsort(prediction_ids, kind="stable")
    sorted_ids = prediction_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, ids), n - 1)
    found = sorted_ids[pos] == ids
    target = order[pos[found]]
    out: dict[str, NDArray[np.float64]] = {}
    for j, name in enumerate(IMAGE_FEATURES):
        column = np.full(n, np.nan)
        column[target] = values[found, j + 1]  # in row order: a later (newer) row overwrites
        out[name] = column
    return out


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment and when (if ever) it went live."""

    name: str
    site: str
    model_name: str
    model_version: str
    mode: str
    went_live: dt.datetime | None


def read_deployments(db: Database) -> dict[str, DeploymentInfo]:
    """Every deployment by name, with the time of its first change to ``live`` (or creation as live)."""
    with db.session() as s:
        rows = s.scalars(select(DeploymentRow)).all()
        changes = s.execute(
            select(DeploymentChange.deployment, DeploymentChange.at, DeploymentChange.new_value)
            .where(DeploymentChange.field == "mode")
            .order_by(DeploymentChange.at)
        ).all()
        live: dict[str, dt.datetime] = {}
        for name, at, new in changes:
            if new == "live" and name not in live:
                live[name] = as_utc(at)
        return {
            r.name: DeploymentInfo(r.name, r.site, r.model_name, r.model_version, r.mode, live.get(r.name))
            for r in rows
        }


def synthetic_models(db: Database) -> set[str]:
    """``"name version"`` of every registered model trained on synthetic data (reports say so)."""
    from radgate.models.tables import ModelVersion

    with db.session() as s:
        rows = s.execute(select(ModelVersion.name, ModelVersion.version).where(ModelVersion.synthetic)).all()
    return {f"{name} {version}" for name, version in rows}
