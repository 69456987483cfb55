"""The engine survives what kills threads: a native panic in a pass, a worker thread that dies, an image that
cannot be decoded. Each fails one job or one image, never the stage."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Database, Instance
from radgate.engine import Engine, EngineOptions, Job, Prediction, enqueue_for_series
from radgate.inference import OnnxRuntime, RuntimeOptions
from radgate.routing import DeploymentSpec
from tests.helpers.models import deploy, install, manifest_with
from tests.test_engine_support import index_series, make_dx

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=3,
                     runtime=RuntimeOptions(intra_op_threads=1))


class PanicException(BaseException):  # noqa: N818 - what pyo3 raises from a Rust panic: not an Exception
    pass


def _setup(tmp_path: Path, settings: Settings, db: Database, n: int = 2) -> list[str]:
    install(tmp_path, settings, db, manifest_with())
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent"))
    uids = []
    for _ in range(n):
        uid = index_series(db, settings, [make_dx()])
        with db.session() as s:
            enqueue_for_series(s, uid)
        uids.append(uid)
    return uids


def _wait_for(db: Database, n: int, timeout_s: float = 30.0) -> list[Prediction]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session() as s:
            rows = list(s.scalars(select(Prediction)))
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"only {len(rows)} of {n} results after {timeout_s} s")


def test_a_panic_in_a_pass_requeues_its_jobs_and_the_worker_goes_on(tmp_path: Path, settings: Settings,
                                                                    db: Database) -> None:
    uids = _setup(tmp_path, settings, db)

    class PanickingOnce(OnnxRuntime):
        panicked = False

        def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
            if not PanickingOnce.panicked:
                PanickingOnce.panicked = True
                raise PanicException("called `Result::unwrap()` on an `Err` value")
            return super().run(batch)

    engine = Engine(settings, db, options=FAST,
                    runtime_factory=lambda w, o, i, label: PanickingOnce(w, o, i, label))
    engine.start()
    try:
        rows = _wait_for(db, len(uids))
    finally:
        engine.stop()
    assert PanickingOnce.panicked and {p.SeriesInstanceUID for p in rows} == set(uids)
    with db.session() as s:
        jobs = list(s.scalars(select(Job)))
    assert all(j.status == "done" for j in jobs) and max(j.attempts for j in jobs) == 2


def test_a_dead_worker_thread_is_replaced(tmp_path: Path, settings: Settings, db: Database) -> None:
    uids = _setup(tmp_path, settings, db)
    engine = Engine(settings, db, options=FAST)
    real = engine.run_once
    calls = {"n": 0}

    def dies_once(worker: str | None = None) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("the thread ends")  # passes every guard: only the supervisor can help
        return real(worker)

    engine.run_once = dies_once  # type: ignore[method-assign]
    engine.start()
    try:
        rows = _wait_for(db, len(uids))
        assert engine.restarts == 1 and engine.running
    finally:
        engine.stop()
    assert {p.SeriesInstanceUID for p in rows} == set(uids)


def test_an_undecodable_image_fails_its_job_with_the_reason(tmp_path: Path, settings: Settings,
                                                            db: Database) -> None:
    bad, good = _setup(tmp_path, settings, db)
    with db.session() as s:
        inst = s.scalars(select(Instance).where(Instance.SeriesInstanceUID == bad)).one()
        path = settings.store_dir / inst.path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4000])  # pixel data cut short on disk, after the decode check
    engine = Engine(settings, db, options=FAST)
    engine.run_until_idle(30)
    with db.session() as s:
        jobs = {j.SeriesInstanceUID: j for j in s.scalars(select(Job))}
        results = {p.SeriesInstanceUID for p in s.scalars(select(Prediction))}
    assert results == {good}
    assert jobs[bad].status == "failed" and "could not be decoded" in (jobs[bad].last_error or "")


@pytest.mark.parametrize("workers", [2])
def test_stop_joins_workers_and_supervisor(tmp_path: Path, settings: Settings, db: Database, workers: int) -> None:
    _setup(tmp_path, settings, db, n=0)
    engine = Engine(settings, db, options=EngineOptions(workers=workers, poll_interval_s=0.05))
    engine.start()
    assert engine.running
    engine.stop()
    assert not engine.running
