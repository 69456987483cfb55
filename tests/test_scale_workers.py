"""Scale-out on PostgreSQL: one gateway (`radgate serve --no-workers`) and three `radgate worker` processes.

Two workers are killed with SIGKILL while each holds jobs mid-batch; their leases expire and the survivor
takes the jobs over. Every series ends with exactly one prediction per deployment. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (checked on its own below).

Inference is slowed down in the worker processes only (a ``sitecustomize`` on their ``PYTHONPATH`` adds a
sleep to ``OnnxRuntime.run``) so that the kills land while a batch runs; the tiny model takes milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from radgate.clock import utcnow
from radgate.config import Settings, load_settings
from radgate.db import Database, database_for
from radgate.db.datadir import init_data_dir
from radgate.db.lease import LeasedQueue
from radgate.engine import Job, Prediction
from radgate.models import add_model
from radgate.results.send import CStoreDestination
from radgate.routing import DeploymentSpec, sync_deployments
from tests.conftest import _reset
from tests.test_engine_support import build_package, make_dx

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SERIES = 10
DEPLOYMENTS = ("ptx-live", "ptx-silent")

SLOW = textwrap.dedent(
    """
    import time
    import radgate.inference.runtime as runtime

    _run = runtime.OnnxRuntime.run

    def run(self, batch):
        time.sleep(0.6)
        return _run(self, batch)

    runtime.OnnxRuntime.run = run
    """
)


def _data_dir(tmp_path: Path, postgres_url: str) -> Settings:
    reset = Database(postgres_url)
    _reset(reset)
    reset.dispose()
    data = tmp_path / "data"
    data.mkdir()
    (data / "radgate.toml").write_text(
        textwrap.dedent(
            f"""
            [database]
            url = "{postgres_url}"
            [assembly]
            quiet_period_s = 0.5
            poll_interval_s = 0.1
            [inference]
            batch_size = 2
            lease_s = 2.0
            poll_interval_s = 0.1
            explanations = false
            """
        )
    )
    settings = load_settings(data_dir=data, environ={})
    init_data_dir(settings)
    db = database_for(settings)
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
        sync_deployments(
            s, [DeploymentSpec(DEPLOYMENTS[0], "tiny-ptx", "1.0.0", mode="live"),
                DeploymentSpec(DEPLOYMENTS[1], "tiny-ptx", "1.0.0", mode="silent")]
        )
    db.dispose()
    return settings


def _env(extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADGATE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(extra_path or ""), str(ROOT)) if p)
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "radgate", *args], env=env, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=log.open("w"),
    )


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_workers_two_killed_mid_batch_one_result_per_deployment(tmp_path: Path, postgres_url: str) -> None:
    settings = _data_dir(tmp_path, postgres_url)
    data = str(settings.data_dir)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW)
    gateway = _start(["serve", "--no-workers", "--log-format", "json", "--data-dir", data, "--dicom-port", "0",
                      "--http-port", "0"],
                     _env(), tmp_path / "gateway.log")
    workers: list[subprocess.Popen[str]] = []
    db = database_for(settings)
    try:
        assert gateway.stdout is not None
        ready = None
        for line in gateway.stdout:
            if line.startswith("{") and json.loads(line).get("event") == "listening":
                ready = json.loads(line)
                break
        assert ready, (tmp_path / "gateway.log").read_text()
        workers = [
            _start(["worker", "--kind", "engine", "--data-dir", data], _env(slow), tmp_path / f"worker{i}.log")
            for i in range(3)
        ]
        files = []
        for i in range(SERIES):
            ds = make_dx(bright_lesion=i % 2 == 0)
            path = tmp_path / "send" / f"{i}.dcm"
            path.parent.mkdir(exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
        outcomes = CStoreDestination("RADGATE", "127.0.0.1", ready["dicom_port"], "MODALITY").send(files)
        assert all(o.ok for o in outcomes)

        def holders() -> Counter[int]:
            with db.session() as s:
                owners = s.scalars(select(Job.lease_owner).where(Job.status == "running")).all()
            return Counter(int(o.split(":")[1]) for o in owners if o)

        victims = workers[:2]
        _wait_for(lambda: all(holders()[w.pid] > 0 for w in victims), 90, "two workers holding jobs mid-batch")
        for w in victims:
            os.kill(w.pid, signal.SIGKILL)
        for w in victims:
            assert w.wait(timeout=30) == -signal.SIGKILL

        def finished() -> bool:
            with db.session() as s:
                jobs = s.scalar(select(func.count(Job.id))) or 0
                open_ = s.scalar(select(func.count(Job.id)).where(Job.status.in_(("queued", "running"))))
            return jobs == SERIES * len(DEPLOYMENTS) and not open_

        _wait_for(finished, 120, "every job done by the surviving worker")
        with db.session() as s:
            per = Counter(s.execute(select(Prediction.SeriesInstanceUID, Prediction.deployment)).all())
            jobs = s.scalars(select(Job)).all()
        assert len(per) == SERIES * len(DEPLOYMENTS) and set(per.values()) == {1}
        assert {d for _, d in per} == set(DEPLOYMENTS)
        assert all(j.status == "done" for j in jobs)
        assert any(j.attempts >= 2 for j in jobs)  # taken over from a killed worker
        survivor = workers[2].pid
        assert all(j.lease_owner is None for j in jobs)
        assert workers[2].poll() is None, f"the survivor {survivor} died"
    finally:
        db.dispose()
        for proc in [*workers, gateway]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, gateway]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_claims_skip_rows_another_transaction_locked(postgres_url: str, tmp_path: Path) -> None:
    """Two claimers at the same moment on PostgreSQL get different rows, neither waits for the other."""
    reset = Database(postgres_url)
    _reset(reset)
    reset.dispose()
    from radgate.db import open_database

    db = open_database(postgres_url)
    now = utcnow()
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), tmp_path / "data")
        sync_deployments(s, [DeploymentSpec("d", "tiny-ptx", "1.0.0")])
    with db.session() as s:
        for i in range(4):
            s.add(Job(StudyInstanceUID="1.2", SeriesInstanceUID=f"1.2.{i}", deployment="d", model_name="m",
                      model_version="1", status="queued", attempts=0, max_attempts=3, available_at=now,
                      enqueued_at=now))
    queue = LeasedQueue(Job)
    first = db.sessionmaker()
    second = db.sessionmaker()
    try:
        with first.begin(), second.begin():
            a = [r.id for r in queue.candidates(first, 2)]
            started = time.monotonic()
            b = [r.id for r in queue.candidates(second, 2)]
            assert time.monotonic() - started < 2  # not blocked by the first transaction's locks
            assert len(a) == 2 and len(b) == 2 and not set(a) & set(b)
            assert queue.claim(first, a, "w1", 30) == a and queue.claim(second, b, "w2", 30) == b
    finally:
        first.close()
        second.close()
        db.dispose()


def test_no_workers_serve_starts_no_engine(settings: Settings) -> None:
    from radgate.gateway import Gateway

    gw = Gateway(settings, workers=False)
    names = {type(s).__name__ for s in gw.services}
    assert names == {"Assembler", "PixelChecker"}
    full = Gateway(settings)
    assert {"Engine", "ResultsWorker", "MonitoringService"} <= {type(s).__name__ for s in full.services}
    gw.db.dispose()
    full.db.dispose()


def test_production_schema_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """p100: JSONB columns, foreign keys and CHECK constraints hold on PostgreSQL; the code still reads text."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import IntegrityError

    reset = Database(postgres_url)
    _reset(reset)
    reset.dispose()
    from radgate.db import open_database

    db = open_database(postgres_url)
    try:
        types = {c["name"]: str(c["type"]) for c in inspect(db.engine).get_columns("predictions")}
        assert types["scores"] == "JSONB" and types["used_instances"] == "JSONB"
        fks = {fk["name"] for fk in inspect(db.engine).get_foreign_keys("routing_decisions")}
        assert {"fk_routing_decisions_job", "fk_routing_decisions_deployment"} <= fks
        with db.session() as s:
            add_model(s, build_package(tmp_path / "pkg"), tmp_path / "data")
            sync_deployments(s, [DeploymentSpec("d", "tiny-ptx", "1.0.0")])
        now = utcnow()
        fields = dict(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3", model_name="tiny-ptx", model_version="1.0.0",
                      attempts=0, max_attempts=3, available_at=now, enqueued_at=now)
        with pytest.raises(IntegrityError, match="ck_jobs_status"), db.session() as s:
            s.add(Job(deployment="d", status="sleeping", **fields))
        with pytest.raises(IntegrityError, match="fk_jobs_deployment"), db.session() as s:
            s.add(Job(deployment="no-such-deployment", status="queued", **fields))
        with db.session() as s:
            s.add(Job(deployment="d", status="queued", instances='["1.2.3.4", "1.2.3.5"]', **fields))
        with db.session() as s:
            job = s.scalars(select(Job)).one()
            assert json.loads(job.instances or "") == ["1.2.3.4", "1.2.3.5"]  # text in, text out
            assert s.scalar(text("SELECT jsonb_array_length(instances) FROM jobs")) == 2
    finally:
        db.dispose()


def test_supervise_replaces_a_process_that_exits(tmp_path: Path) -> None:
    import threading

    from radgate.workers import supervise

    marker = tmp_path / "starts"
    code = f"open({str(marker)!r}, 'a').write('x'); import sys; sys.exit(3)"
    stop = threading.Event()
    timer = threading.Timer(3.0, stop.set)
    timer.start()
    replaced = supervise([sys.executable, "-c", code], 1, stop, restart_delay_s=0.2)
    assert replaced >= 1 and len(marker.read_text()) == replaced + 1


def test_worker_refuses_an_unknown_kind(settings: Settings) -> None:
    from typer.testing import CliRunner

    import radgate.cli as cli

    cli.register_commands()
    result = CliRunner().invoke(cli.app, ["worker", "--kind", "gpu", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 2
    assert "--kind 'gpu' is not a worker kind; expected one of engine, results, monitoring." in " ".join(
        result.stderr.split()
    )
