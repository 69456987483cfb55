"""kill -9 of a worker process mid-job loses nothing and duplicates nothing.

A real subprocess claims the job and hangs inside inference; its heartbeat keeps the one-second lease alive
while it lives. It is then killed with SIGKILL (no clean-up runs), its lease expires, and a second worker
takes the job over and stores the one and only result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import select

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineOptions, Job, Prediction, enqueue_for_series
from radgate.models import add_model
from radgate.routing import DeploymentSpec, sync_deployments
from tests.test_engine_support import build_package, index_series, make_dx

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from radgate.config import load_settings
    from radgate.db import open_database
    from radgate.engine import Engine, EngineOptions
    from radgate.inference import OnnxRuntime

    class Hanging(OnnxRuntime):
        def run(self, batch):
            print("INFERRING", flush=True)
            time.sleep(300)
            return super().run(batch)

    settings = load_settings(data_dir=Path(sys.argv[1]), environ={})
    db = open_database(settings.database_url)
    engine = Engine(settings, db, options=EngineOptions(lease_s=1.0), worker_id="doomed",
                    runtime_factory=lambda w, o, i, label: Hanging(w, o, i, label))
    engine.run_once()
    """
)


def _job(db: Database) -> Job:
    with db.session() as s:
        return s.scalars(select(Job)).one()


def test_sigkill_mid_job_then_lease_expiry_and_takeover(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
        sync_deployments(s, [DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live")])
    uid = index_series(db, settings, [make_dx(bright_lesion=True)])
    with db.session() as s:
        enqueue_for_series(s, uid)

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the child is inside inference
        assert line.strip() == "INFERRING", child.stderr.read() if child.stderr else line
        job = _job(db)
        assert (job.status, job.lease_owner, job.attempts) == ("running", "doomed", 1)
        time.sleep(1.5)  # longer than the lease: the live worker's heartbeat keeps it
        job = _job(db)
        assert job.lease_owner == "doomed" and job.lease_expires_at is not None
        assert job.lease_expires_at > utcnow()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    survivor = Engine(settings, db, options=EngineOptions(lease_s=30.0, poll_interval_s=0.1), worker_id="survivor")
    deadline = time.monotonic() + 10  # the dead worker's lease runs out within a second
    while _job(db).status != "done" and time.monotonic() < deadline:
        survivor.run_once()
        time.sleep(0.1)

    job = _job(db)
    assert (job.status, job.attempts, job.lease_owner) == ("done", 2, None)
    with db.session() as s:
        predictions = list(s.scalars(select(Prediction)))
    assert len(predictions) == 1
    assert predictions[0].SeriesInstanceUID == uid and predictions[0].job_id == job.id
    assert predictions[0].score > 0.99 and predictions[0].mode == "live"
    assert survivor.run_until_idle(5) == 0  # nothing left, nothing run twice
