"""The engine: completed series become jobs, workers store exactly one result per series x model version."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import radgate.cli.engine  # noqa: F401  (registers the commands)
from radgate.assembly import Assembler
from radgate.cli.app import app
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Series
from radgate.engine import (
    EXPORT_COLUMNS,
    Engine,
    EngineOptions,
    Job,
    Prediction,
    RoutingDecisionRow,
    enqueue_for_series,
    export_csv,
    summarise,
)
from radgate.inference import ExplanationMap, OnnxRuntime, RuntimeOptions
from radgate.models import add_model
from radgate.models.registry import get_model
from radgate.policy import Decision
from radgate.routing import DeploymentSpec, set_mode, sync_deployments
from tests.test_engine_support import build_package, index_series, make_dx, tiny_onnx

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=3)


class RecordingSink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_result(self, session: Session, prediction: Prediction, decision: Decision) -> None:
        assert session.get(Prediction, prediction.id) is prediction  # stored (flushed) in this transaction
        if decision.released:
            self.seen.append((prediction.SeriesInstanceUID, prediction.mode))


def _deploy(tmp_path: Path, settings: Settings, db: Database, *specs: DeploymentSpec) -> None:
    with db.session() as s:
        versions = {(spec.model, spec.version) for spec in specs}
        for name, version in sorted(versions):
            add_model(s, build_package(tmp_path / f"{name}-{version}", name=name, version=version),
                      settings.data_dir)
        sync_deployments(s, list(specs))


def _series(db: Database, settings: Settings, **kwargs: object) -> str:
    uid = index_series(db, settings, [make_dx(**kwargs)])  # type: ignore[arg-type]
    with db.session() as s:
        enqueue_for_series(s, uid)
    return uid


def _predictions(db: Database) -> list[Prediction]:
    with db.session() as s:
        return list(s.scalars(select(Prediction).order_by(Prediction.id)))


def _jobs(db: Database) -> list[Job]:
    with db.session() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def test_silent_and_live_results_are_stored_and_marked(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db,
            DeploymentSpec("champion", "tiny-ptx", "1.0.0", mode="live"),
            DeploymentSpec("challenger", "tiny-ptx", "2.0.0", mode="silent"))
    uid = _series(db, settings, bright_lesion=True)
    sink = RecordingSink()
    engine = Engine(settings, db, sinks=[sink], options=FAST)
    assert engine.run_until_idle(30) == 2  # one batch per model version
    rows = {p.model_version: p for p in _predictions(db)}
    assert {v: p.mode for v, p in rows.items()} == {"1.0.0": "live", "2.0.0": "silent"}
    assert sink.seen == [(uid, "live")]  # silent results are never handed on
    live = rows["1.0.0"]
    assert live.score > 0.99 and live.flag is True
    assert json.loads(live.flags) == {"high-sensitivity": True, "balanced": True}
    assert json.loads(live.scores) == {"pneumothorax": pytest.approx(live.score)}
    features = json.loads(live.features)
    assert features["ViewPosition"] == "PA" and features["PatientAge"] == 45.0 and features["Manufacturer"]
    assert "PatientName" not in features and "PatientID" not in features
    for stage in ("queue_wait_ms", "decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "end_to_end_ms"):
        assert getattr(live, stage) >= 0.0, stage
    assert live.end_to_end_ms is not None and live.end_to_end_ms >= live.inference_ms
    exp = ExplanationMap.load(settings.data_dir / live.explanation_path)  # type: ignore[operator]
    assert exp.method == "cam" and exp.SOPInstanceUID == live.SOPInstanceUID and "rough guide" in exp.note
    assert [j.status for j in _jobs(db)] == ["done", "done"]


def test_routing_decisions_and_export(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent"))
    adult = _series(db, settings)
    lateral = _series(db, settings, view="LL")
    child = _series(db, settings, age="009Y")
    Engine(settings, db, options=FAST).run_until_idle(30)
    with db.session() as s:
        text = export_csv(s)
        summary = summarise(s)
    rows = {r["SeriesInstanceUID"]: r for r in csv.DictReader(io.StringIO(str(text)))}
    assert set(rows) == {adult, lateral, child}
    assert list(next(iter(rows.values()))) == list(EXPORT_COLUMNS)
    assert rows[adult]["decision"] == "matched" and rows[adult]["job_status"] == "done"
    assert rows[adult]["mode"] == "silent" and rows[adult]["flag"] == "0" and float(rows[adult]["score"]) < 0.1
    assert (rows[lateral]["decision"], rows[lateral]["reason"]) == ("not_applicable", "ViewPosition LL is not in PA, AP")
    assert (rows[child]["decision"], rows[child]["reason"]) == ("not_applicable", "age 9Y outside 18–120")
    assert rows[child]["score"] == "" and rows[child]["model"] == "tiny-ptx"
    assert summary.processed == 1 and summary.silent == 1 and summary.flagged == 0
    assert summary.not_applicable == {"ViewPosition LL is not in PA, AP": 1, "age 9Y outside 18–120": 1}


def test_enqueue_is_idempotent(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:
        first = enqueue_for_series(s, uid)
    with db.session() as s:
        assert enqueue_for_series(s, uid) == []  # e.g. the series was reopened and completed again
        assert len(list(s.scalars(select(RoutingDecisionRow)))) == 1
    assert [j.id for j in _jobs(db)] == first
    with db.session() as s, pytest.raises(ValueError, match="not in the index"):
        enqueue_for_series(s, "1.2.3.4")


def test_assembler_hook_queues_completed_series(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    uid = index_series(db, settings, [make_dx()], status="receiving")
    engine = Engine(settings, db, options=FAST)
    Assembler(settings, db, hooks=[engine.hook]).run_once(now=utcnow() + timedelta(seconds=60))
    with db.session() as s:
        assert s.get(Series, uid).status == "complete"  # type: ignore[union-attr]
    assert [j.SeriesInstanceUID for j in _jobs(db)] == [uid]


def test_unique_result_is_a_database_guarantee(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _series(db, settings)
    Engine(settings, db, options=FAST).run_until_idle(30)
    [stored] = _predictions(db)
    copy = Prediction(**{c.name: getattr(stored, c.name) for c in Prediction.__table__.columns if c.name != "id"})
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(copy)


class FailingRuntime:
    """A runtime whose inference always fails (say, the GPU ran out of memory)."""

    output_names = ("probability", "cam")
    providers = ("CPUExecutionProvider",)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise MemoryError("out of memory on the accelerator")


def test_retries_with_backoff_then_failed_with_reason(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _series(db, settings)
    options = EngineOptions(lease_s=30.0, retry_backoff_s=10.0, max_attempts=2)
    engine = Engine(settings, db, options=options, runtime_factory=lambda *a: FailingRuntime())
    before = utcnow()
    assert engine.run_once() == 1
    [job] = _jobs(db)
    assert job.status == "queued" and job.attempts == 1 and "out of memory" in (job.last_error or "")
    assert job.available_at >= before + timedelta(seconds=10)  # backoff_s * 2 ** (attempt - 1)
    assert engine.run_once() == 0  # not before its backoff
    with db.session() as s:
        s.execute(update(Job).values(available_at=utcnow()))
    assert engine.run_once() == 1
    [job] = _jobs(db)
    assert job.status == "failed" and job.attempts == 2
    assert job.last_error == "inference failed: MemoryError: out of memory on the accelerator"
    assert _predictions(db) == []


def test_hash_mismatch_fails_the_job_without_retry(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    weights = settings.data_dir / "models" / "tiny-ptx" / "1.0.0" / "model.onnx"
    weights.write_bytes(tiny_onnx(gain=50.0))  # replaced after installation
    _series(db, settings)
    Engine(settings, db, options=FAST).run_until_idle(30)
    [job] = _jobs(db)
    assert job.status == "failed" and job.attempts == 1
    assert "SHA-256 of model.onnx" in (job.last_error or "") and "refusing to run" in (job.last_error or "")
    assert _predictions(db) == []


def test_turning_a_deployment_off_cancels_its_queued_jobs(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live"))
    _series(db, settings)
    with db.session() as s:
        set_mode(s, "ptx", "off", changed_by="admin")
    Engine(settings, db, options=FAST).run_until_idle(30)
    [job] = _jobs(db)
    assert job.status == "cancelled" and job.last_error == "deployment turned off before it ran"
    assert _predictions(db) == []


def test_lost_lease_stores_nothing_twice(tmp_path: Path, settings: Settings, db: Database) -> None:
    """Worker A stalls past its lease; B takes the job over and stores; A's late result is discarded."""
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    _series(db, settings, bright_lesion=True)
    worker_b = Engine(settings, db, options=FAST, worker_id="B")

    class StallingRuntime(OnnxRuntime):
        stalled = False

        def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
            if not StallingRuntime.stalled:
                StallingRuntime.stalled = True
                with db.session() as s:  # A's lease runs out while it works ...
                    s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
                assert worker_b.run_once() == 1  # ... and B claims the job and finishes it
            return super().run(batch)

    worker_a = Engine(settings, db, options=FAST, worker_id="A",
                      runtime_factory=lambda w, o, i, label: StallingRuntime(w, o, i, label))
    assert worker_a.run_once() == 1
    [job] = _jobs(db)
    assert job.status == "done" and job.attempts == 2
    [prediction] = _predictions(db)
    assert prediction.job_id == job.id


