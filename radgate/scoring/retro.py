"""``radgate score``: a model version over a folder, a study list or everything since a date, on Ray Data.

The pipeline: Ray Data reads the instance list; parallel tasks read each header, route the instance against
the model's intended use (:func:`radgate.routing.deployment.intended_use_rules`, as the gateway does per
instance), decode the pixel data through the one guarded decoder and preprocess it with the gateway's own
functions (:func:`radgate.imaging.decode.read_dataset`, :func:`~radgate.imaging.decode.decode_pixels`,
:func:`radgate.imaging.to_display`, :func:`radgate.inference.preprocess.to_tensor`); an actor pool runs
ONNX Runtime (one session per actor; a GPU per actor when CUDA is present and Ray has GPUs) and reads the
scores with :meth:`radgate.inference.model.LoadedModel.scores` (a site's calibration included). The driver
groups the instances by series in the gateway's order (InstanceNumber), keeps the first
``inference.max_images_per_series`` that fit, and lets :func:`radgate.policy.decide` aggregate them, so a
series scores exactly what the gateway stores for it.

Output: a Parquet file, one row per series (:data:`PARQUET_COLUMNS`); with ``into_db`` also predictions in
mode and policy ``retrospective`` (deployment ``retro:MODEL:VERSION``): never sent (no publish intent), never
shown (the worklist shows released and withheld predictions only).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid

__all__ = ["PARQUET_COLUMNS", "RETROSPECTIVE", "ScoreReport", "ScoreRequest", "SeriesScore", "score"]

log = logging.getLogger(__name__)

RETROSPECTIVE = "retrospective"
#: Ray CPUs an ONNX Runtime actor asks for (half a core: a one-CPU Ray still runs tasks beside it; an actor
#: holding a whole CPU would starve the tasks that feed it) and each decode task asks for. The two differ,
#: so Ray Data keeps decoding in its own parallel tasks instead of fusing it into the actors.
ACTOR_CPUS = 0.5
DECODE_CPUS = 0.25
PARQUET_COLUMNS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "model",
    "model_version",
    "score",
    "flag",
    "used_instances",
)
_KEEP = (
    "path",
    "status",
    "reason",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "features",
)


@dataclass(frozen=True)
class ScoreRequest:
    model: str
    version: str
    out: Path
    folder: Path | None = None
    study_list: Path | None = None
    since: date | None = None
    into_db: bool = False
    ray_address: str | None = None
    actors: int = 1
    """ONNX Runtime actors (one session each)."""
    batch_size: int = 16
    num_cpus: int | None = None
    """For a local Ray started here (None: Ray's default, every core)."""

    def __post_init__(self) -> None:
        given = [x for x in (self.folder, self.study_list, self.since) if x is not None]
        if len(given) != 1:
            raise Invalid("give exactly one of --folder DIR, --study-list FILE or --since DATE")
        if self.actors < 1 or self.batch_size < 1:
            raise Invalid("--actors and --batch-size must be at least 1")


@dataclass(frozen=True)
class SeriesScore:
    StudyInstanceUID: str
    SeriesInstanceUID: str
    score: float
    flag: bool
    used_instances: tuple[str, ...]
    decision: Any  # radgate.policy.Decision
    scores: dict[str, float]
    features: dict[str, Any]


@dataclass
class ScoreReport:
    out: Path
    instances: int = 0
    series: list[SeriesScore] = field(default_factory=list)
    not_applicable: int = 0  # instances outside the model's intended use
    unreadable: list[str] = field(default_factory=list)  # "path: reason"
    series_without_fitting_image: int = 0
    stored: int = 0  # predictions written (--into-db)
    already_stored: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [
            f"Scored {len(self.series)} series ({self.instances} instances) in {self.seconds:.1f} s; "
            f"wrote {self.out}.",
        ]
        if self.not_applicable:
            out.append(f"{self.not_applicable} instance(s) outside the model's intended use were not scored.")
        if self.series_without_fitting_image:
            out.append(f"{self.series_without_fitting_image} series had no image that fits or decodes.")
        if self.unreadable:
            first = self.unreadable[0]
            out.append(f"{len(self.unreadable)} file(s) could not be read or decoded: {first} ...")
        if self.stored or self.already_stored:
            out.append(
                f"Stored {self.stored} retrospective prediction(s) ({self.already_stored} already stored); "
                "they are never sent and never shown."
            )
        return out


def deployment_name(model: str, version: str) -> str:
    """The ``predictions.deployment`` of retrospective scores (not a deployment: nothing routes to it)."""
    return f"retro:{model}:{version}"[:64]


# -- inputs ---------------------------------------------------------------------------------------------


def _study_uids(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"--study-list {path}: {exc.strerror or exc}") from exc
    uids = [line.split(",")[0].strip() for line in text.splitlines()]
    uids = [u for u in uids if u and not u.startswith("#") and u != "StudyInstanceUID"]
    if not uids:
        raise Invalid(f"--study-list {path} names no StudyInstanceUID (one a line)")
    return uids


def select_inputs(settings: Settings, db: Database | None, request: ScoreRequest) -> list[dict[str, str]]:
    """The instance files to read: a folder's files, or the index's newest revisions of the named studies
    (or of the studies acquired since a date)."""
    if request.folder is not None:
        from radgate.ingest.folder import iter_files

        if not request.folder.is_dir():
            raise Invalid(f"--folder {request.folder} is not a folder")
        return [{"path": str(p)} for p in iter_files([request.folder])]
    if db is None:
        raise Invalid("--study-list and --since read the index: give --data-dir")
    from sqlalchemy import select

    from radgate.db.queries import newest_instances
    from radgate.db.schema import Instance, Study

    with db.session() as s:
        query = newest_instances(None)
        if request.study_list is not None:
            query = query.where(Instance.StudyInstanceUID.in_(_study_uids(request.study_list)))
        else:
            assert request.since is not None
            since = request.since.strftime("%Y%m%d")
            studies = select(Study.StudyInstanceUID).where(Study.StudyDate >= since)
            query = query.where(Instance.StudyInstanceUID.in_(studies))
        # keys in the instance store: each task opens its own (a file, or an object read through the cache)
        return [{"path": i.path} for i in s.scalars(query)]


# -- Ray tasks ------------------------------------------------------------------------------------------


def prepare_batch(
    batch: dict[str, np.ndarray],
    prep: Any,
    rules: Sequence[Any],
    max_bytes: int,
    store: dict[str, Any] | None = None,
    data_dir: str = "",
) -> dict[str, np.ndarray]:
    """Read, route, decode and preprocess each file of ``batch["path"]`` (a Ray Data task).

    ``store`` (the ``[store]`` section, for inputs from the index): the paths are keys in that instance
    store, opened from the task's machine; without it they are files."""
    from radgate.imaging import to_display
    from radgate.imaging.decode import DecodeError, decode_pixels, read_dataset
    from radgate.inference.preprocess import to_tensor
    from radgate.routing.features import features_from_dataset
    from radgate.routing.router import evaluate_rules

    rows: dict[str, list[Any]] = {k: [] for k in _KEEP}
    tensors: list[np.ndarray] = []
    empty = np.zeros((prep.channels, prep.height, prep.width), dtype=np.float32)
    blobs = None
    if store is not None:
        from radgate.config import StoreSettings
        from radgate.storage import open_blobs

        blobs = open_blobs(StoreSettings.model_validate(store), Path(data_dir))
    for raw in batch["path"]:
        path = str(raw)
        row: dict[str, Any] = dict.fromkeys(_KEEP, "")
        row.update(path=path, InstanceNumber=-1, features="{}")
        tensor = empty
        try:
            ds = read_dataset(blobs.local_path(path) if blobs is not None else Path(path))
            row["StudyInstanceUID"] = str(ds.get("StudyInstanceUID", ""))
            row["SeriesInstanceUID"] = str(ds.get("SeriesInstanceUID", ""))
            row["SOPInstanceUID"] = str(ds.get("SOPInstanceUID", ""))
            number = ds.get("InstanceNumber")
            row["InstanceNumber"] = int(number) if number not in (None, "") else -1
            features = features_from_dataset(ds)
            row["features"] = json.dumps(features, default=str)
            fits, why = evaluate_rules(rules, features)
            if not fits:
                row.update(status="not_applicable", reason=why)
            else:
                decode_pixels(ds, max_bytes=max_bytes)
                tensor = to_tensor(to_display(ds, max_bytes=max_bytes), prep)
                row.update(status="ok")
        except (DecodeError, ValueError, OSError, AttributeError, TypeError) as exc:
            row.update(status="unreadable", reason=f"{type(exc).__name__}: {exc}")
        for k in _KEEP:
            rows[k].append(row[k])
        tensors.append(tensor)
    out = {k: np.array(v, dtype=object) for k, v in rows.items()}
    out["InstanceNumber"] = np.array(rows["InstanceNumber"], dtype=np.int64)
    out["tensor"] = np.stack(tensors) if tensors else np.zeros((0, *empty.shape), dtype=np.float32)
    return out


class OnnxScorer:
    """A Ray actor: one ONNX Runtime session of the model, scoring the batches' decoded images."""

    def __init__(
        self, package_path: str, sha256: str, intra_op_threads: int, providers: tuple[str, ...]
    ) -> None:
        from radgate.inference.model import LoadedModel
        from radgate.inference.runtime import RuntimeOptions
        from radgate.models.package import ModelPackage

        package = ModelPackage.open(Path(package_path))
        if package.manifest.weights.sha256 != sha256:
            raise RuntimeError(f"model package {package_path} is not the registered one")
        options = RuntimeOptions(providers=providers, intra_op_threads=intra_op_threads)
        self.model = LoadedModel.load(package, options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.array([s == "ok" for s in batch["status"]], dtype=bool)
        scores = np.array([""] * len(ok), dtype=object)
        if ok.any():
            outputs = self.model.runtime.run(np.ascontiguousarray(batch["tensor"][ok], dtype=np.float32))
            for j, i in enumerate(np.flatnonzero(ok)):
                scores[i] = json.dumps(self.model.scores(outputs, j))
        out = {k: batch[k] for k in _KEEP}
        out["scores"] = scores
        return out


# -- the run ----------------------------------------------------------------------------------------------


def _cuda() -> bool:
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        return False


def _ray(request: ScoreRequest) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise Invalid("radgate score needs Ray: pip install 'radgate[scale]'") from exc
    if not ray.is_initialized():
        if request.ray_address:
            ray.init(address=request.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=request.num_cpus, include_dashboard=False, log_to_driver=False)
    return ray


def score(
    settings: Settings,
    db: Database,
    request: ScoreRequest,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> ScoreReport:
    """Score ``request``'s instances with the installed model version; write the Parquet file (and the
    retrospective predictions)."""
    from radgate.models.registry import get_model, open_model
    from radgate.routing.deployment import intended_use_rules

    start = time.monotonic()
    with db.session() as s:
        installed = get_model(s, request.model, request.version)
    manifest = open_model(installed).manifest
    items = select_inputs(settings, db, request)
    report = ScoreReport(request.out, instances=len(items))
    ray = _ray(request)
    rows: list[dict[str, Any]] = []
    if items:
        gpus = 1 if _cuda() and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        providers = tuple(settings.inference.providers) if gpus else ("CPUExecutionProvider",)
        data = ray.data.from_items(items)
        data = data.map_batches(
            prepare_batch,
            fn_kwargs={
                "prep": manifest.preprocessing,
                "rules": intended_use_rules(manifest.intended_use),
                "max_bytes": settings.ingest.max_decoded_bytes,
                "store": None if request.folder is not None else settings.store.model_dump(),
                "data_dir": str(Path(settings.data_dir).resolve()),
            },
            batch_size=request.batch_size,
            batch_format="numpy",
            num_cpus=DECODE_CPUS,
        )
        data = data.map_batches(
            OnnxScorer,
            fn_constructor_kwargs={
                "package_path": str(installed.path),
                "sha256": installed.sha256,
                "intra_op_threads": settings.inference.intra_op_threads,
                "providers": providers,
            },
            compute=ray.data.ActorPoolStrategy(size=request.actors),
            batch_size=request.batch_size,
            batch_format="numpy",
            num_gpus=gpus,
            num_cpus=ACTOR_CPUS,
        )
        done = 0
        for batch in data.iter_batches(batch_size=request.batch_size, batch_format="numpy"):
            n = len(batch["path"])
            rows.extend({k: batch[k][i] for k in (*_KEEP, "scores")} for i in range(n))
            done += n
            progress(done, len(items))
    _aggregate(settings, manifest, rows, report)
    _write_parquet(request, report)
    if request.into_db:
        _store(settings, db, installed, request, report)
    report.seconds = time.monotonic() - start
    return report


def _aggregate(settings: Settings, manifest: Any, rows: list[dict[str, Any]], report: ScoreReport) -> None:
    from radgate.policy import InstanceScores, Mode, PolicyContext, decide
    from radgate.policy.decision import choose_operating_point
    from radgate.policy.enum import IncidentalRule
    from radgate.policy.subgroups import ValidatedSubgroups

    op, source = choose_operating_point(manifest, None)
    ctx = PolicyContext(
        deployment=RETROSPECTIVE,
        site=settings.site,
        mode=Mode.SILENT,
        manifest=manifest,
        operating_point=op,
        threshold_source=source,
        declared_findings=frozenset(f.name for f in manifest.findings),
        incidental=IncidentalRule.REVIEW_ONLY,
        subgroups=ValidatedSubgroups.build(manifest.validated_subgroups, []),
    )
    series: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        if row["status"] == "unreadable":
            report.unreadable.append(f"{row['path']}: {row['reason']}")
            continue
        if row["status"] == "not_applicable":
            report.not_applicable += 1
        # a later file of the same SOP Instance UID is its newer revision, as in the index
        series[str(row["SeriesInstanceUID"])][str(row["SOPInstanceUID"])] = row
    limit = settings.inference.max_images_per_series
    for uid, by_sop in sorted(series.items()):
        fitting = [r for r in by_sop.values() if r["status"] == "ok"]
        # the gateway's order: InstanceNumber (missing last), then arrival
        fitting.sort(key=lambda r: (int(r["InstanceNumber"]) < 0, int(r["InstanceNumber"])))
        fitting = fitting[:limit]
        if not fitting:
            report.series_without_fitting_image += 1
            continue
        per_instance = [
            InstanceScores(
                str(r["SOPInstanceUID"]), json.loads(str(r["scores"])), json.loads(str(r["features"]))
            )
            for r in fitting
        ]
        decision = decide(ctx, per_instance)
        best = next(p for p in per_instance if p.SOPInstanceUID == decision.SOPInstanceUID)
        report.series.append(
            SeriesScore(
                StudyInstanceUID=str(fitting[0]["StudyInstanceUID"]),
                SeriesInstanceUID=uid,
                score=decision.score,
                flag=decision.flag,
                used_instances=decision.used_instances,
                decision=decision,
                scores=dict(best.scores),
                features=dict(best.features),
            )
        )


def _write_parquet(request: ScoreRequest, report: ScoreReport) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "StudyInstanceUID": pa.array([s.StudyInstanceUID for s in report.series], pa.string()),
            "SeriesInstanceUID": pa.array([s.SeriesInstanceUID for s in report.series], pa.string()),
            "model": pa.array([request.model] * len(report.series), pa.string()),
            "model_version": pa.array([request.version] * len(report.series), pa.string()),
            "score": pa.array([s.score for s in report.series], pa.float64()),
            "flag": pa.array([s.flag for s in report.series], pa.bool_()),
            "used_instances": pa.array(
                [list(s.used_instances) for s in report.series], pa.list_(pa.string())
            ),
        }
    )
    request.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, request.out)


