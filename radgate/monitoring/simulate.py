"""Simulated monitoring data: a planned synthetic site's index, predictions and labels, written directly.

For tests and benchmarks that need many months quickly. :func:`simulate_site` plans a site with
:func:`radgate.synth.site.plan_site` (dates, vendor profiles per month, patients, pneumothorax labels) and
writes, without rendering a pixel, what the gateway would have stored: a ``studies`` row with the
StudyDate, an ``instances`` row with the profile's header values for the scored image, a ``predictions``
row, and a ``ground_truth`` row available ``label_lag_days`` after the study. Scores follow a binormal model
per vendor profile (``ScoreModel``: AUC and a logit shift; the default makes the agfa-dx room of the demo
site both less discriminating and more often flagged), so the known truth of each month is set by the
scenario. This is a simulation of a model's behaviour, not the bundled model's output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps
from sqlalchemy import insert
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.db import Database
from radgate.db.schema import Instance, Study
from radgate.engine.tables import Prediction
from radgate.synth.profiles import PROFILES
from radgate.synth.scenario import Scenario
from radgate.synth.site import plan_site
from radgate.validation.tables import GroundTruth

__all__ = ["DEFAULT_SCORE_MODELS", "ScoreModel", "SimulatedSite", "simulate_site", "write_cases"]


@dataclass(frozen=True)
class ScoreModel:
    """Binormal scores on the logit scale: negatives N(mu, 1), positives N(mu + d', 1), d' = √2 Φ⁻¹(AUC)."""

    auc: float = 0.90
    shift: float = 0.0  # added to every logit (a vendor whose images the model finds more suspicious)


DEFAULT_SCORE_MODELS: dict[str, ScoreModel] = {name: ScoreModel(0.90) for name in PROFILES} | {
    "agfa-dx": ScoreModel(0.78, 0.8)
}


@dataclass
class SimulatedSite:
    studies: int
    positives: int
    first_study_by_profile: dict[str, dt.date]
    deployment: str
    site: str
    months: list[str] = field(default_factory=list)


def _uid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return f"2.25.{int(digest[:32], 16)}"


def write_cases(
    db: Database,
    *,
    deployment: str,
    site: str,
    dates: list[dt.date],
    profiles: list[str],
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    ages: np.ndarray,
    sexes: list[str],
    views: list[str],
    label_lag_days: int = 30,
    model: tuple[str, str] = ("demo-ptx", "1.0.0"),
    mode: str = "live",
    modes: list[str] | None = None,
    key: str = "sim",
    batch: int = 20_000,
) -> None:
    """Write one study, one scored instance, one prediction and one label per case (bulk inserts)."""
    now = utcnow().replace(tzinfo=None)
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    n = len(dates)
    for start in range(0, n, batch):  # one transaction per batch (a million rows would make a huge WAL)
        with db.session() as s:
            rows = range(start, min(n, start + batch))
            studies, instances, predictions, truth = [], [], [], []
            for i in rows:
                p = PROFILES[profiles[i]]
                study, series, sop = _uid(key, i), _uid(key, i, 1), _uid(key, i, 1, 1)
                day = dates[i]
                studies.append(
                    {
                        "StudyInstanceUID": study,
                        "StudyDate": day.strftime("%Y%m%d"),
                        "status": "complete",
                        "num_instances": 1,
                        "first_received": now,
                        "last_received": now,
                        "reopened_count": 0,
                    }
                )
                kvp = float(np.round(rng.uniform(*p.kvp)))
                features = {
                    "Manufacturer": p.manufacturer,
                    "ManufacturerModelName": p.model_name,
                    "SoftwareVersions": p.software_versions,
                    "StationName": p.station_name,
                    "InstitutionName": "Synthetic General Hospital",
                    "Modality": p.modality,
                    "BodyPartExamined": "CHEST",
                    "ViewPosition": views[i],
                    "PhotometricInterpretation": p.photometric,
                    "BitsStored": p.bits_stored,
                    "Rows": p.rows,
                    "Columns": p.columns,
                    "PixelSpacing": p.pitch_mm,
                    "KVP": kvp,
                    "PatientAge": float(ages[i]),
                    "PatientSex": sexes[i],
                }
                instances.append(
                    {
                        "SOPInstanceUID": sop,
                        "revision": 1,
                        "SOPClassUID": p.sop_class_uid,
                        "StudyInstanceUID": study,
                        "SeriesInstanceUID": series,
                        "InstanceNumber": 1,
                        "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                        "path": f"{study}/{series}/{sop}.dcm",
                        "size": 0,
                        "sha256": "0" * 64,
                        "received_at": now,
                        "source": "import",
                        "pixel_status": "ok",
                        **features,
                    }
                )
                score = float(scores[i])
                predictions.append(
                    {
                        "job_id": None,  # simulated: no engine job
                        "StudyInstanceUID": study,
                        "SeriesInstanceUID": series,
                        "SOPInstanceUID": sop,
                        "deployment": deployment,
                        "site": site,
                        "model_name": model[0],
                        "model_version": model[1],
                        "model_sha256": "0" * 64,
                        "mode": modes[i] if modes is not None else mode,
                        "score": score,
                        "flag": score >= threshold,
                        "scores": json.dumps({"pneumothorax": score}),
                        "flags": json.dumps({"default": score >= threshold}),
                        "features": json.dumps(features),
                        "num_images": 1,
                        "queue_wait_ms": 0.0,
                        "decode_ms": 0.0,
                        "preprocess_ms": 0.0,
                        "inference_ms": 0.0,
                        "postprocess_ms": 0.0,
                        "created_at": dt.datetime.combine(day, dt.time(12)),
                        # the policy's decision, as the engine stores it (radgate.policy.service)
                        "used_instances": json.dumps([sop]),
                        "policy": _release(modes[i] if modes is not None else mode),
                        "policy_reason": "simulated",
                        "operating_point": "default",
                        "threshold": threshold,
                        "threshold_source": "model operating point",
                        "urgency": 0.0,
                        "findings": "[]",
                    }
                )
                truth.append(
                    {
                        "StudyInstanceUID": study,
                        "SeriesInstanceUID": None,
                        "label": int(labels[i]),
                        "source": "synthetic",
                        "reference_date": day + dt.timedelta(days=label_lag_days),
                        "imported_at": now,
                        "origin": "radgate.monitoring.simulate",
                    }
                )
            for table, rows_ in (
                (Study, studies),
                (Instance, instances),
                (Prediction, predictions),
                (GroundTruth, truth),
            ):
                _insert(s, table, rows_)


def _sqlite_value(value: object) -> object:
    """A value as SQLAlchemy's SQLite dialect stores it (so the ORM reads it back unchanged)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool | np.bool_):
        return int(value)
    return value


def _release(mode: str) -> str:
    return "released" if mode == "live" else mode


def _insert(session: Session, table: type, rows: Sequence[Mapping[str, object]]) -> None:
    """Bulk insert; on SQLite through the driver's executemany (the ORM's per-value processing would
    dominate a million-row benchmark), elsewhere through SQLAlchemy Core."""
    if not rows:
        return
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    sql = f"INSERT INTO {table.__tablename__} ({', '.join(chr(34) + n + chr(34) for n in names)}) "  # type: ignore[attr-defined]
    sql += f"VALUES ({', '.join('?' for _ in names)})"
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(sql, [tuple(_sqlite_value(r[n]) for n in names) for r in rows])


def binormal_scores(
    rng: np.random.Generator, labels: np.ndarray, profiles: list[str], models: Mapping[str, ScoreModel]
) -> np.ndarray:
    """Scores in (0, 1): expit of the binormal logit of each case's profile."""
    auc = np.array([models.get(p, ScoreModel()).auc for p in profiles])
    shift = np.array([models.get(p, ScoreModel()).shift for p in profiles])
    d = np.sqrt(2.0) * sps.norm.ppf(auc)
    logit = rng.normal(-2.0, 1.0, labels.size) + shift + d * labels
    return 1.0 / (1.0 + np.exp(-logit))


def simulate_site(
    db: Database,
    scenario: Scenario,
    seed: int = 0,
    deployment: str = "demo-ptx",
    site: str | None = None,
    models: Mapping[str, ScoreModel] | None = None,
    threshold: float = 0.3,
    label_lag_days: int = 30,
    silent_until: dt.date | None = None,
) -> SimulatedSite:
    """Plan ``scenario`` and write its simulated predictions and labels (see the module docstring).

    ``silent_until``: cases acquired before this date are stored as silent-mode predictions (the go-live
    validation); record the go-live itself with a ``deployment_changes`` row if the test needs one.
    """
    plans = plan_site(scenario, seed)
    rng = np.random.default_rng(seed + 1)
    labels = np.array([p.pneumothorax is not None for p in plans], dtype=np.int8)
    profiles = [p.profile for p in plans]
    dates = [p.study_datetime.date() for p in plans]
    scores = binormal_scores(rng, labels, profiles, models or DEFAULT_SCORE_MODELS)
    first: dict[str, dt.date] = {}
    for day, prof in zip(dates, profiles, strict=True):
        first.setdefault(prof, day)
    name = site or scenario.name
    write_cases(
        db,
        deployment=deployment,
        site=name,
        dates=dates,
        profiles=profiles,
        labels=labels,
        scores=scores,
        threshold=threshold,
        ages=np.array([p.patient.age for p in plans], dtype=float),
        sexes=[p.patient.PatientSex for p in plans],
        views=[p.series[0].instances[0].view for p in plans],
        label_lag_days=label_lag_days,
        modes=None if silent_until is None else ["silent" if d < silent_until else "live" for d in dates],
        key=f"{scenario.name}/{seed}/{deployment}",
    )
    months = sorted({f"{d:%Y-%m}" for d in dates})
    return SimulatedSite(len(plans), int(labels.sum()), first, deployment, name, months)


def simulate_bulk(
    db: Database,
    n: int,
    start: dt.date = dt.date(2024, 1, 1),
    months: int = 24,
    mix: Mapping[str, float] | None = None,
    seed: int = 0,
    prevalence: float = 0.15,
    deployment: str = "bulk-ptx",
    site: str = "bulk-site",
    threshold: float = 0.3,
) -> None:
    """``n`` simulated cases spread evenly over ``months`` with a fixed vendor ``mix`` (no planning step:
    for volume benchmarks, where :func:`simulate_site`'s per-study planning would dominate)."""
    rng = np.random.default_rng(seed)
    mix = mix or {"ge-dx": 0.6, "fuji-cr": 0.1, "carestream-portable": 0.3}
    names = sorted(mix)
    weights = np.array([mix[k] for k in names], float)
    end = (np.datetime64(start, "M") + months).astype("datetime64[D]")
    span = int((end - np.datetime64(start, "D")).astype(int))
    offsets = np.sort(rng.integers(0, span, n))
    dates = [start + dt.timedelta(days=int(d)) for d in offsets]
    profiles = [names[i] for i in rng.choice(len(names), size=n, p=weights / weights.sum())]
    labels = (rng.random(n) < prevalence).astype(np.int8)
    scores = binormal_scores(rng, labels, profiles, DEFAULT_SCORE_MODELS)
    write_cases(
        db,
        deployment=deployment,
        site=site,
        dates=dates,
        profiles=profiles,
        labels=labels,
        scores=scores,
        threshold=threshold,
        ages=np.clip(rng.normal(58, 18, n), 1, 99).round(),
        sexes=["F" if x else "M" for x in rng.random(n) < 0.48],
        views=["AP" if PROFILES[p].portable else "PA" for p in profiles],
        key=f"bulk/{seed}/{deployment}",
    )