def test_engine_threads_start_and_stop(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0"))
    engine = Engine(settings, db, options=EngineOptions(workers=2, poll_interval_s=0.05,
                                                        runtime=RuntimeOptions(intra_op_threads=1)))
    engine.start()
    try:
        assert engine.running
        uids = {_series(db, settings) for _ in range(3)}
        deadline = time.monotonic() + 30
        while len(_predictions(db)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        engine.stop()
    assert not engine.running
    assert {p.SeriesInstanceUID for p in _predictions(db)} == uids


def test_cli_deployments_and_predictions(tmp_path: Path, settings: Settings, db: Database) -> None:
    _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent"))
    _series(db, settings)
    _series(db, settings, view="LL")
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    result = runner.invoke(app, ["deployments", "list", *data, "--json"])
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.stdout)
    assert listed["mode"] == "silent" and "ViewPosition in PA, AP" in listed["rules"]
    result = runner.invoke(app, ["deployments", "set-mode", "ptx", "live", *data, "--by", "dr.lee",
                                 "--override", "test site"])
    assert result.exit_code == 0 and "now live" in result.output
    result = runner.invoke(app, ["deployments", "show", "ptx", *data])
    assert "dr.lee" in result.output and "silent" in result.output and "live" in result.output
    result = runner.invoke(app, ["deployments", "set-mode", "ptx", "loud", *data])
    assert result.exit_code == 2 and "mode is 'loud'; expected one of off, silent, shadow, live" in result.output
    result = runner.invoke(app, ["engine", "run", *data])
    assert result.exit_code == 0 and "processed: 1 (0 silent, 0 shadow, 1 live)" in result.output
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predictions", "export", "--format", "csv", "--out", str(out), *data])
    assert result.exit_code == 0 and "Wrote 2 rows" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["decision"] for r in rows) == ["matched", "not_applicable"]
    assert {"StudyInstanceUID", "SeriesInstanceUID", "model", "model_version", "mode", "score", "flag",
            "decision", "reason"} <= set(rows[0])
    assert runner.invoke(app, ["predictions", "export", "--format", "xlsx", *data]).exit_code == 2