def _store(
    settings: Settings, db: Database, installed: Any, request: ScoreRequest, report: ScoreReport
) -> None:
    from sqlalchemy import select

    from radgate.clock import utcnow
    from radgate.engine.tables import Prediction
    from radgate.policy.enum import Release
    from radgate.policy.service import decision_columns

    name = deployment_name(request.model, request.version)
    now = utcnow()
    with db.session() as s:
        existing = set(s.scalars(select(Prediction.SeriesInstanceUID).where(Prediction.deployment == name)))
        for item in report.series:
            if item.SeriesInstanceUID in existing:
                report.already_stored += 1
                continue
            columns = decision_columns(item.decision)
            columns.update(
                mode=RETROSPECTIVE,
                policy=Release.RETROSPECTIVE.value,
                policy_reason="retrospective scoring (radgate score): never sent, never shown",
                urgency=0.0,
            )
            s.add(
                Prediction(
                    job_id=None,  # no job: scored in a batch, outside the engine's queue
                    StudyInstanceUID=item.StudyInstanceUID,
                    SeriesInstanceUID=item.SeriesInstanceUID,
                    deployment=name,
                    site=settings.site,
                    model_name=request.model,
                    model_version=request.version,
                    model_sha256=installed.sha256,
                    scores=json.dumps(item.scores),
                    features=json.dumps(item.features, default=str),
                    num_images=len(item.used_instances),
                    queue_wait_ms=0.0,
                    decode_ms=0.0,
                    preprocess_ms=0.0,
                    inference_ms=0.0,
                    postprocess_ms=0.0,
                    end_to_end_ms=None,
                    created_at=now,
                    **columns,
                )
            )
            report.stored += 1
