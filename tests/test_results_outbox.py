"""Sending results: C-STORE and STOW-RS into a real Orthanc, QIDO finds them in the original study; the
durable outbox retries with backoff, survives a restart without duplicates, gives up on permanent failures;
silent results never leave; the ``radgate outbox`` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from sqlalchemy import select
from typer.testing import CliRunner

from radgate.config import Settings
from radgate.db import Database, open_database
from radgate.results import (
    CStoreDestination,
    FolderDestination,
    ResultIdentity,
    SendOutcome,
    StowRsDestination,
    build_objects,
    deliver_pending,
    enqueue,
    list_outbox,
    parse_destination,
    publish,
    results_store,
    retry,
    write_instance,
)
from radgate.results.tables import OutboxItem
from radgate.testing import OrthancServer, free_port
from radgate.testing.results import chest_dx, example_result

pytestmark = pytest.mark.peers

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def orthanc() -> Iterator[OrthancServer]:
    with OrthancServer(aet="PACS") as server:
        yield server


def store_source(orthanc: OrthancServer, source: Dataset, tmp_path: Path) -> None:
    """Put the acquired image into the PACS first, as the modality would have."""
    path = tmp_path / f"{source.SOPInstanceUID}.dcm"
    source.save_as(path, enforce_file_format=True)
    assert CStoreDestination(orthanc.aet, orthanc.host, orthanc.dicom_port).send([path]) == [
        SendOutcome(True)
    ]


def publish_live(
    db: Database, settings: Settings, destinations: Sequence[str], key: str
) -> tuple[Dataset, list]:
    source = chest_dx()
    stored = publish(
        db,
        example_result([source]),
        [source],
        ResultIdentity(key),
        release="released",
        destinations=destinations,
        results_dir=results_store(settings.data_dir),
        now=T0,
    )
    return source, stored


def uid_counts(orthanc: OrthancServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for uid in orthanc.instance_uids():
        counts[uid] = counts.get(uid, 0) + 1
    return counts


@pytest.mark.parametrize("protocol", ["c-store", "stow-rs"])
def test_sr_and_gsps_reach_orthanc_in_the_original_study(
    orthanc: OrthancServer, db: Database, settings: Settings, tmp_path: Path, protocol: str
) -> None:
    destination = (
        CStoreDestination(orthanc.aet, orthanc.host, orthanc.dicom_port)
        if protocol == "c-store"
        else StowRsDestination(orthanc.dicomweb_url)
    )
    source, stored = publish_live(db, settings, [destination.name], f"orthanc-{protocol}")
    store_source(orthanc, source, tmp_path)
    assert [o.kind for o in stored] == ["SR", "PR"]

    report = deliver_pending(db, [destination], T0, results_dir=results_store(settings.data_dir))
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert {r.status for r in list_outbox(db)} == {"sent"}

    # QIDO-RS (PS3.18 10.6) on Orthanc's DICOMweb plugin: the SR and the GSPS are in the original study.
    qido = DICOMwebClient(orthanc.dicomweb_url)
    found = {
        item["00080018"]["Value"][0]: item["00080060"]["Value"][0]
        for item in qido.search_for_instances(study_instance_uid=source.StudyInstanceUID)
    }
    assert found == {
        source.SOPInstanceUID: "DX",
        stored[0].SOPInstanceUID: "SR",
        stored[1].SOPInstanceUID: "PR",
    }
    series = qido.search_for_series(study_instance_uid=source.StudyInstanceUID)
    assert len(series) == 3  # the image's series, the SR series, the GSPS series


def test_a_resend_after_a_restart_creates_no_duplicates(
    orthanc: OrthancServer, settings: Settings, tmp_path: Path
) -> None:
    """The worker dies after the PACS stored the objects but before it recorded "sent"."""

    class DiesAfterSending:
        def __init__(self, inner: CStoreDestination) -> None:
            self.inner = inner

        @property
        def name(self) -> str:
            return self.inner.name

        def send(self, files: Sequence[Path]) -> list[SendOutcome]:
            self.inner.send(files)
            raise KeyboardInterrupt("killed before recording the outcome")

    destination = CStoreDestination(orthanc.aet, orthanc.host, orthanc.dicom_port)
    db = open_database(settings.database_url)
    source, stored = publish_live(db, settings, [destination.name], "restart")
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(db, [DiesAfterSending(destination)], T0, results_dir=results_store(settings.data_dir))
    db.dispose()
    before = uid_counts(orthanc)
    assert all(before[o.SOPInstanceUID] == 1 for o in stored)

    restarted = open_database(settings.database_url)  # a new process: the outbox is on disk
    rows = list_outbox(restarted)
    assert {r.status for r in rows} == {"sending"}
    early = deliver_pending(
        restarted, [destination], T0 + timedelta(seconds=60), results_dir=results_store(settings.data_dir)
    )
    assert early.attempted == 0  # the dead worker's lease has not run out yet
    later = T0 + timedelta(seconds=301)
    report = deliver_pending(restarted, [destination], later, results_dir=results_store(settings.data_dir))
    assert report.sent == 2
    again = deliver_pending(restarted, [destination], later, results_dir=results_store(settings.data_dir))
    assert again.attempted == 0  # sent rows stay sent
    after = uid_counts(orthanc)
    assert all(after[o.SOPInstanceUID] == 1 for o in stored)  # same SOP Instance UIDs: no duplicates
    assert sum(after.values()) == sum(before.values())
    restarted.dispose()


def test_a_permanently_failing_destination_ends_failed_with_the_reason(
    orthanc: OrthancServer, db: Database, settings: Settings
) -> None:
    wrong_root = StowRsDestination(f"{orthanc.http_url}/no-such-dicomweb-root")
    publish_live(db, settings, [wrong_root.name], "permanent")
    report = deliver_pending(db, [wrong_root], T0, results_dir=results_store(settings.data_dir))
    assert (report.sent, report.retried, report.failed) == (0, 0, 2)
    rows = list_outbox(db)
    assert {r.status for r in rows} == {"failed"}
    assert all(r.attempts == 1 for r in rows)  # not retried: 404 cannot get better by waiting
    assert all(
        "permanent failure: STOW-RS to" in (r.last_error or "") and "HTTP 404" in (r.last_error or "")
        for r in rows
    )
    later = deliver_pending(
        db, [wrong_root], T0 + timedelta(days=1), results_dir=results_store(settings.data_dir)
    )
    assert later.attempted == 0


def test_transient_failures_back_off_exponentially_then_give_up(db: Database, settings: Settings) -> None:
    nobody = CStoreDestination("PACS", "127.0.0.1", free_port(), timeout_s=5)  # connection refused
    source = chest_dx(rows=64, columns=64)
    objects = build_objects(example_result([source]), [source], ResultIdentity("backoff"))
    sr = write_instance(objects[0][1], results_store(settings.data_dir), "SR")
    enqueue(db, [sr], [nobody.name], T0, result_key="backoff", max_attempts=4)
    kwargs = dict(results_dir=results_store(settings.data_dir), backoff_s=5.0, max_backoff_s=3600.0)

    def row() -> OutboxItem:
        with db.session() as s:
            return s.scalars(select(OutboxItem)).one()

    now = T0
    delays = []
    for attempt in (1, 2, 3):
        report = deliver_pending(db, [nobody], now, **kwargs)  # type: ignore[arg-type]
        assert report.retried == 1
        item = row()
        assert item.status == "pending" and item.attempts == attempt
        assert "could not connect" in (item.last_error or "") or "aborted" in (item.last_error or "")
        delays.append((item.next_attempt_at - now).total_seconds())
        early = deliver_pending(db, [nobody], item.next_attempt_at - timedelta(seconds=1), **kwargs)  # type: ignore[arg-type]
        assert early.attempted == 0  # not before its time
        now = item.next_attempt_at
    assert delays == [5.0, 10.0, 20.0]  # backoff_s * 2 ** (attempts - 1)
    final = deliver_pending(db, [nobody], now, **kwargs)  # type: ignore[arg-type]
    assert final.failed == 1
    item = row()
    assert item.status == "failed" and item.last_error is not None
    assert item.last_error.startswith("gave up after 4 attempts")
    assert retry(db, now) == 1  # after the PACS is fixed, an operator queues it again
    assert row().status == "pending" and row().attempts == 0


def test_unreleased_results_are_never_written_nor_sent(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = FolderDestination(tmp_path / "pacs-folder")
    source = chest_dx(rows=64, columns=64)
    result = example_result([source], explanation=True)
    store = results_store(settings.data_dir)
    for release in ("silent", "shadow", "withheld", "off"):
        stored = publish(
            db,
            result,
            [source],
            ResultIdentity(f"quiet-{release}"),
            release=release,
            destinations=[folder.name],
            results_dir=store,
            now=T0,
            heatmap=True,
        )
        assert stored == []
    assert list_outbox(db) == []
    assert not store.exists() or not any(store.rglob("*.dcm"))
    assert deliver_pending(db, [folder], T0, results_dir=store).attempted == 0
    assert not (tmp_path / "pacs-folder").exists()
    with pytest.raises(ValueError, match="release 'loud' is not one of released, withheld, silent, shadow, off"):
        publish(db, result, [source], ResultIdentity("x"), release="loud", destinations=[], results_dir=store)


def test_enqueue_is_idempotent_and_the_folder_destination_receives_every_object(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = FolderDestination(tmp_path / "pacs-folder")
    source = chest_dx(rows=64, columns=64)
    store = results_store(settings.data_dir)
    args = dict(release="released", destinations=[folder.name], results_dir=store, now=T0, heatmap=True)
    stored = publish(db, example_result([source], explanation=True), [source], ResultIdentity("f"), **args)  # type: ignore[arg-type]
    again = publish(db, example_result([source], explanation=True), [source], ResultIdentity("f"), **args)  # type: ignore[arg-type]
    assert [o.SOPInstanceUID for o in again] == [o.SOPInstanceUID for o in stored]
    assert [o.kind for o in stored] == ["SR", "PR", "SC"]
    assert len(list_outbox(db)) == 3  # the rebuild queued nothing new
    report = deliver_pending(db, [folder], T0, results_dir=store)
    assert report.sent == 3
    written = sorted(p.name for p in (tmp_path / "pacs-folder" / source.StudyInstanceUID).iterdir())
    assert written == sorted(f"{o.SOPInstanceUID}.dcm" for o in stored)


def test_destinations_parse_from_their_configuration_strings() -> None:
    cstore = parse_destination("PACS@pacs.example.org:104", calling_ae_title="RG")
    assert isinstance(cstore, CStoreDestination)
    assert (cstore.ae_title, cstore.host, cstore.port, cstore.calling_ae_title) == (
        "PACS",
        "pacs.example.org",
        104,
        "RG",
    )
    assert isinstance(parse_destination("https://pacs/dicom-web"), StowRsDestination)
    assert parse_destination("folder:/srv/out").name == "folder:/srv/out"
    with pytest.raises(ValueError, match="'pacs:104' is not understood; expected AET@HOST:PORT"):
        parse_destination("pacs:104")
    with pytest.raises(ValueError, match="1 to 16 characters"):
        parse_destination("A_VERY_LONG_AE_TITLE@h:104")


def test_outbox_cli_lists_sends_and_retries(settings: Settings, tmp_path: Path) -> None:
    from radgate.cli import results as _results  # noqa: F401  (registers the commands)
    from radgate.cli.app import app

    data_dir = settings.data_dir
    folder = tmp_path / "cli-folder"
    config = tmp_path / "radgate.toml"
    config.write_text(f'[results]\nfolder_destination = "{folder}"\n')
    db = open_database(settings.database_url)
    source, stored = publish_live(db, settings, [f"folder:{folder}"], "cli")
    db.dispose()
    runner = CliRunner()
    common = ["--data-dir", str(data_dir), "--config", str(config)]

    out = runner.invoke(app, ["outbox", "list", "--json", *common])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [(r["kind"], r["status"]) for r in rows] == [("PR", "pending"), ("SR", "pending")]

    out = runner.invoke(app, ["outbox", "destinations", "--json", *common])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == [{"name": f"folder:{folder}", "kind": "folder"}]

    out = runner.invoke(app, ["outbox", "send", *common])
    assert out.exit_code == 0, out.output
    assert "Sent 2, to retry 0, failed 0" in out.output
    assert len(list((folder / source.StudyInstanceUID).iterdir())) == 2

    out = runner.invoke(app, ["outbox", "list", "--status", "sent", *common])
    assert out.exit_code == 0, out.output
    assert out.output.count("│ sent ") == 2 and "pending" not in out.output

    out = runner.invoke(app, ["outbox", "retry", *common])
    assert out.exit_code == 0 and "0 failed row(s) queued again" in out.output

    out = runner.invoke(app, ["outbox", "list", "--status", "lost", *common])
    assert out.exit_code == 2 and "--status 'lost' is not one of" in out.output


def test_the_outbox_claims_and_records_on_sqlite_and_postgresql(any_db_url: str, tmp_path: Path) -> None:
    db = open_database(any_db_url)
    try:
        folder = FolderDestination(tmp_path / "pacs-folder")
        store = tmp_path / "results"
        source = chest_dx(rows=64, columns=64)
        result = example_result([source])
        args = dict(release="released", destinations=[folder.name], results_dir=store, now=T0)
        stored = publish(db, result, [source], ResultIdentity(f"backend-{db.backend}"), **args)  # type: ignore[arg-type]
        assert deliver_pending(db, [folder], T0, results_dir=store).sent == len(stored) == 2
        assert deliver_pending(db, [folder], T0, results_dir=store).attempted == 0
        assert {r.status for r in list_outbox(db)} == {"sent"}
    finally:
        db.dispose()
