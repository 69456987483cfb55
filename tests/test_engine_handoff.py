"""The handoff: a series completed in the engine's own process goes to its idle worker, leased in the
transaction that completes it, without a claim; rollback, a worker that never runs it, and jobs of another
model version keep the queue's guarantees (exactly one result per series x deployment)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import radgate.engine.worker as worker_module
from radgate.config import Settings
from radgate.db import Database, Series
from radgate.engine import Engine, EngineOptions, Job, Prediction
from radgate.engine.queue import Claim, finish_job, route_series
from radgate.models import add_model
from radgate.routing import DeploymentSpec, sync_deployments
from tests.test_engine_support import build_package, index_series, make_dx

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=3)


def _deploy(tmp_path: Path, settings: Settings, db: Database, *specs: DeploymentSpec) -> None:
    with db.session() as s:
        for name, version in sorted({(spec.model, spec.version) for spec in specs}):
            add_model(s, build_package(tmp_path / f"{name}-{version}", name=name, version=version),
                      settings.data_dir)
        sync_deployments(s, list(specs))


def _predictions(db: Database) -> list[Prediction]:
    with db.session() as s:
        return list(s.scalars(select(Prediction).order_by(Prediction.id)))


def _wait(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of every job the engine's workers claim from the queue."""
    seen: list[int] = []
    claim = worker_module.claim_jobs

    def recording(*args: Any, **kwargs: Any) -> Any:
        jobs = claim(*args, **kwargs)
        seen.extend(j.id for j in jobs)
        return jobs

    monkeypatch.setattr(worker_module, "claim_jobs", recording)
    return seen


@pytest.fixture
def engine(settings: Settings, db: Database) -> Iterator[Engine]:
    engine = Engine(settings, db, options=FAST)
    yield engine
    engine.stop()


def _started(engine: Engine) -> Engine:
    engine.start()
    _wait(lambda: bool(engine._handoff._idle))  # the worker found nothing and waits
    return engine


def test_completed_series_is_leased_in_its_transaction_and_run_without_a_claim(
    tmp_path: Path, settings: Settings, db: Database, engine: Engine, claims: list[int]
) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _started(engine)
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:
        [job_id] = engine.enqueue(s, uid)
        job = s.get(Job, job_id)
        assert job is not None and job.status == "running" and job.attempts == 1
        assert (job.lease_owner or "").startswith(engine.worker_id)  # one of this engine's workers
    _wait(lambda: len(_predictions(db)) == 1)
    [prediction] = _predictions(db)
    assert prediction.job_id == job_id and prediction.SeriesInstanceUID == uid
    assert job_id not in claims  # handed over in memory, never claimed from the queue
    with db.session() as s:
        assert s.get(Job, job_id).status == "done"  # type: ignore[union-attr]


def test_rolled_back_completion_hands_nothing_and_the_worker_takes_the_next(
    tmp_path: Path, settings: Settings, db: Database, engine: Engine, claims: list[int]
) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _started(engine)
    lost = index_series(db, settings, [make_dx()])
    with pytest.raises(RuntimeError, match="assembler failed"), db.session() as s:
        engine.enqueue(s, lost)
        raise RuntimeError("assembler failed after routing")
    with db.session() as s:
        assert list(s.scalars(select(Job))) == []
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:
        [job_id] = engine.enqueue(s, uid)
        assert s.get(Job, job_id).status == "running"  # type: ignore[union-attr]  # idle again: handed
    _wait(lambda: len(_predictions(db)) == 1)
    assert [p.SeriesInstanceUID for p in _predictions(db)] == [uid] and claims == []


def test_jobs_of_another_model_version_go_through_the_queue(
    tmp_path: Path, settings: Settings, db: Database, engine: Engine, claims: list[int]
) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live"),
            DeploymentSpec("ptx-next", "tiny-ptx", "2.0.0", mode="shadow"))
    _started(engine)
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:
        ids = engine.enqueue(s, uid)
        statuses = {s.get(Job, i).model_version: s.get(Job, i).status for i in ids}  # type: ignore[union-attr]
    assert statuses == {"1.0.0": "running", "2.0.0": "queued"}  # one batch runs one model version
    _wait(lambda: len(_predictions(db)) == 2)
    by_version = {p.model_version: p.job_id for p in _predictions(db)}
    assert sorted(by_version) == ["1.0.0", "2.0.0"]
    assert by_version["2.0.0"] in claims and by_version["1.0.0"] not in claims


def test_job_leased_at_completion_is_claimed_again_when_its_worker_never_runs_it(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:  # leased to a worker that dies right after the commit
        routed = route_series(s, uid, 3, Claim("gone:1/0", lease_s=0.3, limit=8))
    [(job, _)] = routed.claimed
    other = Engine(settings, db, options=FAST)
    assert other.run_once() == 0  # the lease still holds
    time.sleep(0.4)
    assert other.run_once() == 1  # expired: claimed again, the attempt counted
    [prediction] = _predictions(db)
    assert prediction.job_id == job.id
    with db.session() as s:
        row = s.get(Job, job.id)
        assert row is not None and row.status == "done" and row.attempts == 2
        assert not finish_job(s, job.id, "gone:1/0")  # the dead worker cannot overwrite it


def test_handed_job_carries_its_times_as_the_database_returns_them(
    tmp_path: Path, settings: Settings, db: Database, engine: Engine, claims: list[int]
) -> None:
    # The completion time set in the completing transaction itself, naive (UTC): the job handed over must
    # carry it as aware UTC, as a claimed job read back from the database does.
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _started(engine)
    uid = index_series(db, settings, [make_dx()], status="receiving")
    with db.session() as s:
        series = s.get(Series, uid)
        assert series is not None
        series.status, series.completed_at = "complete", datetime.now(UTC).replace(tzinfo=None)
        engine.enqueue(s, uid)
    _wait(lambda: len(_predictions(db)) == 1)
    [prediction] = _predictions(db)
    assert prediction.end_to_end_ms is not None and 0 <= prediction.end_to_end_ms < 20_000
    with db.session() as s:
        job = s.get(Job, prediction.job_id)
        assert job is not None and job.attempts == 1 and job.last_error is None  # stored at the first try
    assert claims == []
