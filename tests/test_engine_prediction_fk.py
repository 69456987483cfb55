"""Migration p110: ``predictions.job_id`` references ``jobs.id`` on both backends (NULL: no job)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from radgate.clock import utcnow
from radgate.db import Database, open_database
from radgate.db.engine import alembic_config
from radgate.engine import Job, Prediction
from radgate.models import add_model
from radgate.routing import DeploymentSpec, sync_deployments
from tests.test_engine_support import build_package


def _prediction(job_id: int | None, series: str = "1.2.3") -> Prediction:
    return Prediction(
        job_id=job_id, StudyInstanceUID="1.2", SeriesInstanceUID=series, SOPInstanceUID=series + ".1",
        deployment="d", site="default", model_name="tiny-ptx", model_version="1.0.0", model_sha256="0" * 64,
        mode="silent", score=0.5, flag=False, scores="{}", flags="{}", features="{}", num_images=1,
        queue_wait_ms=0.0, decode_ms=0.0, preprocess_ms=0.0, inference_ms=0.0, postprocess_ms=0.0,
        created_at=utcnow(), used_instances="[]", policy="silent", policy_reason="", urgency=0.0, findings="[]",
    )


def _job(db: Database) -> int:
    now = utcnow()
    with db.session() as s:
        job = Job(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3", deployment="d", model_name="tiny-ptx",
                  model_version="1.0.0", status="done", attempts=1, max_attempts=3, available_at=now,
                  enqueued_at=now)
        s.add(job)
        s.flush()
        return job.id


def test_a_prediction_names_a_job_that_exists_or_none(any_db_url: str, tmp_path: Path) -> None:
    db = open_database(any_db_url)
    try:
        with db.session() as s:
            add_model(s, build_package(tmp_path / "pkg"), tmp_path / "data")
            sync_deployments(s, [DeploymentSpec("d", "tiny-ptx", "1.0.0")])
        with pytest.raises(IntegrityError), db.session() as s:
            s.add(_prediction(job_id=4242))  # no such job
        job_id = _job(db)
        with db.session() as s:
            s.add(_prediction(job_id))
            s.add(_prediction(None, series="1.2.4"))  # retrospective: scored outside the queue
        with db.session() as s:
            s.execute(delete(Job).where(Job.id == job_id))
        with db.session() as s:
            assert list(s.scalars(select(Prediction.job_id))) == [None, None]  # ON DELETE SET NULL
    finally:
        db.dispose()


def test_upgrade_clears_job_ids_that_name_no_job(any_db_url: str, tmp_path: Path) -> None:
    """Rows written before p110 with ``job_id = 0`` (retrospective scores, test helpers) upgrade to NULL."""
    db = Database(any_db_url)
    try:
        cfg = alembic_config(any_db_url)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
            command.downgrade(cfg, "p100")  # p110 undone: the schema as it was before
        with db.session() as s:
            add_model(s, build_package(tmp_path / "pkg"), tmp_path / "data")
            sync_deployments(s, [DeploymentSpec("d", "tiny-ptx", "1.0.0")])
        job_id = _job(db)
        with db.session() as s:
            s.add(_prediction(job_id))
            s.add(_prediction(0, series="1.2.4"))
        db.migrate()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT job_id FROM predictions ORDER BY id")).scalars().all()
        assert rows == [job_id, None]
    finally:
        db.dispose()
