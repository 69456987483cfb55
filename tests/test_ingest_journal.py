"""The ingest journal: one disk flush per acknowledged instance, and recovery of what a crash (power loss)
took from the instance files and the rows that were committed without waiting for the disk."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from radgate.config import Settings
from radgate.db import Instance, Series, open_database
from radgate.ingest import InstanceStore
from radgate.ingest import store as store_module
from radgate.ingest.journal import _HEAD, MAGIC, IngestJournal
from tests.dicomgen import make_dx, to_bytes

STUDY = "1.2.826.0.1.3680043.10.543.1501"
SERIES = f"{STUDY}.1"


@pytest.fixture
def store_on(any_db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store_module, "IDLE_CHECKPOINT_S", 3600.0)  # no checkpoint unless a test asks
    db = open_database(any_db_url)
    store = InstanceStore(settings, db)
    yield store
    store.close()
    db.dispose()


def _payloads(n: int, start: int = 0) -> list[bytes]:
    return [to_bytes(make_dx(STUDY, SERIES, f"{SERIES}.{i}", seed=i)) for i in range(start, start + n)]


def _crash(store: InstanceStore) -> None:
    """The process dies: no checkpoint, the journal's lock goes with it."""
    journal = store._journal
    assert journal is not None
    store._closing = True
    store._journal = None
    journal.close()


def _rows(store: InstanceStore) -> dict[str, Instance]:
    with store.db.session() as s:
        return {r.SOPInstanceUID: r for r in s.scalars(select(Instance))}


