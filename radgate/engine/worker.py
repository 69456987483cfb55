"""The engine: workers that claim jobs, run the model on each series, store one result per model version.

One pass (:meth:`Engine.run_once`) claims up to ``batch_size`` jobs of one model version, decodes and
preprocesses their images, runs them through the model as one batch, and stores each result with its
latency per stage. A heartbeat keeps the leases alive while a batch runs; a worker that dies stops the
heartbeat, its leases expire, and another worker takes the jobs over (:mod:`radgate.engine.queue`).

``Engine(settings, db).start()`` runs ``inference.workers`` worker threads in the process (the server does
this); ``stop()`` lets them finish their current batch. Tests and the benchmark call ``run_once``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db.engine import Database
from radgate.engine.queue import (
    JOBS,
    JOBS_QUEUED,
    ClaimedJob,
    EnqueueHook,
    claim_jobs,
    extend_leases,
    finish_job,
    reap_expired,
    release_job,
    series_instances,
)
from radgate.engine.sink import ResultSink
from radgate.engine.tables import Job, Prediction
from radgate.imaging import to_display
from radgate.imaging.decode import FATAL_EXCEPTIONS, DecodeError, decode_pixels, read_dataset
from radgate.inference.cache import TensorCache, preprocessing_signature
from radgate.inference.model import LoadedModel, RuntimeFactory, onnx_runtime_factory
from radgate.inference.preprocess import to_tensor
from radgate.inference.runtime import ModelLoadError, RuntimeOptions
from radgate.models.package import PackageError
from radgate.models.registry import (
    InstalledModel,
    RegistryError,
    ensure_default_models,
    get_model,
    open_model,
)
from radgate.monitoring.imagestats import record_image_statistics
from radgate.policy import InstanceScores, Mode, PolicyContext, decide
from radgate.policy.service import decision_columns, policy_context
from radgate.policy.tables import PublishIntent
from radgate.routing.deployment import (
    Deployment,
    DeploymentError,
    DeploymentSpec,
    get_deployment,
    sync_deployments,
)
from radgate.routing.features import FEATURE_KEYWORDS
from radgate.storage import blobs_for

__all__ = ["PUBLISH_QUEUED", "Engine", "EngineOptions", "InputError"]

log = logging.getLogger(__name__)


#: Set when a transaction that recorded publish intents commits: the results worker builds them at once.
PUBLISH_QUEUED = threading.Event()


class InputError(ValueError):
    """A series cannot be run through the model, and retrying will not change that."""


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs (from ``[inference]`` in the config)."""

    workers: int = 1
    batch_size: int = 8
    lease_s: float = 60.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    poll_interval_s: float = 0.5
    max_images_per_series: int = 32
    explanations: bool = True
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.batch_size < 1 or self.max_attempts < 1 or self.max_images_per_series < 1:
            raise ValueError(
                f"workers ({self.workers}), batch_size ({self.batch_size}), "
                f"max_attempts ({self.max_attempts}) and "
                f"max_images_per_series ({self.max_images_per_series}) must all be >= 1."
            )
        if self.lease_s <= 0 or self.retry_backoff_s < 0 or self.poll_interval_s <= 0:
            raise ValueError(
                f"lease_s ({self.lease_s}) and poll_interval_s ({self.poll_interval_s}) must be > 0 and "
                f"retry_backoff_s ({self.retry_backoff_s}) >= 0."
            )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EngineOptions:
        inference = settings.inference
        values: dict[str, Any] = {
            "workers": inference.workers,
            "batch_size": inference.batch_size,
            "lease_s": inference.lease_s,
            "max_attempts": inference.max_attempts,
            "retry_backoff_s": inference.retry_backoff_s,
            "poll_interval_s": inference.poll_interval_s,
            "max_images_per_series": inference.max_images_per_series,
            "explanations": inference.explanations,
            "runtime": RuntimeOptions.from_settings(inference),
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class _Prepared:
    """One claimed job with its images decoded and preprocessed."""

    job: ClaimedJob
    policy: PolicyContext
    site: str
    SOPInstanceUIDs: list[str]
    features: list[dict[str, Any]]
    tensors: np.ndarray
    decode_ms: float
    preprocess_ms: float
    sha256s: list[str] = field(default_factory=list)  # of the kept images' files (image statistics)


class _Heartbeat(threading.Thread):
    """Extends this worker's leases every third of the lease while a batch runs."""

    def __init__(self, db: Database, worker: str, job_ids: Sequence[int], lease_s: float) -> None:
        super().__init__(name=f"lease-{worker}", daemon=True)
        self.db, self.worker, self.job_ids, self.lease_s = db, worker, list(job_ids), lease_s
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.lease_s / 3):
            try:
                with self.db.session() as s:
                    extend_leases(s, self.worker, self.job_ids, self.lease_s)
            except Exception:  # a missed beat only shortens the lease; never kill the worker for it
                log.exception("lease heartbeat failed for %s", self.worker)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _delta_ms(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else max((later - earlier).total_seconds() * 1000.0, 0.0)


class Engine:
    """The inference engine: job workers over the database queue, and the models they have loaded."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        sinks: Sequence[ResultSink] = (),
        deployments: Sequence[DeploymentSpec] | None = None,
        options: EngineOptions | None = None,
        runtime_factory: RuntimeFactory = onnx_runtime_factory,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.sinks = tuple(sinks)
        self.deployments = deployments
        self.options = options or EngineOptions.from_settings(settings)
        self.runtime_factory = runtime_factory
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._models: dict[tuple[str, str, str], LoadedModel] = {}
        self.tensors = TensorCache(settings.data_dir)
        self._models_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # the supervisor
        self._workers: dict[str, threading.Thread] = {}
        self.restarts = 0  # worker threads replaced after dying

    @property
    def hook(self) -> EnqueueHook:
        """For the assembler (``Assembler(..., hooks=[engine.hook])``): completed series become jobs."""
        return EnqueueHook(self.options.max_attempts)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def bootstrap(self) -> list[str]:
        """Register the bundled models and apply the config's deployments; returns what changed, in words."""
        with self.db.session() as s:
            changes = [f"registered {m.label}" for m in ensure_default_models(s, self.settings.data_dir)]
            if self.deployments is not None:
                changes += sync_deployments(s, self.deployments)
        for change in changes:
            log.info("engine bootstrap: %s", change)
        return changes

    def start(self) -> None:
        """Bootstrap, then run ``options.workers`` worker threads until :meth:`stop`."""
        if self._threads or self._workers:
            raise RuntimeError("Engine already started; call stop() first.")
        self.bootstrap()
        self._stop.clear()
        for i in range(self.options.workers):
            worker = f"{self.worker_id}/{i}"
            self._workers[worker] = self._spawn(worker, i)
        supervisor = threading.Thread(target=self._supervise, name="radgate-engine-supervisor", daemon=True)
        supervisor.start()
        self._threads = [supervisor]

    def _spawn(self, worker: str, index: int) -> threading.Thread:
        thread = threading.Thread(
            target=self._loop, args=(worker,), name=f"radgate-engine-{index}", daemon=True
        )
        thread.start()
        return thread

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the workers to stop after their current batch and wait for them."""
        self._stop.set()
        JOBS_QUEUED.set()  # wake idle workers so they see the stop now
        for thread in [*self._threads, *self._workers.values()]:
            thread.join(timeout_s)
        self._threads = []
        self._workers = {}

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._workers.values())

    def _loop(self, worker: str) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once(worker)
            except FATAL_EXCEPTIONS:
                raise
            except BaseException:  # noqa: BLE001 - a native panic is a BaseException; the loop survives it
                log.exception("engine worker %s: pass failed", worker)
                self._requeue(worker)
                done = 0
            if done == 0:
                JOBS_QUEUED.wait(self.options.poll_interval_s)
                JOBS_QUEUED.clear()

    def _requeue(self, worker: str) -> None:
        """Put the jobs ``worker`` still holds back in the queue now (not when their leases expire)."""
        try:
            with self.db.session() as s:
                n = JOBS.abandon(s, worker)
            if n:
                log.warning("engine worker %s: %d job(s) it held are queued again", worker, n)
        except Exception:  # the database is away: the leases expire and another worker takes them
            log.exception("engine worker %s: could not requeue its jobs", worker)

    def _supervise(self) -> None:
        """Notice a worker thread that died for any reason, requeue its jobs and start a replacement."""
        while not self._stop.wait(self.options.poll_interval_s):
            for i, (name, thread) in enumerate(list(self._workers.items())):
                if thread.is_alive() or self._stop.is_set():
                    continue
                log.error("engine worker %s died; its jobs are queued again and a new worker starts", name)
                self._requeue(name)
                self.restarts += 1
                self._workers[name] = self._spawn(name, i)

    def run_until_idle(self, timeout_s: float = 60.0) -> int:
        """Run passes until no job is queued or running (or ``timeout_s``); returns the jobs claimed."""
        deadline = time.monotonic() + timeout_s
        total = 0
        while time.monotonic() < deadline:
            done = self.run_once()
            total += done
            if done == 0:
                with self.db.session() as s:
                    pending = s.scalar(
                        select(func.count(Job.id)).where(Job.status.in_(("queued", "running")))
                    )
                if not pending:
                    break
                time.sleep(self.options.poll_interval_s)  # jobs waiting out a backoff, or run elsewhere
        return total

    # -- one pass -----------------------------------------------------------------------------------------

    def run_once(self, worker: str | None = None) -> int:
        """Claim one batch of jobs and run it; returns how many jobs were claimed (0: nothing to do)."""
        worker = worker or self.worker_id
        opts = self.options
        with self.db.session() as s:
            reaped = reap_expired(s)
            jobs = claim_jobs(s, worker, opts.batch_size, opts.lease_s, max_attempts=opts.max_attempts)
        if reaped:
            log.warning("failed %d job(s) whose worker died on their last attempt", reaped)
        if not jobs:
            return 0
        heartbeat = _Heartbeat(self.db, worker, [j.id for j in jobs], opts.lease_s)
        heartbeat.start()
        try:
            self._run_batch(worker, jobs)
        finally:
            heartbeat.halt.set()
            heartbeat.join()
        return len(jobs)

    def _load(self, installed: InstalledModel) -> LoadedModel:
        key = (installed.name, installed.version, installed.sha256)
        with self._models_lock:
            model = self._models.get(key)
            if model is None:
                model = LoadedModel.load(open_model(installed), self.options.runtime, self.runtime_factory)
                self._models[key] = model
            return model

    def _fail(self, worker: str, job: ClaimedJob, error: str, permanent: bool) -> None:
        with self.db.session() as s:
            status = release_job(s, job, worker, error, self.options.retry_backoff_s, permanent=permanent)
        log.warning(
            "job %d (series %s, %s %s) attempt %d: %s -> %s",
            job.id,
            job.SeriesInstanceUID,
            job.model_name,
            job.model_version,
            job.attempts,
            error,
            status,
        )

    def _run_batch(self, worker: str, jobs: list[ClaimedJob]) -> None:
        name, version = jobs[0].model_name, jobs[0].model_version
        runnable: list[tuple[ClaimedJob, PolicyContext]] = []
        installed: InstalledModel | None = None
        load_error = ""
        with self.db.session() as s:
            for job in jobs:
                deployment: Deployment | None
                try:
                    deployment = get_deployment(s, job.deployment)
                except DeploymentError:
                    deployment = None
                if deployment is None or deployment.mode == Mode.OFF:
                    why = (
                        "deployment removed" if deployment is None else "deployment turned off before it ran"
                    )
                    finish_job(s, job.id, worker, status="cancelled", error=why)
                    log.info("job %d cancelled: %s", job.id, why)
                else:
                    runnable.append((job, policy_context(s, deployment)))
            try:
                installed = get_model(s, name, version)
            except RegistryError as exc:
                load_error = str(exc)
        if not runnable:
            return
        model: LoadedModel | None = None
        if installed is not None:
            try:
                model = self._load(installed)
            except (PackageError, ModelLoadError) as exc:
                load_error = str(exc)
        if model is None:
            for job, _ in runnable:
                self._fail(worker, job, load_error, permanent=True)
            return

        prepared: list[_Prepared] = []
        for job, ctx in runnable:
            try:
                prepared.append(self._prepare(job, ctx, model))
            except InputError as exc:
                self._fail(worker, job, str(exc), permanent=True)
            except Exception as exc:
                self._fail(worker, job, f"{type(exc).__name__}: {exc}", permanent=False)
        if not prepared:
            return

        start = time.perf_counter()
        try:
            outputs = model.runtime.run(np.concatenate([p.tensors for p in prepared], axis=0))
        except Exception as exc:
            for p in prepared:
                self._fail(worker, p.job, f"inference failed: {type(exc).__name__}: {exc}", permanent=False)
            return
        inference_ms = _ms(start)

        offset = 0
        for p in prepared:
            count = len(p.tensors)
            try:
                self._store(
                    worker,
                    p,
                    model,
                    {k: v[offset : offset + count] for k, v in outputs.items()},
                    inference_ms,
                )
            except Exception as exc:
                self._fail(
                    worker, p.job, f"storing the result failed: {type(exc).__name__}: {exc}", permanent=False
                )
            offset += count

    def _prepare(self, job: ClaimedJob, ctx: PolicyContext, model: LoadedModel) -> _Prepared:
        with self.db.session() as s:
            instances = [
                (i.SOPInstanceUID, i.path, {k: getattr(i, k, None) for k in FEATURE_KEYWORDS}, i.sha256)
                for i in series_instances(s, job.SeriesInstanceUID)
                if getattr(i, "pixel_status", "ok") != "undecodable"
                and (job.instances is None or i.SOPInstanceUID in job.instances)
            ]
        if not instances:
            raise InputError(
                f"series {job.SeriesInstanceUID} has no decodable image in the store that fits the "
                "intended use"
            )
        instances = instances[: self.options.max_images_per_series]
        decode_ms = preprocess_ms = 0.0
        tensors, kept, skipped = [], [], []
        blobs = blobs_for(self.settings)
        prep = model.manifest.preprocessing
        max_bytes = self.settings.ingest.max_decoded_bytes
        for instance in instances:
            sop_uid, rel_path, _, sha256 = instance
            start = time.perf_counter()
            cached = self.tensors.get(prep, sop_uid, sha256)
            if cached is not None:  # rendered while the series was still arriving (TensorPrewarmer)
                tensors.append(cached)
                kept.append(instance)
                preprocess_ms += _ms(start)
                continue
            try:
                # Untrusted pixel data, guarded and bounded: a decoder panic fails this image, not the worker.
                ds = read_dataset(blobs.local_path(rel_path))
                decode_pixels(ds, max_bytes=max_bytes)  # decode now so the decode time is measured apart
                decode_ms += _ms(start)
                start = time.perf_counter()
                display = to_display(ds, max_bytes=max_bytes)
            except (DecodeError, ValueError) as exc:
                skipped.append(f"{sop_uid}: {exc}")
                continue
            tensors.append(to_tensor(display, prep))
            kept.append(instance)
            preprocess_ms += _ms(start)
        if skipped:
            log.warning(
                "job %d: %d image(s) could not be decoded and were left out: %s",
                job.id,
                len(skipped),
                "; ".join(skipped),
            )
        if not kept:
            raise InputError(
                f"no image of series {job.SeriesInstanceUID} could be decoded: {'; '.join(skipped)}"
            )
        return _Prepared(
            job=job,
            policy=ctx,
            site=ctx.site,
            SOPInstanceUIDs=[i[0] for i in kept],
            features=[i[2] for i in kept],
            tensors=np.stack(tensors),
            decode_ms=decode_ms,
            preprocess_ms=preprocess_ms,
            sha256s=[i[3] for i in kept],
        )

    def _store(
        self,
        worker: str,
        p: _Prepared,
        model: LoadedModel,
        outputs: dict[str, np.ndarray],
        inference_ms: float,
    ) -> None:
        job, manifest = p.job, model.manifest
        start = time.perf_counter()
        per_image = [model.scores(outputs, i) for i in range(len(p.tensors))]
        decision = decide(
            p.policy,
            [InstanceScores(uid, scores, feats) for uid, scores, feats in
             zip(p.SOPInstanceUIDs, per_image, p.features, strict=True)],
        )
        best = p.SOPInstanceUIDs.index(decision.SOPInstanceUID)
        explanation_path: str | None = None
        explanation_method: str | None = None
        if self.options.explanations:
            exp = model.explain(outputs, best, p.tensors[best], p.SOPInstanceUIDs[best])
            if exp is not None:
                rel = (
                    Path("explanations")
                    / job.StudyInstanceUID
                    / job.SeriesInstanceUID
                    / (f"{job.deployment}-{job.model_name}-{job.model_version}.npz")
                )
                exp.save(Path(self.settings.data_dir) / rel)
                explanation_path, explanation_method = rel.as_posix(), exp.method
        features = dict(p.features[best])
        postprocess_ms = _ms(start)
        now = utcnow()
        prediction = Prediction(
            job_id=job.id,
            StudyInstanceUID=job.StudyInstanceUID,
            SeriesInstanceUID=job.SeriesInstanceUID,
            deployment=job.deployment,
            site=p.site,
            model_name=job.model_name,
            model_version=job.model_version,
            model_sha256=manifest.weights.sha256,
            scores=json.dumps(per_image[best]),
            explanation_method=explanation_method,
            explanation_path=explanation_path,
            features=json.dumps(features, default=str),
            num_images=len(p.tensors),
            queue_wait_ms=_delta_ms(job.claimed_at, job.enqueued_at) or 0.0,
            decode_ms=p.decode_ms,
            preprocess_ms=p.preprocess_ms,
            inference_ms=inference_ms,
            postprocess_ms=postprocess_ms,
            end_to_end_ms=_delta_ms(now, job.series_completed_at),
            created_at=now,
            **decision_columns(decision),
        )
        try:
            with self.db.session() as s:
                if not finish_job(s, job.id, worker, status="done"):
                    raise _LeaseLostError
                exists = s.scalars(
                    select(Prediction.id).where(
                        Prediction.SeriesInstanceUID == job.SeriesInstanceUID,
                        Prediction.deployment == job.deployment,
                    )
                ).first()
                if exists is not None:
                    log.info(
                        "job %d: a result for series %s / %s is already stored; not storing another",
                        job.id,
                        job.SeriesInstanceUID,
                        job.deployment,
                    )
                    return
                s.add(prediction)
                s.flush()
                if decision.released:
                    # Built and sent after this commit, by the results worker (never inside this transaction).
                    s.add(
                        PublishIntent(
                            prediction_id=prediction.id,
                            deployment=job.deployment,
                            status="queued",
                            attempts=0,
                            max_attempts=self.settings.results.outbox_max_attempts,
                            available_at=now,
                            created_at=now,
                        )
                    )
                    event.listen(s, "after_commit", lambda _s: PUBLISH_QUEUED.set(), once=True)
                for sink in self.sinks:
                    sink.on_result(s, prediction, decision)
        except _LeaseLostError:
            log.warning("job %d: lease lost to another worker; discarding this attempt's result", job.id)
            return
        except IntegrityError:
            # Another worker stored the same (series, deployment) between our check and our insert.
            with self.db.session() as s:
                finish_job(s, job.id, worker, status="done", error=None)
            log.info("job %d: result stored concurrently by another worker; kept that one", job.id)
            return
        log.info(
            "series %s %s (%s %s): score %.3f flag %s, %s (%s)",
            job.SeriesInstanceUID,
            job.deployment,
            job.model_name,
            job.model_version,
            decision.score,
            decision.flag,
            decision.release.value,
            decision.reason,
        )
        # Monitoring's image statistics (input_drift), measured once per image on the model input tensors
        # already in hand, in their own transaction after the result's commit; a failure is logged there.
        record_image_statistics(
            self.db,
            preprocessing_signature(manifest.preprocessing),
            list(zip(p.SOPInstanceUIDs, p.sha256s, p.tensors, strict=False)),
            manifest.preprocessing,
        )


class _LeaseLostError(Exception):
    """This worker's lease passed to another worker before it could store its result."""
