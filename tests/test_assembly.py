"""Study assembly: quiet period, expected counts, the incomplete-series policies and re-opening."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from radgate.assembly import Assembler
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Series, Study
from radgate.ingest import InstanceStore
from tests.dicomgen import make_dx, to_bytes

STUDY = "1.2.826.0.1.3680043.10.543.77"


def send(store: InstanceStore, series: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        out = store.store_bytes(to_bytes(make_dx(STUDY, series, f"{series}.{i}", seed=i)), source="import")
        assert out.ok


def test_quiet_period_completes_series_then_study(settings: Settings, db: Database) -> None:
    store = InstanceStore(settings, db)
    calls: list[tuple[str, bool]] = []

    def hook(session: Session, SeriesInstanceUID: str, partial: bool) -> None:
        calls.append((SeriesInstanceUID, partial))

    asm = Assembler(settings, db, [hook], lock=store.lock)
    send(store, f"{STUDY}.1", 3)
    assert not asm.run_once(utcnow())  # still inside the quiet period
    report = asm.run_once(utcnow() + timedelta(seconds=settings.assembly.quiet_period_s + 1))
    assert report.completed == [f"{STUDY}.1"] and report.studies_completed == [STUDY]
    assert calls == [(f"{STUDY}.1", False)]
    with db.session() as s:
        assert s.get(Study, STUDY).status == "complete"


def test_expected_count_completes_early(settings: Settings, db: Database) -> None:
    store = InstanceStore(settings, db)
    asm = Assembler(settings, db, lock=store.lock)
    send(store, f"{STUDY}.2", 2)
    asm.set_expected(f"{STUDY}.2", 3)
    assert not asm.run_once(utcnow()).completed
    send(store, f"{STUDY}.2", 1, start=2)
    assert asm.run_once(utcnow()).completed == [f"{STUDY}.2"]  # no quiet period needed


def _incomplete(settings: Settings, db: Database, policy: str) -> tuple[Assembler, list[tuple[str, bool]]]:
    settings.assembly.incomplete_policy = policy
    store = InstanceStore(settings, db)
    calls: list[tuple[str, bool]] = []
    asm = Assembler(settings, db, [lambda s, uid, partial: calls.append((uid, partial))], lock=store.lock)
    send(store, f"{STUDY}.3", 2)
    asm.set_expected(f"{STUDY}.3", 4)
    asm.run_once(utcnow() + timedelta(seconds=60))
    return asm, calls


def test_policy_process_partial(settings: Settings, db: Database) -> None:
    _, calls = _incomplete(settings, db, "process_partial")
    assert calls == [(f"{STUDY}.3", True)]
    with db.session() as s:
        series = s.get(Series, f"{STUDY}.3")
        assert series.status == "incomplete" and "2 of 4 expected" in series.note


def test_policy_skip(settings: Settings, db: Database) -> None:
    _, calls = _incomplete(settings, db, "skip")
    assert calls == []
    with db.session() as s:
        series = s.get(Series, f"{STUDY}.3")
        assert series.status == "incomplete" and series.note.startswith("skipped by policy")


def test_policy_wait(settings: Settings, db: Database) -> None:
    asm, calls = _incomplete(settings, db, "wait")
    assert calls == []
    with db.session() as s:
        series = s.get(Series, f"{STUDY}.3")
        assert series.status == "receiving" and series.note.startswith("waiting: 2 of 4")


def test_instance_after_completion_reopens_and_completes_again(settings: Settings, db: Database) -> None:
    store = InstanceStore(settings, db)
    calls: list[tuple[str, bool]] = []
    asm = Assembler(settings, db, [lambda s, uid, partial: calls.append((uid, partial))], lock=store.lock)
    send(store, f"{STUDY}.4", 2)
    asm.run_once(utcnow() + timedelta(seconds=60))
    send(store, f"{STUDY}.4", 1, start=5)  # a late instance
    with db.session() as s:
        assert s.get(Study, STUDY).status == "reopened"
        series = s.get(Series, f"{STUDY}.4")
        assert series.status == "receiving" and series.reopened_count == 1 and series.num_instances == 3
    asm.run_once(utcnow() + timedelta(seconds=120))
    assert calls == [(f"{STUDY}.4", False), (f"{STUDY}.4", False)]
    with db.session() as s:
        study = s.get(Study, STUDY)
        assert study.status == "complete" and study.reopened_count == 1


def test_expected_count_from_the_api_and_the_cli(gateway, tmp_path, admin_headers) -> None:  # type: ignore[no-untyped-def]
    """PUT /api/series/{uid}/expected and `radgate expect` reach the running assembler."""
    import httpx
    from typer.testing import CliRunner

    import radgate.cli as cli

    series = f"{STUDY}.9"
    send(gateway.store, series, 2)
    base = f"http://127.0.0.1:{gateway.http_port}"
    h = admin_headers
    r = httpx.put(f"{base}/api/series/{series}/expected", json={"count": 3}, headers=h)
    assert r.status_code == 200 and r.json()["expected_instances"] == 3
    assert httpx.put(f"{base}/api/series/1.2.3/expected", json={"count": 3}, headers=h).status_code == 404
    assert httpx.put(f"{base}/api/series/{series}/expected", json={"count": 0}, headers=h).status_code == 400
    cli.register_commands()
    data = ["--data-dir", str(gateway.settings.data_dir)]
    result = CliRunner().invoke(cli.app, ["expect", series, "4", *data])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli.app, ["expect", "1.2.3", "4", *data]).exit_code == 2
    with gateway.db.session() as s:
        assert s.get(Series, series).expected_instances == 4
