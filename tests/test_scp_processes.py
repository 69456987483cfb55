"""Associations served by SCP processes behind the gateway's listening socket (ingest.scp_processes)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]
from sqlalchemy import select

from radgate.config import ConfigError, Settings, load_settings
from radgate.db import Instance, Rejection, Series
from radgate.gateway import Gateway
from radgate.ingest.journal import IngestJournal
from radgate.ingest.parse import parse_part10
from radgate.ingest.scpprocs import ScpProcesses, journal_dir
from radgate.ingest.store import InstanceStore
from tests.dicomgen import make_dx, to_bytes
from tests.helpers.datadir import make_data_dir

ENV = dict(os.environ, TCP_NODELAY="1")
UID = "1.2.826.0.1.3680043.10.543.81"


@contextlib.contextmanager
def _running(
    settings: Settings, processes: int = 2, max_associations: int | None = None
) -> Iterator[Gateway]:
    """A gateway whose associations run in ``processes`` SCP processes."""
    settings.ingest.scp_processes = processes
    if max_associations is not None:
        settings.server.max_associations = max_associations
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.db.dispose()


@pytest.fixture
def two(settings: Settings) -> Iterator[Gateway]:
    with _running(settings) as gw:
        yield gw


def _procs(gw: Gateway) -> ScpProcesses:
    assert isinstance(gw.dicom, ScpProcesses)
    return gw.dicom


def _ae() -> AE:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(DigitalXRayImageStorageForPresentation)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 30
    return ae


def _stored(gw: Gateway) -> dict[str, Instance]:
    with gw.db.session() as s:
        return {r.SOPInstanceUID: r for r in s.scalars(select(Instance))}


def _intact(gw: Gateway, row: Instance) -> bool:
    data = gw.store.path_of(row).read_bytes()
    parsed = parse_part10(data)
    return (
        parsed.sha256 == row.sha256 and hashlib.sha256(data[parsed.body_offset :]).hexdigest() == row.sha256
    )


def _segments(settings: Settings) -> list[Path]:
    return sorted(settings.data_dir.glob("journal/**/*.jnl"))


@pytest.mark.parametrize(("raw", "expected"), [("2", 2), ("auto", "auto"), ("1", 1)])
def test_the_setting_takes_a_count_or_auto(raw: str, expected: object) -> None:
    assert load_settings(environ={"RADGATE_INGEST_SCP_PROCESSES": raw}).ingest.scp_processes == expected


@pytest.mark.parametrize("raw", ["0", "many", "-1"])
def test_a_bad_count_is_one_line_naming_value_and_fix(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"RADGATE_INGEST_SCP_PROCESSES": raw})
    message = str(err.value)
    assert "\n" not in message
    assert "ingest.scp_processes" in message and repr(raw) in message and '"auto"' in message


def test_a_bad_count_in_the_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "radgate.toml"
    config.write_text("[ingest]\nscp_processes = 1.5\n")
    with pytest.raises(
        ConfigError, match=r"radgate.toml: Setting 'ingest.scp_processes' must be a whole number"
    ):
        load_settings(config=config, environ={})


def test_four_associations_over_two_processes_store_and_checkpoint(
    two: Gateway, settings: Settings, tmp_path: Path
) -> None:
    folders = []
    for k in range(4):
        folder = tmp_path / f"batch{k}"
        folder.mkdir()
        for i in range(10):
            ds = make_dx(f"{UID}.{k}", f"{UID}.{k}.1", f"{UID}.{k}.1.{i}", seed=i)
            ds.save_as(folder / f"{i}.dcm", enforce_file_format=True)
        folders.append(folder)
    port = str(two.dicom.port)
    procs = [
        subprocess.Popen(
            ["storescu", "-aec", "RADGATE", "-aet", "MODALITY", "+sd", "127.0.0.1", port, str(f)],
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    stored = _stored(two)
    assert len(stored) == 40 and all(_intact(two, row) for row in stored.values())
    with two.db.session() as s:
        assert sorted(r.num_instances for r in s.scalars(select(Series))) == [10, 10, 10, 10]
    pids = _procs(two).pids
    assert len(set(pids)) == 2 and os.getpid() not in pids
    two.dicom.stop()  # drains the workers; each checkpoints its journal
    assert not any(_is_running(pid) for pid in pids)
    assert _segments(settings) == []
    assert len(_stored(two)) == 40


def test_a_killed_worker_loses_nothing_acknowledged_and_the_next_association_is_served(
    two: Gateway, settings: Settings
) -> None:
    procs = _procs(two)
    assoc = _ae().associate("127.0.0.1", procs.port, ae_title="RADGATE")
    assert assoc.is_established
    acknowledged: list[str] = []
    for i in range(5):
        ds = make_dx(f"{UID}.9", f"{UID}.9.1", f"{UID}.9.1.{i}", seed=i)
        if int(assoc.send_c_store(ds).Status) == 0x0000:
            acknowledged.append(ds.SOPInstanceUID)
    assert len(acknowledged) == 5
    (serving,) = [w for w in procs._workers if w.active == 1]
    others = [w.process.pid for w in procs._workers if w is not serving]
    # Kill it while it stores more: those are never acknowledged, or acknowledged and then kept.
    sender = threading.Thread(target=_send_more, args=(assoc, acknowledged), daemon=True)
    sender.start()
    time.sleep(0.2)
    os.kill(serving.process.pid, signal.SIGKILL)
    sender.join(timeout=60)
    assert not sender.is_alive()
    deadline = time.monotonic() + 10  # the requestor's DUL notices the closed connection on its own
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert assoc.is_aborted and not assoc.is_established  # the association went with its process

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _replaced(procs, serving.index, serving.process.pid):
        time.sleep(0.1)
    assert _replaced(procs, serving.index, serving.process.pid)
    assert set(others) <= set(procs.pids)  # the other worker kept running
    assert list(journal_dir(settings, serving.index).glob("*.jnl")) == []  # replayed, then dropped

    later = _ae().associate("127.0.0.1", procs.port, ae_title="RADGATE")
    assert later.is_established
    ds = make_dx(f"{UID}.9", f"{UID}.9.1", f"{UID}.9.1.1000", seed=1000)
    assert int(later.send_c_store(ds).Status) == 0x0000
    later.release()
    acknowledged.append(ds.SOPInstanceUID)

    stored = _stored(two)
    assert set(acknowledged) <= set(stored)
    assert all(_intact(two, stored[uid]) for uid in acknowledged)
    assert list(two.store.tmp.glob(f"w{serving.index}-*.part")) == []


def _send_more(assoc: object, acknowledged: list[str]) -> None:
    for i in range(5, 200):
        ds = make_dx(f"{UID}.9", f"{UID}.9.1", f"{UID}.9.1.{i}", size=256, seed=i)
        try:
            status = assoc.send_c_store(ds)  # type: ignore[attr-defined]
        except Exception:
            return
        if "Status" not in status or int(status.Status) != 0x0000:
            return
        acknowledged.append(ds.SOPInstanceUID)


def _replaced(procs: ScpProcesses, index: int, old_pid: int) -> bool:
    w = procs._workers[index]
    return w.process.pid != old_pid and w.ready.is_set() and not w.gone


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_allowlist_refusals_and_rejections_are_recorded_by_the_workers(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=make_data_dir(tmp_path / "d"),
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        server__allow_ae=["MODALITY@127.0.0.1"],
        ingest__scp_processes=2,
    )
    bad = make_dx(f"{UID}.7", f"{UID}.7.1", f"{UID}.7.1.1")
    del bad.StudyInstanceUID
    with Gateway(settings) as gw:
        intruder = AE(ae_title="INTRUDER")
        intruder.add_requested_context(DigitalXRayImageStorageForPresentation)
        refused = intruder.associate("127.0.0.1", gw.dicom.port, ae_title="RADGATE")
        assert refused.is_rejected
        assoc = _ae().associate("127.0.0.1", gw.dicom.port, ae_title="RADGATE")
        status = assoc.send_c_store(bad)
        assoc.release()
        assert int(status.Status) == 0xC000  # cannot understand, PS3.4 B.2.3
        assert "StudyInstanceUID is missing" in str(status.ErrorComment)
        with gw.db.session() as s:
            rejections = s.scalars(select(Rejection)).all()
        reasons = [r.reason for r in rejections]
        assert any("INTRUDER" in r and "allowlist" in r for r in reasons)
        quarantined = [r for r in rejections if r.reason and "StudyInstanceUID is missing" in r.reason]
        assert (
            len(quarantined) == 1
            and (settings.quarantine_dir / str(quarantined[0].quarantine_path)).is_file()
        )
        assert not _stored(gw)
        gw.db.dispose()


def test_a_journal_a_worker_left_is_replayed_when_the_store_opens(settings: Settings) -> None:
    ds: Dataset = make_dx(f"{UID}.8", f"{UID}.8.1", f"{UID}.8.1.1")
    data = to_bytes(ds)
    parsed = parse_part10(data)
    journal = IngestJournal(journal_dir(settings, 1))
    header = {
        "sha256": parsed.sha256,
        "body": parsed.body_offset,
        "source": "dimse",
        "calling_ae": "MODALITY",
    }
    journal.append([(header, data)])
    journal.close()  # as a worker that died leaves it
    from radgate.db import database_for

    db = database_for(settings)
    store = InstanceStore(settings, db)
    try:
        stored = {r.SOPInstanceUID: r for r in _rows(store)}
        assert parsed.SOPInstanceUID in stored
        assert store.path_of(stored[parsed.SOPInstanceUID]).read_bytes() == data
        assert _segments(settings) == []
    finally:
        store.close()
        db.dispose()


def _rows(store: InstanceStore) -> list[Instance]:
    with store.db.session() as s:
        return list(s.scalars(select(Instance)))


_FAILING_FDATASYNC = """
import os

