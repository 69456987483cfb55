"""Group commit: instances stored at once by several threads share one transaction, and every one still
gets exactly the outcome (stored / duplicate / revision / failure) it would get alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from radgate.config import Settings
from radgate.db import Instance, Series, open_database
from radgate.ingest import InstanceStore, Status
from tests.dicomgen import make_dx, to_bytes


@pytest.fixture
def store_on(any_db_url: str, settings: Settings):
    db = open_database(any_db_url)
    yield InstanceStore(settings, db)
    db.dispose()


def slow_batches(store: InstanceStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record batch sizes and make each commit take a while, so that concurrent instances queue up."""
    sizes: list[int] = []
    real = store._commit_batch

    def commit_batch(batch: list[Any]) -> None:
        sizes.append(len(batch))
        time.sleep(0.05)
        real(batch)

    monkeypatch.setattr(store, "_commit_batch", commit_batch)
    return sizes


def run_all(store: InstanceStore, payloads: list[bytes]) -> list[Any]:
    results: list[Any] = [None] * len(payloads)
    start = threading.Barrier(len(payloads))

    def work(i: int) -> None:
        start.wait()
        results[i] = store.store_bytes(payloads[i], source="dimse")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_instances_share_commits_and_all_are_indexed(
    store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = slow_batches(store_on, monkeypatch)
    study, series = "1.2.826.0.1.3680043.10.543.77", "1.2.826.0.1.3680043.10.543.77.1"
    payloads = [to_bytes(make_dx(study, series, f"{series}.{i}", seed=i)) for i in range(12)]
    results = run_all(store_on, payloads)
    assert [r.outcome for r in results] == ["stored"] * 12
    assert max(sizes) > 1 and sum(sizes) == 12, sizes  # some commits held several instances
    with store_on.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Instance)) == 12
        assert s.get(Series, series).num_instances == 12  # type: ignore[union-attr]
        for row in s.scalars(select(Instance)):
            assert store_on.path_of(row).read_bytes() == payloads[int(row.SOPInstanceUID.rsplit(".", 1)[1])]
    assert list(Path(store_on.tmp).iterdir()) == []


