"""kill -9 at random points of ingest, assembly and the decode check, 20 rounds (issue 17, "crash anywhere").

Each round starts the ingest side of a gateway (``tests/helpers/ingest_node.py``: store, DIMSE SCP,
assembler, pixel checker; radgate's durable defaults) on the same data directory, sends instances (new ones, plus some
already acknowledged and the ones a previous kill left unanswered) over C-STORE and SIGKILLs the server at
a random moment, while the assembler completes series (quiet period 0.3 s) and the pixel checker decodes
(RLE and native images). At the end a last server must bring every series to ``complete`` and every
instance to a checked pixel status, and the index must hold every acknowledged instance exactly once, each
with its whole file. The inference/publishing stages have their own kill test (test_engine_kill.py).

The suite runs 3 rounds (a start costs seconds); ``FAULTS_KILL_ROUNDS=20`` runs the loop of issue 17.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]

from tests.dicomgen import make_dx

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("FAULTS_KILL_ROUNDS", "3"))


class Node:
    """tests/helpers/ingest_node.py in its own process."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.ingest_node", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, PYTHONWARNINGS="ignore", RUST_BACKTRACE="0", **env),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            self.proc.kill()
            raise AssertionError("the ingest node did not start")
        self.dicom_port = int(json.loads(line)["dicom_port"])

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        db = sqlite3.connect(f"file:{self.data_dir / 'radgate.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()


def _datasets(round_no: int) -> list[pydicom.Dataset]:
    study = f"1.2.826.0.1.3680043.10.543.17.{round_no}"
    out = []
    for k in range(2):
        for i in range(6):
            ds = make_dx(study, f"{study}.{k}", f"{study}.{k}.{i}", size=128, seed=i)
            ds.InstanceNumber = i + 1
            if k == 1:
                ds.compress(RLELossless, encoding_plugin="pydicom")
            out.append(ds)
    return out


def _send(port: int, datasets: list[pydicom.Dataset], acked: set[str], stop: threading.Event) -> None:
    ae = AE(ae_title="KILLER")
    for ts in (ExplicitVRLittleEndian, RLELossless):
        ae.add_requested_context(DigitalXRayImageStorageForPresentation, ts)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    assoc = ae.associate("127.0.0.1", port, ae_title="RADGATE")
    if not assoc.is_established:
        return
    try:
        for ds in datasets:
            if stop.is_set():
                break
            status = assoc.send_c_store(ds)
            if status and "Status" in status and int(status.Status) == 0:
                acked.add(ds.SOPInstanceUID)
            if not assoc.is_established:
                break
    finally:
        if assoc.is_established:
            assoc.release()


@pytest.mark.timeout(120 + 90 * ROUNDS)
def test_kill_9_loop_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(17)
    data_dir = tmp_path / "data"
    env = {  # radgate's durable defaults (fsync, synchronous=FULL), a short quiet period
        "RADGATE_INGEST_FSYNC": "true",
        "RADGATE_DATABASE_SQLITE_SYNCHRONOUS": "FULL",
        "RADGATE_ASSEMBLY_QUIET_PERIOD_S": "0.3",
        "RADGATE_ASSEMBLY_POLL_INTERVAL_S": "0.1",
    }
    acked: set[str] = set()
    sent: dict[str, pydicom.Dataset] = {}
    kills = 0
    for round_no in range(ROUNDS):
        server = Node(data_dir, env)
        fresh = _datasets(round_no)
        unanswered = [ds for uid, ds in sent.items() if uid not in acked]
        again = rng.sample(sorted(acked), min(3, len(acked)))
        batch = unanswered + [sent[uid] for uid in again] + fresh
        for ds in fresh:
            sent[ds.SOPInstanceUID] = ds
        stop = threading.Event()
        sender = threading.Thread(target=_send, args=(server.dicom_port, batch, acked, stop))
        sender.start()
        time.sleep(rng.uniform(0.05, 1.5))  # mid-ingest, mid-assembly or mid-decode
        server.kill()
        kills += 1
        stop.set()
        sender.join(30)

    final = Node(data_dir, env)
    try:
        for _ in range(5):  # what never got an answer is sent again, as a modality retries, until answered
            unanswered = [ds for uid, ds in sent.items() if uid not in acked]
            if not unanswered:
                break
            _send(final.dicom_port, unanswered, acked, threading.Event())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = final.query(
                "SELECT (SELECT COUNT(*) FROM series WHERE status != 'complete') + "
                "(SELECT COUNT(*) FROM instances WHERE pixel_status = 'unchecked')"
            )[0][0]
            if pending == 0:
                break
            time.sleep(0.3)
        rows = final.query("SELECT SOPInstanceUID, sha256, path, pixel_status FROM instances")
        series = final.query("SELECT status, COUNT(*) FROM series GROUP BY status")
    finally:
        final.stop()

    indexed = [r[0] for r in rows]
    lost = acked - set(indexed)  # acknowledged, then missing: the one thing a kill must never cause
    duplicated = len(indexed) - len(set(indexed))
    partial = [r for r in rows if not (data_dir / "instances" / str(r[2])).is_file()]
    print(
        f"\nkill -9 loop: {ROUNDS} rounds, {kills} kills, {len(sent)} instances sent, {len(acked)} acknowledged "
        f"(before a kill or on a retry), acknowledged but lost {len(lost)}, duplicated {duplicated}, rows without their file "
        f"{len(partial)}, series {dict(series)}, pixel status {sorted({str(r[3]) for r in rows})}"
    )
    assert kills == ROUNDS
    assert not lost
    assert set(indexed) == set(sent) == acked  # in the end every instance is stored and acknowledged
    assert duplicated == 0 and not partial
    assert dict(series) == {"complete": 2 * ROUNDS}
    assert {r[3] for r in rows} == {"ok"}
    for uid, sha, path, _ in rows[:: max(1, len(rows) // 20)]:  # whole files: the hash of the dataset matches
        data = (data_dir / "instances" / str(path)).read_bytes()
        offset = 144 + int.from_bytes(data[140:144], "little")
        assert hashlib.sha256(data[offset:]).hexdigest() == sha, uid
    sqlite3.connect(data_dir / "radgate.sqlite").execute("PRAGMA integrity_check").fetchone()
