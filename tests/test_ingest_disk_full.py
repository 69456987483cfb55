"""A full disk (a small tmpfs as the data directory): 0xA700, nothing half-stored, accepted once space returns."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]
from sqlalchemy import func, select

from radgate.config import Settings, load_settings
from radgate.db import Instance, database_for
from radgate.gateway import Gateway
from radgate.ingest import Status
from tests.dicomgen import make_dx
from tests.helpers.auth import token_headers


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> Path:
    """Fill the filesystem of ``path`` to the last byte with one file."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_ingest_on_a_full_disk(small_disk: Path) -> None:
    settings: Settings = load_settings(
        data_dir=small_disk / "data",
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        assembly__quiet_period_s=0.5,
    )
    gw = Gateway(settings, database_for(settings, migrate=True))
    gw.start()
    try:
        assert gw.store.store_bytes(_bytes(make_dx()), source="import").ok  # the database file exists now
        auth = token_headers(gw.db)  # credentials for STOW-RS, while there is still room to write them
        filler = _fill(small_disk)
        before = _files_under(settings.store_dir)
        datasets = [make_dx(size=256, seed=i) for i in range(3)]
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(DigitalXRayImageStorageForPresentation)
        assoc = ae.associate("127.0.0.1", gw.dicom.port, ae_title="RADGATE")
        assert assoc.is_established
        statuses = [int(assoc.send_c_store(ds).Status) for ds in datasets]
        assoc.release()
        assert statuses == [Status.OUT_OF_RESOURCES] * 3  # 0xA700, PS3.4 B.2.3
        assert _files_under(settings.store_dir) == before  # no partial file, in .incoming or anywhere
        with gw.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Instance)) == 1
        reason = gw.store.store_bytes(_bytes(datasets[0]), source="import").reason or ""
        assert "disk is full" in reason
        boundary = "full"
        body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += _bytes(datasets[0]) + f"\r\n--{boundary}--\r\n".encode()
        r = httpx.post(
            f"http://127.0.0.1:{gw.http_port}/dicomweb/studies",
            content=body,
            headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                     **auth},
        )
        assert r.status_code == 503 and "nothing was stored" in r.json()["error"], r.text  # not a 500
        assert _files_under(settings.store_dir) == before

        filler.unlink()  # space returns: the same instances are accepted, without a restart
        assoc = ae.associate("127.0.0.1", gw.dicom.port, ae_title="RADGATE")
        statuses = [int(assoc.send_c_store(ds).Status) for ds in datasets]
        assoc.release()
        assert statuses == [Status.SUCCESS] * 3
        with gw.db.session() as s:
            uids = set(s.scalars(select(Instance.SOPInstanceUID)))
        assert {ds.SOPInstanceUID for ds in datasets} <= uids
    finally:
        gw.stop()
        gw.db.dispose()


def _bytes(ds: object) -> bytes:
    from tests.dicomgen import to_bytes

    return to_bytes(ds)  # type: ignore[arg-type]


def test_a_refused_instance_on_a_full_disk_leaves_no_partial_quarantine_file(small_disk: Path) -> None:
    settings = load_settings(data_dir=small_disk / "data", environ={})
    db = database_for(settings, migrate=True)
    from radgate.ingest import InstanceStore

    store = InstanceStore(settings, db)
    assert store.store_bytes(_bytes(make_dx()), source="import").ok
    _fill(small_disk)
    bad = make_dx(size=512)
    del bad.SeriesInstanceUID
    outcome = store.store_bytes(_bytes(bad), source="import")
    assert outcome.status == Status.CANNOT_UNDERSTAND  # still answered with its own reason
    assert list(settings.quarantine_dir.iterdir()) == []
    db.dispose()