_flag = os.environ.get("RADGATE_TEST_FDATASYNC_FAILS_WHILE")
if _flag:  # test-only: os.fdatasync fails while this file exists (an SCP process's disk going bad)
    _real = os.fdatasync

    def _fdatasync(fd):
        if os.path.exists(_flag):
            raise OSError(5, "Input/output error (simulated)")
        return _real(fd)

    os.fdatasync = _fdatasync
"""


def test_a_worker_whose_journal_flush_fails_acknowledges_nothing_and_recovers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SCP processes' own disk writes fail (their journal's fdatasync): every C-STORE of the time gets
    a failure status, the gateway commits no row, the worker's journal keeps no record, and once the disk
    is back the same processes store again. The fault is injected into the spawned interpreters through a
    ``sitecustomize`` on their PYTHONPATH; the gateway's own process is untouched."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_FAILING_FDATASYNC)
    flag = tmp_path / "disk-is-bad"
    flag.touch()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RADGATE_TEST_FDATASYNC_FAILS_WHILE", str(flag))
    with _running(settings) as gw:
        assoc = _ae().associate("127.0.0.1", _procs(gw).port, ae_title="RADGATE")
        bad = [int(assoc.send_c_store(make_dx(sop_uid=f"{UID}.90.{i}", seed=i)).Status) for i in range(3)]
        assoc.release()
        assert bad == [0xA700] * 3  # out of resources (PS3.4 B.2.3): nothing acknowledged
        assert _stored(gw) == {}
        records = [r for path in _segments(settings) for r in IngestJournal.read(path)]
        assert records == []
        flag.unlink()  # the disk is back
        assoc = _ae().associate("127.0.0.1", _procs(gw).port, ae_title="RADGATE")
        good = [int(assoc.send_c_store(make_dx(sop_uid=f"{UID}.91.{i}", seed=i)).Status) for i in range(3)]
        assoc.release()
        assert good == [0x0000] * 3
        stored = _stored(gw)
        assert sorted(stored) == [f"{UID}.91.{i}" for i in range(3)]
        assert all(_intact(gw, row) for row in stored.values())


def test_the_association_limit_holds_over_processes(settings: Settings) -> None:
    """server.max_associations = 3 over 2 processes: three associations are served, the fourth is refused
    (A-ASSOCIATE-RJ, local limit exceeded), as with one process. Each worker used to take ceil(3 / 2) = 2,
    so four were served."""
    with _running(settings, max_associations=3) as gw:
        port = _procs(gw).port
        held = [_ae().associate("127.0.0.1", port, ae_title="RADGATE") for _ in range(3)]
        assert all(a.is_established for a in held)
        excess = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
        assert excess.is_rejected
        rj = excess.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02)  # PS3.8 Table 9-21
        held[0].release()
        time.sleep(0.5)
        again = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
        assert again.is_established
        for assoc in (again, *held[1:]):
            assoc.release()


def test_no_more_processes_than_associations_allowed(settings: Settings) -> None:
    with _running(settings, max_associations=1) as gw:
        port = _procs(gw).port
        assert len(_procs(gw).pids) == 1
        held = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
        assert held.is_established
        assert _ae().associate("127.0.0.1", port, ae_title="RADGATE").is_rejected
        held.release()
