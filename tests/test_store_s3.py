"""The instance store on an S3-compatible object store (``store.backend = "s3"``), against a real local server.

The server is moto's (``moto[server]``: ``ThreadedMotoServer``, a real HTTP S3 endpoint on 127.0.0.1 and a
random port); boto3 talks to it exactly as to any other endpoint. The peers on the DICOM side are DCMTK's
storescu and STOW-RS over HTTP. Not tested here: AWS itself and MinIO (see docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from sqlalchemy import select

from radgate.config import Settings, load_settings
from radgate.db import Instance, Rejection, database_for
from radgate.engine import Prediction
from radgate.errors import Invalid
from radgate.gateway import Gateway
from radgate.ingest.store import InstanceStore
from radgate.models import add_model
from radgate.storage import BlobStoreError, FilesystemBlobs, blobs_for
from radgate.storage.s3 import S3Blobs
from tests.dicomgen import to_bytes
from tests.helpers.auth import token_headers
from tests.helpers.datadir import make_data_dir
from tests.test_engine_support import build_package, make_dx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class S3Server:
    """moto's S3 server in this process; ``stop()`` / ``start()`` take it away and bring it back on the same
    port, with its objects (moto keeps them in this process's memory)."""

    port: int = 0
    server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials as an operator gives them: AWS_* variables (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "radgate-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "radgate-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"radgate-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


def _settings(tmp_path: Path, s3: S3Server, bucket: str, **overrides: Any) -> Settings:
    make_data_dir(tmp_path / "data")
    return load_settings(
        data_dir=tmp_path / "data",
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        assembly__quiet_period_s=0.3,
        assembly__poll_interval_s=0.1,
        store__backend="s3",
        store__s3_endpoint_url=s3.url,
        store__s3_bucket=bucket,
        store__s3_prefix="site-a",
        **overrides,
    )


def _wait(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _storescu(port: int, *files: Path) -> subprocess.CompletedProcess[str]:
    """storescu in one association; ``-nh``: it carries on after a failure status."""
    return subprocess.run(
        ["storescu", "-v", "-nh", "-aec", "RADGATE", "-aet", "MODALITY", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, env=dict(os.environ, TCP_NODELAY="1"), timeout=120,
    )


def _stow(gw: Gateway, *datasets: pydicom.Dataset) -> httpx.Response:
    boundary = "radgate-s3-test"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + to_bytes(ds) + b"\r\n" for ds in datasets
    ) + f"--{boundary}--\r\n".encode()
    return httpx.post(
        f"http://127.0.0.1:{gw.http_port}/dicomweb/studies",
        content=body,
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                 **token_headers(gw.db)},
        timeout=60,
    )


def _local_files(settings: Settings) -> list[Path]:
    return [p for p in settings.store_dir.rglob("*") if p.is_file()]


# ----------------------------------------------------------------------------------------------- the interface
@pytest.mark.parametrize("backend", ["filesystem", "s3"])
def test_blob_interface_on_both_backends(backend: str, tmp_path: Path, s3: S3Server, bucket: str) -> None:
    if backend == "s3":
        settings = _settings(tmp_path, s3, bucket)
    else:
        make_data_dir(tmp_path / "data")
        settings = load_settings(data_dir=tmp_path / "data", environ={})
    blobs = blobs_for(settings)
    assert isinstance(blobs, S3Blobs if backend == "s3" else FilesystemBlobs)
    blobs.check()
    key = "1.2.3/1.2.3.4/1.2.3.4.5.dcm"
    assert not blobs.exists(key)
    blobs.put(key, b"DICM bytes")
    assert blobs.exists(key) and blobs.read(key) == b"DICM bytes"
    if backend == "s3":
        assert s3.keys(bucket) == [f"site-a/{key}"]
        shutil.rmtree(settings.data_dir / "s3-cache")  # the cache is only a cache: read through again
    assert blobs.local_path(key).read_bytes() == b"DICM bytes"
    with blobs.open(key) as f:
        assert f.read() == b"DICM bytes"
    blobs.delete(key)
    assert not blobs.exists(key)
    with pytest.raises(FileNotFoundError):
        blobs.read(key)
    with pytest.raises(FileNotFoundError):
        blobs.local_path(key).read_bytes()  # S3: from local_path itself; a file: when it is opened
    with pytest.raises(ValueError, match="'../escape.dcm'"):
        blobs.put("../escape.dcm", b"x")


# ----------------------------------------------------------------------------------------------- ingest
def test_cstore_and_stow_into_s3_then_the_engine_reads_them(tmp_path: Path, s3: S3Server, bucket: str) -> None:
    """storescu and STOW-RS store into the bucket (no instance file on local disk), the rows commit, and the
    engine reads the objects (through the cache) and stores a prediction for each series; WADO-RS reads
    them back after the cache is removed."""
    settings = _settings(tmp_path, s3, bucket)
    settings.deployments = [{"name": "tiny-s3", "model": "tiny-ptx", "version": "1.0.0", "mode": "silent"}]
    db = database_for(settings)
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
    db.dispose()
    dimse = make_dx(view="PA", bright_lesion=True, rows=128)
    dimse.save_as(tmp_path / "pa.dcm", enforce_file_format=True)
    stowed = make_dx(view="PA", rows=128)
    with Gateway(settings) as gw:
        sent = _storescu(gw.dicom.port, tmp_path / "pa.dcm")
        assert sent.returncode == 0, sent.stderr
        r = _stow(gw, stowed)
        assert r.status_code == 200, r.text

        def predicted() -> bool:
            with gw.db.session() as s:
                return len(s.scalars(select(Prediction)).all()) == 2

        _wait(predicted)
        with gw.db.session() as s:
            rows = s.scalars(select(Instance)).all()
            predictions = s.scalars(select(Prediction)).all()
        assert sorted(f"site-a/{r.path}" for r in rows) == s3.keys(bucket)
        assert {p.SeriesInstanceUID for p in predictions} == {dimse.SeriesInstanceUID, stowed.SeriesInstanceUID}
        assert all(p.num_images == 1 for p in predictions)
        assert _local_files(settings) == []  # nothing of the instances on this disk but the cache
        assert not (settings.data_dir / "journal").exists() or not any((settings.data_dir / "journal").glob("*.jnl"))

        shutil.rmtree(settings.data_dir / "s3-cache")
        got = httpx.get(
            f"http://127.0.0.1:{gw.http_port}/dicomweb/studies/{stowed.StudyInstanceUID}/series/"
            f"{stowed.SeriesInstanceUID}/instances/{stowed.SOPInstanceUID}",
            headers={"Accept": 'multipart/related; type="application/dicom"', **token_headers(gw.db)},
            timeout=60,
        )
        assert got.status_code == 200
        assert stowed.PixelData in got.content  # read back from the bucket


def test_duplicate_and_revision_in_s3(tmp_path: Path, s3: S3Server, bucket: str) -> None:
    settings = _settings(tmp_path, s3, bucket)
    db = database_for(settings)
    store = InstanceStore(settings, db)
    try:
        ds = make_dx(rows=64)
        first = store.store_bytes(to_bytes(ds), source="test")
        again = store.store_bytes(to_bytes(ds), source="test")
        ds.PixelData = bytes(len(ds.PixelData))  # the same SOPInstanceUID with other pixels
        changed = store.store_bytes(to_bytes(ds), source="test")
        assert (first.outcome, again.outcome, changed.outcome) == ("stored", "duplicate", "revision")
        assert changed.revision == 2
        with db.session() as s:
            rows = s.scalars(select(Instance).order_by(Instance.revision)).all()
        assert [r.revision for r in rows] == [1, 2]
        assert s3.keys(bucket) == sorted(f"site-a/{r.path}" for r in rows)  # two objects, never overwritten
        assert pydicom.dcmread(store.path_of(rows[1])).PixelData == ds.PixelData
    finally:
        store.close()
        db.dispose()


def test_s3_down_mid_association_fails_what_was_not_stored_and_recovers(
    tmp_path: Path, s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops after the second of five objects: storescu gets 0xA700 with a reason for the other
    three, nothing acknowledged is lost (each row has its object), and the same send succeeds once the
    server is back (the first two are duplicates)."""
    settings = _settings(tmp_path, s3, bucket)
    study = make_dx().StudyInstanceUID
    files = []
    for i in range(5):
        path = tmp_path / f"{i}.dcm"
        make_dx(StudyInstanceUID=study).save_as(path, enforce_file_format=True)
        files.append(path)
    with Gateway(settings) as gw:
        blobs = gw.store.blobs
        real_put = blobs.put
        puts = []

        def put_then_stop_after_two(key: str, data: bytes | memoryview) -> None:
            real_put(key, data)
            puts.append(key)
            if len(puts) == 2:
                s3.stop()  # the real server goes away, mid-association

        monkeypatch.setattr(blobs, "put", put_then_stop_after_two)
        try:
            first = _storescu(gw.dicom.port, *files)
        finally:
            if len(puts) >= 2:
                s3.start()
        assert len(puts) == 2, first.stderr
        assert first.stderr.count("Received Store Response (Success)") == 2, first.stderr
        assert first.stderr.count("Received Store Response (Refused: OutOfResources)") == 3, first.stderr  # 0xA700
        with gw.db.session() as s:
            rows = s.scalars(select(Instance)).all()
            reasons = {r.reason for r in s.scalars(select(Rejection))}
        assert len(rows) == 2 and sorted(f"site-a/{r.path}" for r in rows) == s3.keys(bucket)
        assert reasons == {"radgate's object store is unavailable; the instance was not stored. The sender may retry."}

        again = _storescu(gw.dicom.port, *files)
        assert again.stderr.count("Received Store Response (Success)") == 5, again.stderr
        with gw.db.session() as s:
            rows = s.scalars(select(Instance)).all()
        assert len(rows) == 5 and {r.revision for r in rows} == {1}
        assert sorted(f"site-a/{r.path}" for r in rows) == s3.keys(bucket)


def test_pixel_check_waits_for_the_store_instead_of_quarantining(tmp_path: Path, s3: S3Server, bucket: str) -> None:
    """An object store that is away is no reason to mark an instance undecodable (the checker never retries
    one): the instance stays unchecked and is checked once the store is back."""
    from radgate.ingest.pixels import PixelChecker

    settings = _settings(tmp_path, s3, bucket)
    db = database_for(settings)
    store = InstanceStore(settings, db)
    try:
        assert store.store_bytes(to_bytes(make_dx()), source="test").outcome == "stored"
        shutil.rmtree(settings.data_dir / "s3-cache")  # the checker has to read the object
        checker = PixelChecker(store, db)
        s3.stop()
        try:
            checker.run_once()
        finally:
            s3.start()
        with db.session() as s:
            assert s.scalars(select(Instance.pixel_status)).one() == "unchecked"
            assert s.scalars(select(Rejection)).all() == []
        checker.run_once()
        with db.session() as s:
            assert s.scalars(select(Instance.pixel_status)).one() == "ok"
    finally:
        store.close()
        db.dispose()


# ----------------------------------------------------------------------------------------------- start-up
def test_a_bucket_that_does_not_exist_is_one_line_at_startup(tmp_path: Path, s3: S3Server) -> None:
    from radgate.services.startup import check_startup

    settings = _settings(tmp_path, s3, "no-such-bucket")
    with pytest.raises(Invalid) as caught:
        check_startup(settings, None)
    message = str(caught.value)
    assert "\n" not in message and "'no-such-bucket'" in message and "create it" in message, message

    env = dict(os.environ, PYTHONPATH=str(ROOT), RADGATE_STORE_BACKEND="s3", RADGATE_STORE_S3_BUCKET="no-such-bucket",
               RADGATE_STORE_S3_ENDPOINT_URL=s3.url)
    worker = subprocess.run(
        [sys.executable, "-m", "radgate", "worker", "--data-dir", str(settings.data_dir)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert worker.returncode == 2, worker.stdout + worker.stderr
    lines = [line for line in (worker.stdout + worker.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "'no-such-bucket'" in lines[0] and "store.s3_bucket" in lines[0], lines


def test_s3_without_a_bucket_is_a_config_error(tmp_path: Path) -> None:
    from radgate.config import ConfigError

    with pytest.raises(ConfigError, match="store.s3_bucket is empty"):
        load_settings(data_dir=tmp_path, environ={"RADGATE_STORE_BACKEND": "s3"})


def test_an_unreachable_store_is_a_blob_store_error(tmp_path: Path) -> None:
    from radgate.config import StoreSettings

    with socket_port() as port:  # nothing listens there
        blobs = S3Blobs(StoreSettings(backend="s3", s3_endpoint_url=f"http://127.0.0.1:{port}", s3_bucket="b"),
                        tmp_path / "cache")
        with pytest.raises(BlobStoreError, match="is unreachable"):
            blobs.check()


class socket_port:  # noqa: N801 - a context manager read as a phrase
    """A free TCP port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


# ----------------------------------------------------------------------------------------------- radgate score
@pytest.mark.slow
def test_score_reads_the_index_from_the_bucket(tmp_path: Path, s3: S3Server, bucket: str) -> None:
    """``radgate score --study-list`` on the S3 store: each Ray task opens its keys from the bucket (the cache
    is removed first, so nothing local is left to read)."""
    ray = pytest.importorskip("ray")
    import pyarrow.parquet as pq

    from radgate.ingest import import_paths
    from radgate.scoring import ScoreRequest, score

    settings = _settings(tmp_path, s3, bucket)
    db = database_for(settings)
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
    folder = tmp_path / "site"
    folder.mkdir()
    a = make_dx(bright_lesion=True)
    a.save_as(folder / "a.dcm", enforce_file_format=True)
    store = InstanceStore(settings, db)
    import_paths(store, [folder])
    store.close()
    shutil.rmtree(settings.data_dir / "s3-cache")
    studies = tmp_path / "studies.txt"
    studies.write_text(f"StudyInstanceUID\n{a.StudyInstanceUID}\n")
    out = tmp_path / "p.parquet"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = score(settings, db, ScoreRequest("tiny-ptx", "1.0.0", out, study_list=studies))
    finally:
        ray.shutdown()
        db.dispose()
    assert report.instances == 1
    table = pq.read_table(out)
    assert table.column("SeriesInstanceUID").to_pylist() == [a.SeriesInstanceUID]
    assert a.SOPInstanceUID in str(table.column("used_instances").to_pylist())  # decoded from the object
    assert table.column("flag").to_pylist() == [True]  # the bright lesion, as the gateway scores it


def test_the_read_cache_stays_under_its_size_and_reads_still_work(tmp_path: Path, s3: S3Server, bucket: str) -> None:
    # 0.000001 GiB = 1,073 bytes; every object below is 400 bytes, so at most two stay cached
    settings = _settings(tmp_path, s3, bucket, store__s3_cache_gib=0.000001)
    blobs = blobs_for(settings)
    assert isinstance(blobs, S3Blobs)
    blobs.cache.grace_s = 0.0  # no reader holds these paths
    keys = [f"1.2.3/1.2.3.4/1.2.3.4.{i}.dcm" for i in range(6)]
    for i, key in enumerate(keys):
        blobs.put(key, bytes([i]) * 400)
        assert blobs.cache.size() <= 1073
    assert s3.keys(bucket) == sorted(f"site-a/{k}" for k in keys)  # the bucket holds them all
    cache = settings.data_dir / "s3-cache"
    assert not (cache / keys[0]).exists()  # the oldest copy went
    assert blobs.local_path(keys[0]).read_bytes() == bytes([0]) * 400  # downloaded again
    assert blobs.read(keys[1]) == bytes([1]) * 400
    assert blobs.cache.size() <= 1073


def test_a_cache_size_of_zero_is_one_line(tmp_path: Path) -> None:
    from radgate.config import ConfigError

    with pytest.raises(ConfigError, match=r"store.s3_cache_gib is 0.0; expected a size in GiB above 0"):
        load_settings(data_dir=tmp_path, environ={"RADGATE_STORE_S3_CACHE_GIB": "0"})
