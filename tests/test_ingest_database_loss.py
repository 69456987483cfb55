"""PostgreSQL stopped mid-ingest (issue 17): failure statuses while it is down, nothing acknowledged is lost,
and radgate recovers without a restart when it returns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Instance, database_for
from radgate.gateway import Gateway
from radgate.ingest import Status
from tests.dicomgen import make_dx

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[object]:
    from tests.pg import PostgresCluster

    pg = PostgresCluster()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def _send(port: int, datasets: list, ae: AE) -> dict[str, int]:
    """One association per instance (as many modalities do), so a dropped association loses nothing else."""
    statuses: dict[str, int] = {}
    for ds in datasets:
        assoc = ae.associate("127.0.0.1", port, ae_title="RADGATE")
        assert assoc.is_established
        status = assoc.send_c_store(ds)
        statuses[ds.SOPInstanceUID] = int(status.Status) if status and "Status" in status else -1
        assoc.release()
    return statuses


def test_postgres_going_away_mid_ingest(cluster, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    settings.database.url = cluster.url
    db = database_for(settings, migrate=True)
    gw = Gateway(settings, db)
    gw.start()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(DigitalXRayImageStorageForPresentation)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    study = "1.2.826.0.1.3680043.10.543.17"
    datasets = [make_dx(study, f"{study}.1", f"{study}.1.{i}", seed=i) for i in range(24)]
    try:
        before = _send(gw.dicom.port, datasets[:8], ae)
        assert set(before.values()) == {Status.SUCCESS}

        cluster.halt()  # type: ignore[attr-defined]
        start = time.monotonic()
        down = _send(gw.dicom.port, datasets[8:16], ae)
        assert set(down.values()) == {Status.OUT_OF_RESOURCES}, down  # 0xA700 while it is down, no hang
        assert time.monotonic() - start < 60

        cluster.resume()  # type: ignore[attr-defined]
        after = _send(gw.dicom.port, datasets[16:], ae)  # no restart of radgate
        assert set(after.values()) == {Status.SUCCESS}, after
        retried = _send(gw.dicom.port, datasets[8:16], ae)  # the senders retry what failed
        assert set(retried.values()) == {Status.SUCCESS}, retried

        acknowledged = {uid for part in (before, after, retried) for uid, st in part.items() if st == 0}
        with db.session() as s:
            rows = s.scalars(select(Instance).where(Instance.StudyInstanceUID == study)).all()
            indexed = {r.SOPInstanceUID for r in rows}
            assert all((settings.store_dir / r.path).is_file() for r in rows)
            assert len(rows) == len(indexed) == 24  # each instance once: no duplicate rows
        assert acknowledged == indexed  # nothing acknowledged is lost
    finally:
        gw.stop()
        db.dispose()
