"""kill -9 of the server in the middle of a storescu run loses no acknowledged instance."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from radgate.db import Instance, open_database
from tests.dicomgen import make_dx
from tests.helpers.datadir import make_data_dir

pytestmark = pytest.mark.slow


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    make_data_dir(data_dir)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radgate",
            "serve",
            "--data-dir",
            str(data_dir),
            "--dicom-port",
            "0",
            "--http-port",
            "0",
            "--log-format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("{") and json.loads(line).get("event") == "listening":
            return proc, int(json.loads(line)["dicom_port"])
    proc.kill()
    raise AssertionError("radgate serve did not report ready")


def test_kill_9_loses_no_acknowledged_instance(tmp_path: Path) -> None:
    files = tmp_path / "in"
    files.mkdir()
    study = "1.2.826.0.1.3680043.10.543.900"
    for i in range(300):
        make_dx(study, f"{study}.1", f"{study}.1.{i}", size=256, seed=i).save_as(
            files / f"{i:04d}.dcm", enforce_file_format=True
        )
    data_dir = tmp_path / "data"
    proc, port = start_server(data_dir)
    sender = subprocess.Popen(
        ["storescu", "-aec", "RADGATE", "-v", "+sd", "-nh", "127.0.0.1", str(port), str(files)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TCP_NODELAY="1"),
    )
    assert sender.stderr is not None
    acked: list[str] = []
    current = None
    for line in sender.stderr:
        m = re.search(r"Sending file: (.+)$", line)
        if m:
            current = m.group(1).strip()
        elif "Received Store Response (Success)" in line and current:
            acked.append(current)
            if len(acked) == 60:
                os.kill(proc.pid, signal.SIGKILL)  # in the middle of the run
    sender.wait(timeout=60)
    proc.wait(timeout=10)
    assert 60 <= len(acked) < 300, f"{len(acked)} acknowledged: the kill did not land mid-run"

    db = open_database(f"sqlite:///{data_dir / 'radgate.sqlite'}")
    with db.session() as s:
        rows = {r.SOPInstanceUID: r for r in s.scalars(select(Instance)).all()}
    for path in acked:
        ds = pydicom.dcmread(path)
        row = rows.get(ds.SOPInstanceUID)
        assert row is not None, f"acknowledged instance {ds.SOPInstanceUID} is missing after kill -9"
        stored = data_dir / "instances" / row.path
        assert pydicom.dcmread(stored).PixelData == ds.PixelData
        assert hashlib.sha256(stored.read_bytes()).hexdigest()  # readable, whole file

    # The restarted server accepts the rest: nothing acknowledged twice becomes two copies.
    proc2, port2 = start_server(data_dir)
    try:
        result = subprocess.run(
            ["storescu", "-aec", "RADGATE", "+sd", "127.0.0.1", str(port2), str(files)],
            capture_output=True,
            env=dict(os.environ, TCP_NODELAY="1"),
            timeout=120,
        )
        assert result.returncode == 0
    finally:
        proc2.terminate()
        proc2.wait(timeout=30)
    with db.session() as s:
        all_rows = s.scalars(select(Instance)).all()
    assert len(all_rows) == 300 and {r.revision for r in all_rows} == {1}
    db.dispose()
