"""The gateway: every long-running part of radgate in one process, started and stopped together.

``radgate serve`` builds a :class:`Gateway`: database, instance store, DIMSE SCP, HTTP app (uvicorn in a
thread), then the background services: study assembler, pixel checker, inference engine and results worker.
The stages meet only through the database: the assembler's hook enqueues jobs in the transaction that
completes a series; the engine stores each prediction with its policy decision and, for a released one, a
publish intent; the results worker (:class:`~radgate.results.sink.ResultsWorker`) builds SR + GSPS after that
commit and sends them. The network edge knows none of this.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import uvicorn

from radgate.assembly import Assembler, SeriesCompleteHook
from radgate.auth.service import count_users
from radgate.config import Settings
from radgate.db import Database, database_for
from radgate.engine import Engine
from radgate.inference.cache import TensorPrewarmer
from radgate.ingest import DicomServer, InstanceStore, PixelChecker
from radgate.ingest.scpprocs import ScpProcesses, dicom_server
from radgate.monitoring.service import MonitoringService
from radgate.results.sink import ResultsWorker
from radgate.routing import parse_deployments
from radgate.services.processing import Pipeline
from radgate.web import create_app

__all__ = ["BackgroundService", "Gateway"]

log = logging.getLogger(__name__)


class BackgroundService(Protocol):
    """Anything the gateway starts after the edge is up and stops before it goes down."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Gateway:
    def __init__(self, settings: Settings, db: Database | None = None, workers: bool = True) -> None:
        """``workers=False`` (``radgate serve --no-workers``): the network edge, store and assembly only; the
        engine, results and monitoring workers run as ``radgate worker`` processes."""
        self.settings = settings
        self.workers = workers
        self.db = db or database_for(settings)
        self.store = InstanceStore(settings, self.db)
        deployments = parse_deployments(settings.deployments, settings.site) if settings.deployments else None
        # The stages behind the edge, composed as `radgate process` composes them (services.processing).
        self.pipeline = Pipeline(settings, self.db, lock=self.store.lock, deployments=deployments)
        self.engine: Engine = self.pipeline.engine
        self.assembler: Assembler = self.pipeline.assembler
        self.hooks: list[SeriesCompleteHook] = self.assembler.hooks
        # Model inputs are rendered as images arrive (idle priority), so completion leaves only inference.
        prewarm = TensorPrewarmer(
            self.db, settings.data_dir, max_decoded_bytes=settings.ingest.max_decoded_bytes
        )
        self.pixels = PixelChecker(self.store, self.db, on_decoded=[prewarm])
        self.outbox: ResultsWorker = self.pipeline.results
        self.dicom: DicomServer | ScpProcesses = dicom_server(settings, self.store)
        self.app = create_app(settings, self.db, self.store)
        self.services: list[BackgroundService] = [self.assembler, self.pixels]
        if workers:
            self.services += [self.engine, self.outbox, MonitoringService(self.db, settings)]
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def http_port(self) -> int:
        if self._http is None or not self._http.servers:
            raise RuntimeError("The HTTP server is not running.")
        sock = self._http.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    @property
    def http_url(self) -> str:
        scheme = "https" if self.settings.tls.http else "http"
        return f"{scheme}://{self.settings.server.host}:{self.http_port}"

    def start(self) -> None:
        self.dicom.start()
        tls = self.settings.tls
        config = uvicorn.Config(
            self.app,
            host=self.settings.server.host,
            port=self.settings.server.http_port,
            log_level="warning",
            log_config=None,  # uvicorn's records go to radgate's console handler (radgate.logs), once
            access_log=False,
            ssl_certfile=tls.cert_file if tls.http else None,
            ssl_keyfile=tls.key_file if tls.http else None,
        )
        self._http = uvicorn.Server(config)
        self._http_thread = threading.Thread(target=self._http.run, name="radgate-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + 30
        while not self._http.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                self.dicom.stop()
                raise RuntimeError(
                    f"The HTTP server did not start on {self.settings.server.host}:"
                    f"{self.settings.server.http_port}"
                    " (port in use?)."
                )
            time.sleep(0.05)
        if not self.workers:
            self.engine.bootstrap()  # deployments the assembler routes to (the engine itself runs elsewhere)
        for service in self.services:
            service.start()
        log.debug("radgate gateway running: DICOM port %d, %s", self.dicom.port, self.http_url)
        if count_users(self.db) == 0:
            log.warning(
                "No users yet: nothing but /healthz answers on HTTP. Create the first admin with "
                "`radgate users add NAME --role admin --password-stdin --data-dir %s`.",
                self.settings.data_dir,
            )

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self._http is not None:
            self._http.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(timeout=10)
        self.dicom.stop()
        self.store.close()  # checkpoint the ingest journal: the next start has nothing to replay

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
