"""``radgate worker``: the engine, results and monitoring workers as their own processes.

Every worker talks to the others only through the database (claims under leases, :mod:`radgate.db.lease`;
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and the instance store, so any number of them can run, on any
machine that reaches both. ``radgate serve --no-workers`` then runs the network edge alone (store, assembly,
HTTP); a worker killed mid-batch loses nothing: its leases expire and another worker takes the jobs over.

:func:`run_workers` runs the workers of one process until ``stop`` is set; :func:`supervise` runs ``count``
such processes and starts a replacement for one that dies.
"""

from __future__ import annotations

import enum
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from radgate.config import Settings
from radgate.db import Database

__all__ = ["WorkerKind", "run_workers", "start_workers", "supervise"]

log = logging.getLogger(__name__)


class WorkerKind(enum.StrEnum):
    ENGINE = "engine"  # claims inference jobs, stores predictions with their decision
    RESULTS = "results"  # builds SR + GSPS for released predictions, sends the outbox
    MONITORING = "monitoring"  # monitoring runs, alerts, webhooks (run one)


class _Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def _engine(settings: Settings, db: Database) -> _Service:
    from radgate.engine import Engine
    from radgate.routing import parse_deployments

    deployments = parse_deployments(settings.deployments, settings.site) if settings.deployments else None
    engine = Engine(settings, db, deployments=deployments)
    return _Bootstrapping(engine)


@dataclass
class _Bootstrapping:
    """An engine whose bootstrap (bundled models, config deployments) may race another worker's: the
    loser of an insert race retries once the winner committed."""

    engine: _Service

    def start(self) -> None:
        for attempt in range(5):
            try:
                self.engine.start()
                return
            except IntegrityError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def stop(self) -> None:
        self.engine.stop()


def _results(settings: Settings, db: Database) -> _Service:
    from radgate.results.sink import ResultsWorker

    return ResultsWorker(settings, db)


def _monitoring(settings: Settings, db: Database) -> _Service:
    from radgate.monitoring.service import MonitoringService

    return MonitoringService(db, settings)


FACTORIES: dict[WorkerKind, Callable[[Settings, Database], _Service]] = {
    WorkerKind.ENGINE: _engine,
    WorkerKind.RESULTS: _results,
    WorkerKind.MONITORING: _monitoring,
}


@dataclass
class RunningWorkers:
    services: list[_Service] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("stopping a worker failed")


def start_workers(settings: Settings, db: Database, kinds: Sequence[WorkerKind]) -> RunningWorkers:
    """Start one service per kind in this process (each runs its own threads)."""
    running = RunningWorkers()
    try:
        for kind in dict.fromkeys(kinds):
            service = FACTORIES[kind](settings, db)
            service.start()
            running.services.append(service)
    except BaseException:
        running.stop()
        raise
    return running


def run_workers(settings: Settings, db: Database, kinds: Sequence[WorkerKind], stop: threading.Event) -> None:
    """Run the workers of ``kinds`` in this process until ``stop`` is set."""
    running = start_workers(settings, db, kinds)
    log.info("radgate worker running: %s", ", ".join(k.value for k in dict.fromkeys(kinds)))
    try:
        stop.wait()
    finally:
        running.stop()


def supervise(
    command: Sequence[str], count: int, stop: threading.Event, restart_delay_s: float = 1.0
) -> int:
    """Run ``count`` processes of ``command`` until ``stop``; start a replacement for one that exits
    while not stopping. Returns how many were replaced."""
    procs: list[subprocess.Popen[bytes]] = [subprocess.Popen(list(command)) for _ in range(count)]
    replaced = 0
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is None:
                    continue
                log.error("worker process %d exited with %d; starting another", proc.pid, code)
                time.sleep(restart_delay_s)
                procs[i] = subprocess.Popen(list(command))
                replaced += 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return replaced
