"""The pixel checker under hostile images (issue 17): one reason per instance, never a dead or stuck stage."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Instance, Rejection, database_for
from radgate.ingest import InstanceStore, PixelChecker
from tests.dicomgen import make_dx
from tests.dicomgen import to_bytes as dx_bytes
from tests.helpers.faulty import frames_beyond_fragments, huge_rle, rle_panic, to_bytes


class Panic(BaseException):
    """Stands in for pyo3_runtime.PanicException inside a hook."""


def test_hostile_images_are_marked_once_and_later_instances_still_checked(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    db = database_for(settings)
    store = InstanceStore(settings, db)
    bad = {"panic": rle_panic(), "stop": frames_beyond_fragments(), "huge": huge_rle()}
    for ds in bad.values():
        assert store.store_bytes(to_bytes(ds), source="import").ok
    good = make_dx()
    assert store.store_bytes(dx_bytes(good), source="import").ok
    hooked: list[str] = []

    def hook(instance: Instance, ds: object) -> None:
        hooked.append(instance.SOPInstanceUID)
        raise Panic("a hook that dies like a native decoder")

    checker = PixelChecker(store, db, on_decoded=[hook])
    assert checker.run_once() == 4
    assert checker.run_once() == 0  # nothing left unchecked: no instance is retried forever
    with db.session() as s:
        status = {r.SOPInstanceUID: r.pixel_status for r in s.scalars(select(Instance))}
        reasons = {r.SOPInstanceUID: r.reason for r in s.scalars(select(Rejection))}
    assert status == {**{ds.SOPInstanceUID: "undecodable" for ds in bad.values()}, good.SOPInstanceUID: "ok"}
    assert set(reasons) == {ds.SOPInstanceUID for ds in bad.values()}  # one reason per instance
    assert "PanicException" in reasons[bad["panic"].SOPInstanceUID]
    assert reasons[bad["stop"].SOPInstanceUID].endswith("StopIteration")
    assert "ingest.max_decoded_bytes" in reasons[bad["huge"].SOPInstanceUID]
    assert hooked == [good.SOPInstanceUID]
    assert "Traceback" not in caplog.text
    db.dispose()


def test_an_unreadable_stored_file_is_marked_not_retried(settings: Settings) -> None:
    db = database_for(settings)
    store = InstanceStore(settings, db)
    ds = make_dx()
    assert store.store_bytes(dx_bytes(ds), source="import").ok
    with db.session() as s:
        row = s.scalars(select(Instance)).one()
        path = store.path_of(row)
    path.write_bytes(b"")  # the file went missing or was emptied behind radgate's back
    checker = PixelChecker(store, db)
    assert checker.run_once() == 1
    assert checker.run_once() == 0
    with db.session() as s:
        assert s.scalars(select(Instance)).one().pixel_status == "undecodable"
        assert "could not be read" in s.scalars(select(Rejection)).one().reason
    db.dispose()