def test_same_instance_twice_and_a_revision_in_one_batch(
    store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_batches(store_on, monkeypatch)
    ds = make_dx(sop_uid="1.2.826.0.1.3680043.10.543.78.1")
    same = to_bytes(ds)
    ds.SeriesDescription = "changed"
    changed = to_bytes(ds)
    results = run_all(store_on, [same, same, changed, to_bytes(make_dx(seed=5))])
    # In any order: the first of the three copies is stored, a different content is revision 2, and the
    # repeat of whatever was already stored is a duplicate.
    assert sorted(r.outcome for r in results) == ["duplicate", "revision", "stored", "stored"]
    with store_on.db.session() as s:
        rows = s.scalars(select(Instance).where(Instance.SOPInstanceUID == ds.SOPInstanceUID)).all()
        assert sorted(r.revision for r in rows) == [1, 2]
        assert all(store_on.path_of(r).is_file() for r in rows)


def test_one_failing_instance_does_not_fail_its_batch(
    store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = slow_batches(store_on, monkeypatch)
    bad_uid = "1.2.826.0.1.3680043.10.543.79.666"
    real_row = store_on._instance_row

    def instance_row(parsed: Any, *args: Any) -> Any:
        if parsed.SOPInstanceUID == bad_uid:
            raise OSError("disk full (simulated)")
        return real_row(parsed, *args)

    monkeypatch.setattr(store_on, "_instance_row", instance_row)
    payloads = [to_bytes(make_dx(sop_uid=f"1.2.826.0.1.3680043.10.543.79.{i}", seed=i)) for i in range(5)]
    payloads.append(to_bytes(make_dx(sop_uid=bad_uid)))
    results = run_all(store_on, payloads)
    by_uid = {r.SOPInstanceUID: r for r in results}
    assert by_uid[bad_uid].status == Status.OUT_OF_RESOURCES
    assert all(r.outcome == "stored" for u, r in by_uid.items() if u != bad_uid)
    with store_on.db.session() as s:
        stored = set(s.scalars(select(Instance.SOPInstanceUID)))
    assert stored == {u for u in by_uid if u != bad_uid}
    assert sum(sizes) >= 6


def _rows(store: InstanceStore, uid: str) -> list[Instance]:
    with store.db.session() as s:
        return list(s.scalars(select(Instance).where(Instance.SOPInstanceUID == uid).order_by(Instance.revision)))


def test_a_file_left_by_a_crash_is_replaced(store_on: InstanceStore) -> None:
    """A first copy is written straight to <SOP>.dcm; a crash before its commit leaves that file unreferenced."""
    ds = make_dx()
    data = to_bytes(ds)
    leftover = store_on.root / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(data[: len(data) // 2])  # half written when the power went
    outcome = store_on.store_bytes(data, source="dimse")
    assert (outcome.outcome, outcome.revision) == ("stored", 1)
    [row] = _rows(store_on, ds.SOPInstanceUID)
    assert store_on.path_of(row) == leftover and leftover.read_bytes() == data


def test_a_missing_revision_1_file_is_restored_by_the_same_bytes(store_on: InstanceStore) -> None:
    ds = make_dx()
    data = to_bytes(ds)
    assert store_on.store_bytes(data, source="dimse").outcome == "stored"
    [row] = _rows(store_on, ds.SOPInstanceUID)
    store_on.path_of(row).unlink()  # someone deleted it
    assert store_on.store_bytes(data, source="dimse").outcome == "duplicate"
    assert store_on.path_of(row).read_bytes() == data

    store_on.path_of(row).unlink()
    ds.SeriesDescription = "other content"
    changed = to_bytes(ds)
    outcome = store_on.store_bytes(changed, source="dimse")
    assert (outcome.outcome, outcome.revision) == ("revision", 2)
    r1, r2 = _rows(store_on, ds.SOPInstanceUID)
    assert not store_on.path_of(r1).exists()  # still missing: the new content is not revision 1's
    assert store_on.path_of(r2).name.endswith(".r2.dcm") and store_on.path_of(r2).read_bytes() == changed


def test_a_failing_journal_flush_acknowledges_nothing_over_dimse(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance is acknowledged only after the fdatasync of the journal holding it: when that flush
    fails, every C-STORE of the batch (four associations at once) gets a failure status, no row is
    committed and the journal keeps no record of them."""
    from pynetdicom import AE
    from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]

    from radgate.ingest.journal import IngestJournal

    store = gateway.store
    assert store._journal is not None
    flushes: list[int] = []

    def failing_fdatasync(fd: int) -> None:
        flushes.append(fd)
        time.sleep(0.02)  # the others queue up behind this flush
        raise OSError(5, "Input/output error (simulated)")

    def send(i: int, statuses: list[int]) -> None:
        ae = AE(ae_title="PEER")
        ae.add_requested_context(DigitalXRayImageStorageForPresentation)
        assoc = ae.associate("127.0.0.1", gateway.dicom.port, ae_title="RADGATE")
        for k in range(3):
            uid = f"1.2.826.0.1.3680043.10.543.80.{i}.{k}"
            statuses.append(int(assoc.send_c_store(make_dx(sop_uid=uid, seed=i * 3 + k)).Status))
        assoc.release()

    monkeypatch.setattr("os.fdatasync", failing_fdatasync)
    statuses: list[int] = []
    threads = [threading.Thread(target=send, args=(i, statuses)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.undo()
    assert flushes and statuses == [Status.OUT_OF_RESOURCES] * 12  # 0xA700, PS3.4 B.2.3
    with store.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Instance)) == 0
    assert [r for path in store._journal.segments() for r in IngestJournal.read(path)] == []
    good: list[int] = []
    send(9, good)  # the disk is back: the same gateway stores again
    assert good == [Status.SUCCESS] * 3
