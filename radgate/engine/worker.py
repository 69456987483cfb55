"""The engine: workers that claim jobs, run the model on each series, store one result per model version.

One pass (:meth:`Engine.run_once`) claims up to ``batch_size`` jobs of one model version, decodes and
preprocesses their images, runs them through the model as one batch, and stores each result with its
latency per stage. The engine's heartbeat thread keeps the leases of every running batch alive; a worker
process that dies takes its heartbeat along, its leases expire, and another worker takes the jobs over
(:mod:`radgate.engine.queue`).

``Engine(settings, db).start()`` runs ``inference.workers`` worker threads in the process (the server does
this); ``stop()`` lets them finish their current batch. Tests and the benchmark call ``run_once``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db.engine import Database
from radgate.db.schema import Instance
from radgate.engine.queue import (
    JOBS,
    JOBS_QUEUED,
    Claim,
    ClaimedJob,
    claim_jobs,
    extend_leases,
    finish_job,
    reap_expired,
    release_job,
    route_series,
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
    list_deployments,
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


#: One image of a job, as read from the index: SOPInstanceUID, path in the store, features, file SHA-256.
_Instance = tuple[str, str, dict[str, Any], str]
#: A job ready to run: the job, its deployment's policy, its images.
_Runnable = tuple[ClaimedJob, PolicyContext, list[_Instance]]


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
    """Extends the leases of the batches that run, every third of the lease, for all of an engine's workers.

    One thread for the engine's lifetime, not one per batch: starting a thread costs a scheduling round
    trip (about 10 ms on a loaded 2-core machine) on every series' path. A batch's leases are first
    extended at most a third of the lease after the claim, then every third. Between batches it only
    waits; it touches the database only while some worker holds jobs.
    """

    def __init__(self, db: Database, lease_s: float) -> None:
        super().__init__(name="radgate-engine-lease", daemon=True)
        self.db, self.lease_s = db, lease_s
        self.halt = threading.Event()
        self._held: dict[str, set[int]] = {}
        self._lock = threading.Lock()

    def hold(self, worker: str, job_ids: Sequence[int]) -> None:
        """Keep these jobs' leases alive (beside any others ``worker`` holds) until :meth:`release`."""
        with self._lock:
            self._held.setdefault(worker, set()).update(job_ids)

    def release(self, worker: str, job_ids: Sequence[int]) -> None:
        with self._lock:
            self._held.get(worker, set()).difference_update(job_ids)

    def run(self) -> None:
        while not self.halt.wait(self.lease_s / 3):
            with self._lock:
                held = [(worker, sorted(ids)) for worker, ids in self._held.items() if ids]
            if not held:
                continue
            try:
                with self.db.session() as s:
                    for worker, ids in held:
                        extend_leases(s, worker, ids, self.lease_s)
            except Exception:  # a missed beat only shortens the lease; never kill the worker for it
                log.exception("lease heartbeat failed for %s", ", ".join(w for w, _ in held))


@dataclass(frozen=True)
class _Handed:
    """A job leased to a worker in the transaction that completed its series, with what that transaction
    read for it: the deployment's policy and the images that fit."""

    job: ClaimedJob
    policy: PolicyContext
    instances: list[_Instance]


