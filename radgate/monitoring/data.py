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
- ``deployments`` and ``deployment_changes`` (:mod:`radgate.routing.tables`): the deployment's go-live.

Columns are held as numpy arrays; strings as integer codes into a list of levels (1M predictions stay
small).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from radgate.clock import as_utc
from radgate.db import Database
from radgate.db.schema import Instance, Study
from radgate.engine.tables import Prediction
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
        return np.asarray(self.levels, dtype=str)[self.codes] if self.levels else np.zeros(0, dtype=str)

    def take(self, index: NDArray[Any]) -> Categorical:
        return Categorical(self.codes[index], self.levels)


class _Coder:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def code(self, values: Iterable[Any]) -> list[int]:
        index = self.index
        out = []
        for v in values:
            key = MISSING if v is None else str(v).strip()
            c = index.get(key)
            if c is None:
                c = index[key] = len(index)
            out.append(c)
        return out

    def levels(self) -> list[str]:
        return list(self.index)


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


def _labels(db: Database, precedence: Sequence[str] = DEFAULT_PRECEDENCE) -> dict[str, tuple[int, dt.date]]:
    """Every UID's chosen label and the date it became available (precedence as in ``reference_labels``)."""
    rank = {s: i for i, s in enumerate(precedence)}
    best: dict[str, tuple[tuple[int, dt.date, dt.datetime], int, dt.date]] = {}
    columns = (
        GroundTruth.StudyInstanceUID,
        GroundTruth.SeriesInstanceUID,
        GroundTruth.label,
        GroundTruth.source,
        GroundTruth.reference_date,
        GroundTruth.imported_at,
    )
    with db.session() as s:
        for study, series, label, source, ref_date, imported in s.execute(select(*columns)):
            imported_utc = as_utc(imported)
            key = (-rank.get(source, len(rank)), ref_date or dt.date.min, imported_utc)
            available = ref_date or imported_utc.date()
            for uid in (series, study):
                if uid and (uid not in best or key > best[uid][0]):
                    best[uid] = (key, int(label), available)
    return {uid: (label, available) for uid, (_, label, available) in best.items()}


def read_cases(db: Database, until: dt.date | None = None, chunk: int = 50_000) -> CaseTable:
    """Every prediction acquired up to ``until`` with its features and (available) label."""
    labels = _labels(db)
    coders = {name: _Coder() for name in ("deployment", "site", "model", "mode", *CATEGORICAL_FEATURES)}
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("id", "deployment", "site", "model", "mode", "date", "score", "flag", "label", "label_date")
    }
    cat: dict[str, list[int]] = {k: [] for k in CATEGORICAL_FEATURES}
    num: dict[str, list[float]] = {k: [] for k in NUMERIC_FEATURES}
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
        .order_by(Prediction.id, Instance.revision)
    )
    n_cat = len(CATEGORICAL_FEATURES)
    with db.session() as s:
        result = s.execute(query.execution_options(yield_per=chunk))
        rows: list[Any] = []
        for partition in result.partitions(chunk):
            rows = _keep_newest(list(partition), rows)
            if rows and len(rows) > 1:
                keep, rows = rows[:-1], rows[-1:]  # the last id may continue in the next partition
                _append(keep, until, labels, coders, cols, cat, num, n_cat)
        if rows:
            _append(rows, until, labels, coders, cols, cat, num, n_cat)
    date = np.array(cols["date"], dtype="datetime64[D]")
    order = np.lexsort((np.asarray(cols["id"], dtype=np.int64), date))
    table = CaseTable(
        prediction_id=np.asarray(cols["id"], dtype=np.int64),
        deployment=Categorical(np.asarray(cols["deployment"], dtype=np.int32), coders["deployment"].levels()),
        site=Categorical(np.asarray(cols["site"], dtype=np.int32), coders["site"].levels()),
        model=Categorical(np.asarray(cols["model"], dtype=np.int32), coders["model"].levels()),
        mode=Categorical(np.asarray(cols["mode"], dtype=np.int32), coders["mode"].levels()),
        study_date=date,
        score=np.asarray(cols["score"], dtype=np.float64),
        flag=np.asarray(cols["flag"], dtype=bool),
        label=np.asarray(cols["label"], dtype=np.int8),
        label_date=np.array(cols["label_date"], dtype="datetime64[D]"),
        categorical={
            k: Categorical(np.asarray(v, dtype=np.int32), coders[k].levels()) for k, v in cat.items()
        },
        numeric={k: np.asarray(v, dtype=np.float64) for k, v in num.items()},
    )
    return table.take(order)


def _keep_newest(partition: list[Any], carry: list[Any]) -> list[Any]:
    """Rows ordered by (id, revision): keep the last (newest revision) of each prediction id."""
    out = list(carry)
    for row in partition:
        if out and out[-1][0] == row[0]:
            out[-1] = row
        else:
            out.append(row)
    return out


def _append(
    rows: list[Any],
    until: dt.date | None,
    labels: dict[str, tuple[int, dt.date]],
    coders: dict[str, _Coder],
    cols: dict[str, list[Any]],
    cat: dict[str, list[int]],
    num: dict[str, list[float]],
    n_cat: int,
) -> None:
    kept = []
    for row in rows:
        day = _parse_da(row[12]) or as_utc(row[10]).date()
        if until is not None and day > until:
            continue
        kept.append((row, day))
    if not kept:
        return
    for row, day in kept:
        cols["id"].append(row[0])
        cols["date"].append(day)
        cols["score"].append(row[6])
        cols["flag"].append(bool(row[7]))
        found = labels.get(row[9]) or labels.get(row[8])
        if found is not None and (until is None or found[1] <= until):
            cols["label"].append(found[0])
            cols["label_date"].append(found[1])
        else:
            cols["label"].append(-1)
            cols["label_date"].append(None)
    cols["deployment"].extend(coders["deployment"].code(r[1] for r, _ in kept))
    cols["site"].extend(coders["site"].code(r[2] for r, _ in kept))
    cols["model"].extend(coders["model"].code(f"{r[3]} {r[4]}" for r, _ in kept))
    cols["mode"].extend(coders["mode"].code(r[5] for r, _ in kept))
    feature_rows = []
    for row, _ in kept:
        if row[13] is None:  # no index row for the scored image: the features stored with the prediction
            try:
                f = json.loads(row[11] or "{}")
            except ValueError:
                f = {}
            feature_rows.append(
                tuple(f.get(k) for k in CATEGORICAL_FEATURES) + tuple(f.get(k) for k in NUMERIC_FEATURES)
            )
        else:
            feature_rows.append(row[14:])
    for i, name in enumerate(CATEGORICAL_FEATURES):
        cat[name].extend(coders[name].code(fr[i] for fr in feature_rows))
    for j, name in enumerate(NUMERIC_FEATURES):
        num[name].extend(_number(fr[n_cat + j]) for fr in feature_rows)


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