def test_claims_and_unique_result_on_both_backends(tmp_path: Path, settings: Settings, any_db_url: str) -> None:
    """The conditional-UPDATE claim, lease takeover and the unique result hold on SQLite and PostgreSQL."""
    from radgate.db import open_database
    from radgate.engine import claim_jobs

    db = open_database(any_db_url)
    try:
        _deploy(tmp_path, settings, db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live"))
        _series(db, settings, bright_lesion=True)
        with db.session() as s:
            [mine] = claim_jobs(s, "A", limit=8, lease_s=30.0)
            assert claim_jobs(s, "B", limit=8, lease_s=30.0) == []  # held: nobody else gets it
        with db.session() as s:
            s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        with db.session() as s:
            [taken] = claim_jobs(s, "B", limit=8, lease_s=30.0)  # expired: B takes it over
        assert taken.id == mine.id and taken.attempts == 2
        assert Engine(settings, db, options=FAST).run_once() == 0  # B's lease is live: nothing to take
        assert _predictions(db) == []
        with db.session() as s:
            s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        Engine(settings, db, options=FAST).run_until_idle(30)
        [stored] = _predictions(db)
        assert stored.mode == "live" and stored.flag is True
        copy = Prediction(**{c.name: getattr(stored, c.name) for c in Prediction.__table__.columns if c.name != "id"})
        with pytest.raises(IntegrityError), db.session() as s:
            s.add(copy)
    finally:
        db.dispose()


def test_start_loads_deployed_models_and_logs_one_that_cannot_load(
    tmp_path: Path, settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine.start loads every deployed model (not off) before the first series; a broken one is logged."""
    _deploy(tmp_path, settings, db, DeploymentSpec("live", "m", "1.0.0", mode="live"),
            DeploymentSpec("gone", "g", "1.0.0", mode="live"), DeploymentSpec("off", "o", "1.0.0", mode="off"))
    with db.session() as s:
        installed = get_model(s, "g", "1.0.0").path
    (installed / "model.onnx").write_bytes(b"not the registered weights")  # the hash check refuses it
    engine = Engine(settings, db, options=FAST)
    engine.start()
    try:
        assert sorted(key[:2] for key in engine._models) == [("m", "1.0.0")]
        assert "engine preload" in caplog.text and "g 1.0.0" in caplog.text
    finally:
        engine.stop()
