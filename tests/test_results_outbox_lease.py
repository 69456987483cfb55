"""The outbox on the shared lease primitive (radgate.db.lease.LeasedQueue): one lease/retry/abandon rule.

Before, the outbox had its own lease (`sending` until `lease_until`, no owner): a worker whose lease ran out
while it was still sending could record its outcome over the worker that took the row over. Migration 0022
adds the owner and the finish time and keeps the rows already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import select, text

from radgate.config import Settings, load_settings
from radgate.db import Database, database_for
from radgate.db.engine import alembic_config
from radgate.results import (
    FolderDestination,
    ResultIdentity,
    SendOutcome,
    build_objects,
    deliver_pending,
    enqueue,
    results_store,
    retry,
    write_instance,
)
from radgate.results.outbox import OUTBOX
from radgate.results.tables import OutboxItem
from radgate.testing.results import chest_dx, example_result

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _queue_one(db: Database, settings: Settings, destination: str, key: str) -> None:
    source = chest_dx(rows=64, columns=64)
    objects = build_objects(example_result([source]), [source], ResultIdentity(key))
    sr = write_instance(objects[0][1], results_store(settings.data_dir), "SR")
    enqueue(db, [sr], [destination], T0, result_key=key, max_attempts=3)


def _row(db: Database) -> OutboxItem:
    with db.session() as s:
        return s.scalars(select(OutboxItem)).one()


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_one_that_took_over(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", environ={})
    db = database_for(settings, migrate=True)
    folder = FolderDestination(tmp_path / "pacs")
    _queue_one(db, settings, folder.name, "slow")
    store = results_store(settings.data_dir)
    inner: list[object] = []

    class SlowThenFails:
        """Sends so slowly that its lease runs out; meanwhile worker B takes the row over and sends it."""

        name = folder.name

        def send(self, files: Sequence[Path]) -> list[SendOutcome]:
            later = T0 + timedelta(seconds=11)  # past A's 10 s lease
            inner.append(deliver_pending(db, [folder], later, results_dir=store, worker="B"))
            return [SendOutcome(False, "timed out after a very long wait")] * len(files)

    report_a = deliver_pending(db, [SlowThenFails()], T0, results_dir=store, lease_s=10.0, worker="A")
    [report_b] = inner
    assert report_b.sent == 1  # type: ignore[attr-defined]
    assert (report_a.sent, report_a.retried, report_a.failed) == (0, 0, 0)  # A's outcome was not recorded
    row = _row(db)
    assert row.status == "sent" and row.attempts == 2 and row.lease_owner is None
    assert row.sent_at == row.finished_at == T0 + timedelta(seconds=11)
    assert len(list((tmp_path / "pacs").rglob("*.dcm"))) == 1
    db.dispose()


def test_failed_rows_end_with_their_finish_time_and_retry_clears_it(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", environ={})
    db = database_for(settings, migrate=True)

    class Refuses:
        name = "PACS@127.0.0.1:1"

        def send(self, files: Sequence[Path]) -> list[SendOutcome]:
            return [SendOutcome(False, "association rejected", permanent=True)] * len(files)

    _queue_one(db, settings, Refuses.name, "refused")
    report = deliver_pending(db, [Refuses()], T0, results_dir=results_store(settings.data_dir))
    assert report.failed == 1
    row = _row(db)
    assert row.status == "failed" and row.finished_at == T0 and row.last_attempt_at == T0
    assert row.last_error == "permanent failure: association rejected"
    assert retry(db, T0 + timedelta(hours=1)) == 1
    row = _row(db)
    assert (row.status, row.attempts, row.finished_at) == ("pending", 0, None)
    assert row.next_attempt_at == T0 + timedelta(hours=1)
    db.dispose()


def test_a_row_whose_worker_died_on_its_last_attempt_is_failed_not_resent_forever(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", environ={})
    db = database_for(settings, migrate=True)
    _queue_one(db, settings, "PACS@127.0.0.1:1", "dies")
    for attempt in range(3):  # three workers each claim it and die (their leases run out)
        with db.session() as s:
            now = T0 + timedelta(minutes=10 * attempt)
            ids = [r.id for r in OUTBOX.candidates(s, 10, now)]
            assert OUTBOX.claim(s, ids, f"w{attempt}", 60.0, now) == ids == [1]
    with db.session() as s:
        assert OUTBOX.candidates(s, 10, T0 + timedelta(hours=1)) == []  # no attempt left
        assert OUTBOX.reap(s, T0 + timedelta(hours=1)) == 1
    row = _row(db)
    assert row.status == "failed" and "lease expired" in (row.last_error or "")
    db.dispose()


def test_migration_0022_keeps_existing_outbox_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0021")  # the schema before the outbox moved onto the lease primitive
    from radgate.db import open_database

    old = open_database(url, migrate=False)
    columns = (
        '"SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", kind, result_key, revision, '
        "destination, path, status, attempts, max_attempts, created_at, next_attempt_at, lease_until, "
        "last_attempt_at, sent_at, last_error"
    )
    rows = [
        ("1.1", "sent", 1, "2026-03-01 08:00:00", None, "2026-03-01 08:00:05", "2026-03-01 08:00:05", None),
        ("1.2", "failed", 8, "2026-03-01 08:00:00", None, "2026-03-01 09:00:00", None, "gave up"),
        ("1.3", "pending", 1, "2026-03-01 08:00:10", None, "2026-03-01 08:00:00", None, "refused"),
        ("1.4", "sending", 1, "2026-03-01 08:00:00", "2026-03-01 08:05:00", "2026-03-01 08:00:00", None, None),
    ]
    with old.engine.begin() as conn:
        for uid, status, attempts, due, lease, last, sent, error in rows:
            conn.execute(
                text(
                    f"INSERT INTO result_outbox ({columns}) VALUES (:uid, '1.2.840.10008.5.1.4.1.1.88.34', "
                    "'9.1', '9.2', 'SR', 'k', 1, 'FOLDER', :path, :status, :attempts, 8, "
                    "'2026-03-01 08:00:00', :due, :lease, :last, :sent, :error)"
                ),
                dict(uid=uid, path=f"x/{uid}.dcm", status=status, attempts=attempts, due=due, lease=lease,
                     last=last, sent=sent, error=error),
            )
    old.dispose()

    db = open_database(url)  # migrates to the heads
    with db.session() as s:
        by_uid = {r.SOPInstanceUID: r for r in s.scalars(select(OutboxItem))}
    assert [by_uid[u].status for u in ("1.1", "1.2", "1.3", "1.4")] == ["sent", "failed", "pending", "sending"]
    assert by_uid["1.1"].finished_at == by_uid["1.1"].sent_at == datetime(2026, 3, 1, 8, 0, 5, tzinfo=UTC)
    assert by_uid["1.2"].finished_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert by_uid["1.3"].finished_at is None and by_uid["1.4"].lease_owner is None
    with db.session() as s:  # the pending row is due at 08:00:10; the sending one once its lease ran out
        due = [r.id for r in OUTBOX.candidates(s, 10, datetime(2026, 3, 1, 8, 6, tzinfo=UTC))]
    assert sorted(by_uid[u].id for u in ("1.3", "1.4")) == due
    db.dispose()