class _Handoff:
    """Series completed in this process go straight to a worker of its engine that waits idle.

    The engine's hook leases the new jobs to an idle worker inside the transaction that completes the
    series (:class:`~radgate.engine.queue.Claim`) and, once that transaction commits, hands them over in
    memory with what it read; the worker runs them without a claim and without reading them back. A
    rolled-back transaction hands nothing, and the worker is idle again. Workers in other processes, and
    jobs no idle worker could take, go through the queue as before (claim, lease, heartbeat).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[str] = []  # found no work (waiting, or polling the queue), oldest first
        self._inbox: dict[str, list[list[_Handed]]] = {}

    def idle(self, worker: str) -> None:
        with self._lock:
            if worker not in self._idle:
                self._idle.append(worker)

    def busy(self, worker: str) -> None:
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)

    def reserve(self) -> str | None:
        """An idle worker, no longer offered to anyone else until it is idle again; None if none waits."""
        with self._lock:
            return self._idle.pop(0) if self._idle else None

    def deliver(self, worker: str, handed: list[_Handed]) -> None:
        with self._lock:
            self._inbox.setdefault(worker, []).append(handed)
        JOBS_QUEUED.set()  # the worker waits on it

    def take(self, worker: str) -> list[_Handed]:
        """The first batch handed to ``worker`` (one series' jobs of one model version), or none."""
        with self._lock:
            inbox = self._inbox.get(worker)
            if not inbox:
                return []
            if worker in self._idle:
                self._idle.remove(worker)
            return inbox.pop(0)

    def forget(self, worker: str) -> bool:
        """Drop whatever was handed to ``worker`` and not run (it stopped or died); True if anything was."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
            return bool(self._inbox.pop(worker, None))


@dataclass
class _PendingHandoff:
    """Jobs leased to ``worker`` in a transaction not yet ended: handed over on commit, not on rollback."""

    engine: Engine
    worker: str
    handed: list[_Handed]
    ended: bool = False

    def committed(self, _session: Session) -> None:
        if not self.ended:
            self.ended = True
            self.engine._deliver(self.worker, self.handed)

    def rolled_back(self, _session: Session) -> None:
        if not self.ended:
            self.ended = True
            self.engine._handoff.idle(self.worker)


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
        self._heartbeat: _Heartbeat | None = None
        self._heartbeat_lock = threading.Lock()
        self._next_reap = 0.0  # time.monotonic() of the next reap of dead workers' last attempts
        self._handoff = _Handoff()

    @property
    def hook(self) -> _EngineHook:
        """For the assembler (``Assembler(..., hooks=[engine.hook])``): completed series become jobs."""
        return _EngineHook(self)

    def enqueue(self, session: Session, SeriesInstanceUID: str, partial: bool = False) -> list[int]:
        """Route a completed series into jobs inside the caller's transaction (the assembler's hook).

        :func:`~radgate.engine.queue.enqueue_for_series`, except that when a worker of this engine waits
        idle the new jobs are leased to it in this transaction and handed to it when the transaction
        commits (:class:`_Handoff`): no claim and no read-back between completion and inference. Partial
        series (the ``process_partial`` policy) are routed like complete ones; the assembler has already
        recorded why they are partial. Returns the ids of the jobs created.
        """
        worker = None if self._stop.is_set() else self._handoff.reserve()
        opts = self.options
        claim = None if worker is None else Claim(worker, opts.lease_s, opts.batch_size)
        routed = route_series(session, SeriesInstanceUID, opts.max_attempts, claim)
        if worker is None:
            return routed.job_ids
        if not routed.claimed:
            self._handoff.idle(worker)
            return routed.job_ids
        handed = [
            _Handed(job, policy_context(session, deployment), self._fitting(routed.instances, job))
            for job, deployment in routed.claimed
        ]
        pending = _PendingHandoff(self, worker, handed)
        event.listen(session, "after_commit", pending.committed, once=True)
        event.listen(session, "after_rollback", pending.rolled_back, once=True)
        return routed.job_ids

    def _deliver(self, worker: str, handed: list[_Handed]) -> None:
        self._lease_heartbeat().hold(worker, [h.job.id for h in handed])
        self._handoff.deliver(worker, handed)

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
        self._lease_heartbeat()  # started now, not on the first series' path
        self.preload()
        for i in range(self.options.workers):
            worker = f"{self.worker_id}/{i}"
            self._workers[worker] = self._spawn(worker, i)
        supervisor = threading.Thread(target=self._supervise, name="radgate-engine-supervisor", daemon=True)
        supervisor.start()
        self._threads = [supervisor]

    def preload(self) -> list[str]:
        """Load the model of every deployment that is not off, so the first series does not wait for it.

        A model that cannot be loaded is only logged here: its jobs fail with the reason when they run.
        Returns the labels of the models loaded.

        Measured (bench/pipeline.py, DenseNet121): a session created lazily in a worker thread ran about
        14 ms slower per call than the bare session beside it; created here, in the starting thread, the
        engine's inference matches the bare session (noisy 2-core machine; the cause is not pinned down).
        """
        with self.db.session() as s:
            wanted = {(d.model_name, d.model_version) for d in list_deployments(s) if d.mode != Mode.OFF}
            installed = []
            for name, version in sorted(wanted):
                try:
                    installed.append(get_model(s, name, version))
                except RegistryError as exc:
                    log.warning("engine preload: %s", exc)
        loaded = []
        for model in installed:
            try:
                self._load(model)
            except (PackageError, ModelLoadError) as exc:
                log.warning("engine preload: %s", exc)
            else:
                loaded.append(model.label)
        return loaded

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
        for worker in self._workers:
            if self._handoff.forget(worker):
                self._requeue(worker)  # handed over, not run: queued again now, not at lease expiry
        self._threads = []
        self._workers = {}
        with self._heartbeat_lock:
            heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.halt.set()
            heartbeat.join(timeout_s)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._workers.values())

    def _loop(self, worker: str) -> None:
        while not self._stop.is_set():
            try:
                handed = self._handoff.take(worker)
                done = self._run_handed(worker, handed) if handed else self.run_once(worker)
            except FATAL_EXCEPTIONS:
                raise
            except BaseException:  # noqa: BLE001 - a native panic is a BaseException; the loop survives it
                log.exception("engine worker %s: pass failed", worker)
                self._requeue(worker)
                done = 0
            if done == 0:
                self._handoff.idle(worker)  # the hook may hand it a series until it claims a batch
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
                self._handoff.forget(name)
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
            reaped = reap_expired(s) if self._reap_due() else 0
            jobs = claim_jobs(s, worker, opts.batch_size, opts.lease_s, max_attempts=opts.max_attempts)
        if reaped:
            log.warning("failed %d job(s) whose worker died on their last attempt", reaped)
        if not jobs:
            return 0
        self._handoff.busy(worker)
        heartbeat = self._lease_heartbeat()
        heartbeat.hold(worker, [j.id for j in jobs])
        try:
            self._run_batch(worker, jobs)
        finally:
            heartbeat.release(worker, [j.id for j in jobs])
        return len(jobs)

    def _run_handed(self, worker: str, handed: list[_Handed]) -> int:
        """Run jobs handed over by the hook (already leased, their heartbeat held since the handover)."""
        now = utcnow()
        jobs = [dataclasses.replace(h.job, claimed_at=now) for h in handed]  # queue wait ends now
        try:
            first = handed[0]
            sha256 = first.policy.manifest.weights.sha256
            model = self._loaded(first.job.model_name, first.job.model_version, sha256)
            if model is None:  # not loaded yet: as after a claim, reading what the batch needs
                self._run_batch(worker, jobs)
            else:
                runnable = [(j, h.policy, h.instances) for j, h in zip(jobs, handed, strict=True)]
                self._run_loaded(worker, model, runnable)
        finally:
            self._lease_heartbeat().release(worker, [j.id for j in jobs])
        return len(jobs)

    def _reap_due(self) -> bool:
        """Reap at most every third of the lease: a job whose lease expired on its last attempt is never
        claimed again anyway (``claimable``), so marking it failed can wait; the check stays off most
        series' path."""
        now = time.monotonic()
        if now < self._next_reap:
            return False
        self._next_reap = now + self.options.lease_s / 3
        return True

    def _lease_heartbeat(self) -> _Heartbeat:
        with self._heartbeat_lock:
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = _Heartbeat(self.db, self.options.lease_s)
                self._heartbeat.start()
            return self._heartbeat

    def _load(self, installed: InstalledModel) -> LoadedModel:
        key = (installed.name, installed.version, installed.sha256)
        with self._models_lock:
            model = self._models.get(key)
            if model is None:
                model = LoadedModel.load(open_model(installed), self.options.runtime, self.runtime_factory)
                self._models[key] = model
            return model

    def _loaded(self, name: str, version: str, sha256: str) -> LoadedModel | None:
        """The model already loaded for these weights (a name and version never change their weights:
        registering other weights under them is refused, and recalibration installs a new version)."""
        with self._models_lock:
            return self._models.get((name, version, sha256))

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
        runnable: list[_Runnable] = []
        model: LoadedModel | None = None
        installed: InstalledModel | None = None
        load_error = ""
        # One transaction reads what the whole batch needs: deployments, their policy, the images.
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
                    runnable.append((job, policy_context(s, deployment), self._instances(s, job)))
            if runnable:
                model = self._loaded(name, version, runnable[0][1].manifest.weights.sha256)
            if runnable and model is None:
                try:
                    installed = get_model(s, name, version)
                except RegistryError as exc:
                    load_error = str(exc)
        if not runnable:
            return
        if model is None and installed is not None:
            try:
                model = self._load(installed)
            except (PackageError, ModelLoadError) as exc:
                load_error = str(exc)
        if model is None:
            for job, _, _ in runnable:
                self._fail(worker, job, load_error, permanent=True)
            return
        self._run_loaded(worker, model, runnable)

    def _run_loaded(self, worker: str, model: LoadedModel, runnable: list[_Runnable]) -> None:
        """Prepare, infer and store jobs of one model version, ``model`` loaded."""
        prepared: list[_Prepared] = []
        for job, ctx, instances in runnable:
            try:
                prepared.append(self._prepare(job, ctx, model, instances))
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

    @classmethod
    def _instances(cls, s: Session, job: ClaimedJob) -> list[_Instance]:
        """The job's images in the index: decodable, and among those routing sent to this model."""
        return cls._fitting(series_instances(s, job.SeriesInstanceUID), job)

    @staticmethod
    def _fitting(instances: Iterable[Instance], job: ClaimedJob) -> list[_Instance]:
        """Of a series' newest instances, those decodable that routing sent to ``job``'s model."""
        return [
            (i.SOPInstanceUID, i.path, {k: getattr(i, k, None) for k in FEATURE_KEYWORDS}, i.sha256)
            for i in instances
            if getattr(i, "pixel_status", "ok") != "undecodable"
            and (job.instances is None or i.SOPInstanceUID in job.instances)
        ]

    def _prepare(
        self, job: ClaimedJob, ctx: PolicyContext, model: LoadedModel, instances: list[_Instance]
    ) -> _Prepared:
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


@dataclass(frozen=True)
class _EngineHook:
    """The assembler's ``SeriesCompleteHook`` for an engine: :meth:`Engine.enqueue`."""

    engine: Engine

    def __call__(self, session: Session, SeriesInstanceUID: str, partial: bool) -> None:
        self.engine.enqueue(session, SeriesInstanceUID, partial)


class _LeaseLostError(Exception):
    """This worker's lease passed to another worker before it could store its result."""