def test_one_flush_per_instance(store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    payloads = _payloads(4)
    assert store_on.store_bytes(payloads[0], source="dimse").outcome == "stored"  # directories made once
    calls: list[str] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for data in payloads[1:]:
        assert store_on.store_bytes(data, source="dimse").outcome == "stored"
    if store_on.db.backend == "sqlite":
        assert calls == ["fdatasync"] * 3, calls  # the journal's, nothing else (SQLite: synchronous=NORMAL)
    assert calls.count("fdatasync") == 3 and "fsync" not in calls
    calls.clear()
    assert store_on.checkpoint() == 1  # the files, their directory and the database reach the disk
    assert calls and not list((store_on.settings.data_dir / "journal").glob("*.jnl"))


def test_recovery_restores_lost_rows_and_files(
    any_db_url: str, settings: Settings, store_on: InstanceStore
) -> None:
    payloads = _payloads(6)
    for data in payloads:
        assert store_on.store_bytes(data, source="dimse", calling_ae="MODALITY").outcome == "stored"
    rows = _rows(store_on)
    _crash(store_on)
    # What a power loss can take: the last commits (made without waiting for the disk) and file contents.
    lost_rows = [f"{SERIES}.4", f"{SERIES}.5"]
    with store_on.db.session() as s:
        s.execute(delete(Instance).where(Instance.SOPInstanceUID.in_(lost_rows)))
        s.get(Series, SERIES).num_instances = 4  # type: ignore[union-attr]
    (store_on.settings.store_dir / rows[f"{SERIES}.1"].path).write_bytes(b"")  # delayed allocation
    (store_on.settings.store_dir / rows[f"{SERIES}.2"].path).unlink()
    (store_on.settings.store_dir / rows[f"{SERIES}.5"].path).unlink()

    db2 = open_database(any_db_url)
    store2 = InstanceStore(settings, db2)  # the restart: replays the journal
    try:
        after = _rows(store2)
        assert set(after) == {f"{SERIES}.{i}" for i in range(6)}
        for i, data in enumerate(payloads):
            row = after[f"{SERIES}.{i}"]
            assert row.revision == 1 and row.calling_ae == "MODALITY"
            assert (settings.store_dir / row.path).read_bytes() == data
        with store2.db.session() as s:
            assert s.get(Series, SERIES).num_instances == 6  # type: ignore[union-attr]
            assert s.scalar(select(func.count()).select_from(Instance)) == 6
        assert not list((settings.data_dir / "journal").glob("*.jnl"))  # replayed, then dropped
        assert store2._journal is not None  # and it journals again
        assert store2.store_bytes(payloads[0], source="dimse").outcome == "duplicate"
    finally:
        store2.close()
        db2.dispose()


def test_replaying_a_duplicate_from_another_sender_leaves_the_stored_copy(
    any_db_url: str, settings: Settings, store_on: InstanceStore
) -> None:
    """The journal holds duplicates too (its append starts before the transaction finds one): replaying
    one whose file meta differs (another sender's implementation UID) must not rewrite the stored copy."""
    ds = make_dx(STUDY, SERIES, f"{SERIES}.1")
    first = to_bytes(ds)
    ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.543.999"
    again = to_bytes(ds)
    assert first != again
    assert store_on.store_bytes(first, source="dimse").outcome == "stored"
    assert store_on.store_bytes(again, source="dimse").outcome == "duplicate"
    [row] = _rows(store_on).values()
    journal = store_on._journal
    assert journal is not None and journal._current is not None
    assert [r.payload for r in IngestJournal.read(journal._current.path)] == [first, again]
    _crash(store_on)
    db2 = open_database(any_db_url)
    store2 = InstanceStore(settings, db2)  # the restart replays both records
    try:
        assert [(r.revision, r.path) for r in _rows(store2).values()] == [(1, row.path)]
        assert (settings.store_dir / row.path).read_bytes() == first
    finally:
        store2.close()
        db2.dispose()


def test_a_torn_last_record_is_ignored(any_db_url: str, settings: Settings, store_on: InstanceStore) -> None:
    payloads = _payloads(3)
    for data in payloads[:2]:
        assert store_on.store_bytes(data, source="dimse").ok
    _crash(store_on)
    [segment] = list((settings.data_dir / "journal").glob("*.jnl"))
    assert [r.payload for r in IngestJournal.read(segment)] == payloads[:2]
    # A third record whose flush never finished: its header reached the disk, half of its payload did not.
    third = payloads[2]
    header = json.dumps({"path": "x", "sha256": hashlib.sha256(third).hexdigest(), "body": 0}).encode()
    torn = third[: len(third) // 2] + bytes(len(third) - len(third) // 2)
    with segment.open("ab") as f:
        f.write(_HEAD.pack(MAGIC, len(header), len(third), zlib.crc32(header)) + header + torn)
    assert [r.payload for r in IngestJournal.read(segment)] == payloads[:2]

    with store_on.db.session() as s:  # both rows lost
        s.execute(delete(Instance))
    db2 = open_database(any_db_url)
    store2 = InstanceStore(settings, db2)
    try:
        assert set(_rows(store2)) == {f"{SERIES}.0", f"{SERIES}.1"}
    finally:
        store2.close()
        db2.dispose()


def test_a_second_store_on_the_same_data_directory_syncs_on_its_own(
    any_db_url: str, settings: Settings, store_on: InstanceStore
) -> None:
    """`radgate import` beside a running `radgate serve`: the journal has one owner."""
    db2 = open_database(any_db_url)
    other = InstanceStore(settings, db2)
    try:
        assert other._journal is None and store_on._journal is not None
        a, b = _payloads(2)
        assert other.store_bytes(a, source="import").outcome == "stored"
        assert store_on.store_bytes(b, source="dimse").outcome == "stored"
        assert set(_rows(store_on)) == {f"{SERIES}.0", f"{SERIES}.1"}
    finally:
        other.close()
        db2.dispose()


def test_a_failed_commit_takes_its_records_back(
    store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = _payloads(2)
    assert store_on.store_bytes(good, source="dimse").ok
    journal = store_on._journal
    assert journal is not None and journal._current is not None
    size = journal._size
    real_session = store_on._session

    @contextmanager
    def failing_commit(journaled: bool) -> Iterator[Any]:
        with real_session(journaled) as s:
            yield s
            raise OSError(28, "No space left on device (simulated, once the journal holds the record)")

    monkeypatch.setattr(store_on, "_session", failing_commit)
    outcome = store_on.store_bytes(bad, source="dimse")
    assert not outcome.ok and "disk is full" in (outcome.reason or "")
    monkeypatch.undo()
    assert set(_rows(store_on)) == {f"{SERIES}.0"}
    assert journal._size == size  # nothing of the failed instance is left for recovery to index
    assert [r.payload for r in IngestJournal.read(journal._current.path)] == [good]


def test_close_checkpoints_and_releases(settings: Settings, store_on: InstanceStore, any_db_url: str) -> None:
    for data in _payloads(3):
        assert store_on.store_bytes(data, source="dimse").ok
    store_on.close()
    assert not list((settings.data_dir / "journal").glob("*.jnl"))
    db2 = open_database(any_db_url)
    again = InstanceStore(settings, db2)
    try:
        assert again._journal is not None
    finally:
        again.close()
        db2.dispose()


def test_large_instances_bypass_the_journal(
    store_on: InstanceStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(store_module, "MAX_RECORD_BYTES", 1000)
    [data] = _payloads(1)
    assert store_on.store_bytes(data, source="dimse").outcome == "stored"
    journal = store_on._journal
    assert journal is not None and not journal.has_records
    [row] = _rows(store_on).values()
    assert (store_on.settings.store_dir / row.path).read_bytes() == data
