"""The instance store on both database backends: durable, idempotent, and tolerant of bad input."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Instance, Rejection, Series, Study, open_database
from radgate.ingest import InstanceStore, Status
from tests.dicomgen import make_dx, to_bytes


@pytest.fixture
def store_on(any_db_url: str, settings: Settings):
    db = open_database(any_db_url)
    yield InstanceStore(settings, db)
    db.dispose()


def test_store_then_duplicate_then_revision(store_on: InstanceStore) -> None:
    ds = make_dx()
    first = store_on.store_bytes(to_bytes(ds), source="import")
    assert (first.outcome, first.status, first.revision) == ("stored", Status.SUCCESS, 1)

    again = store_on.store_bytes(to_bytes(ds), source="dimse")
    assert (again.outcome, again.status) == ("duplicate", Status.SUCCESS)

    ds.SeriesDescription = "changed content, same SOPInstanceUID"
    changed = store_on.store_bytes(to_bytes(ds), source="stow")
    assert (changed.outcome, changed.status, changed.revision) == ("revision", Status.SUCCESS, 2)

    with store_on.db.session() as s:
        rows = s.scalars(select(Instance).where(Instance.SOPInstanceUID == ds.SOPInstanceUID)).all()
        assert sorted(r.revision for r in rows) == [1, 2]
        paths = {store_on.path_of(r) for r in rows}
        assert len(paths) == 2 and all(p.is_file() for p in paths)
        for r in rows:  # the stored file is the one indexed, byte for byte
            stored = pydicom.dcmread(store_on.path_of(r))
            assert stored.SOPInstanceUID == ds.SOPInstanceUID
        series = s.get(Series, ds.SeriesInstanceUID)
        assert series is not None and series.num_instances == 1  # revisions are not new instances
        study = s.get(Study, ds.StudyInstanceUID)
        assert study is not None and study.num_instances == 1


def test_header_features_are_indexed(store_on: InstanceStore) -> None:
    ds = make_dx(view="AP", age="009Y", manufacturer="ACME")
    store_on.store_bytes(to_bytes(ds), source="import")
    with store_on.db.session() as s:
        row = s.scalars(select(Instance)).one()
    assert (row.Manufacturer, row.ViewPosition, row.PatientAge, row.PatientSex) == ("ACME", "AP", 9.0, "F")
    assert (row.Modality, row.BodyPartExamined, row.BitsStored, row.Rows) == ("DX", "CHEST", 12, 64)
    assert row.PixelSpacing == pytest.approx(0.139)
    assert row.KVP == 120


@pytest.mark.parametrize(
    ("data", "status", "reason_part"),
    [
        (b"", Status.CANNOT_UNDERSTAND, "empty"),
        (b"this is a text file, not DICOM" * 10, Status.CANNOT_UNDERSTAND, "Not a DICOM file"),
    ],
)
def test_garbage_is_rejected_and_quarantined(
    store_on: InstanceStore, data: bytes, status: int, reason_part: str
):
    out = store_on.store_bytes(data, source="import", origin="somefile")
    assert out.outcome == "rejected" and out.status == status
    assert reason_part in (out.reason or "")
    with store_on.db.session() as s:
        rej = s.scalars(select(Rejection)).one()
        assert reason_part in rej.reason
        if data:  # non-empty input is kept in quarantine, nothing is lost
            assert (
                rej.quarantine_path
                and (store_on.settings.quarantine_dir / rej.quarantine_path).read_bytes() == data
            )


def test_truncated_missing_uid_oversize_and_unsupported_class(store_on: InstanceStore) -> None:
    good = to_bytes(make_dx(size=128))
    truncated = store_on.store_bytes(good[: len(good) - 5000], source="import")
    assert truncated.outcome == "rejected" and "truncated" in (truncated.reason or "")

    ds = make_dx()
    del ds.StudyInstanceUID
    missing = store_on.store_bytes(to_bytes(ds), source="import")
    assert missing.status == Status.CANNOT_UNDERSTAND and "StudyInstanceUID is missing" in (
        missing.reason or ""
    )

    ds = make_dx()
    ds.SeriesInstanceUID = "1.2.3/../../etc"
    bad_uid = store_on.store_bytes(to_bytes(ds), source="import")
    assert bad_uid.outcome == "rejected" and "not a valid UID" in (bad_uid.reason or "")

    store_on.settings.ingest.max_instance_bytes = 1000
    big = store_on.store_bytes(good, source="import")
    assert big.status == Status.OUT_OF_RESOURCES and "limit" in (big.reason or "")
    store_on.settings.ingest.max_instance_bytes = 10**9

    ds = make_dx()
    ds.SOPClassUID = "1.2.840.10008.1.1"  # Verification: not a storage class
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    unsupported = store_on.store_bytes(to_bytes(ds), source="stow")
    assert unsupported.status == Status.REFUSED_SOP_CLASS_NOT_SUPPORTED

    # and after all that, good data still flows
    assert store_on.store_bytes(good, source="import").outcome == "stored"
    with store_on.db.session() as s:
        assert len(s.scalars(select(Rejection)).all()) == 5
        assert len(s.scalars(select(Instance)).all()) == 1


def test_real_files_from_pydicom_are_stored(store_on: InstanceStore) -> None:
    names = [
        "CT_small.dcm",
        "MR_small.dcm",
        "JPEG2000.dcm",
        "MR_small_RLE.dcm",
        "image_dfl.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
    ]
    for name in names:
        data = Path(get_testdata_file(name)).read_bytes()
        out = store_on.store_bytes(data, source="import")
        assert out.ok, (name, out.reason)
        with store_on.db.session() as s:
            row = s.scalars(
                select(Instance).where(
                    Instance.SOPInstanceUID == out.SOPInstanceUID, Instance.revision == out.revision
                )
            ).one()
        stored = store_on.path_of(row).read_bytes()
        # The dataset is kept byte for byte (only a missing file meta would be added).
        assert stored.endswith(data[-1000:])
        assert (
            hashlib.sha256(stored[len(stored) - (len(data) - 132 - 12 - _meta_len(data)) :]).hexdigest()
            == row.sha256
        )
    # MR_small_RLE.dcm is MR_small.dcm re-encoded with the same SOPInstanceUID: a revision, not a duplicate.
    with store_on.db.session() as s:
        assert len(s.scalars(select(Instance)).all()) == len(names)


def _meta_len(data: bytes) -> int:
    import struct

    return int(struct.unpack_from("<I", data, 140)[0])


def test_bare_dataset_without_file_meta_is_wrapped(store_on: InstanceStore, tmp_path: Path) -> None:
    ds = make_dx()
    path = tmp_path / "bare.dcm"
    from pydicom.dataset import FileMetaDataset

    ds.file_meta = FileMetaDataset()
    ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM"
    out = store_on.store_bytes(raw, source="import")
    assert out.outcome == "stored"
    with store_on.db.session() as s:
        row = s.scalars(select(Instance)).one()
    assert store_on.path_of(row).read_bytes()[128:132] == b"DICM"


def test_no_patient_data_in_logs(store_on: InstanceStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # an import from a folder named after the patient: the path must not reach the log either
    store_on.store_bytes(b"junk" * 100, source="import", origin="/exports/Doe_Jane_MRN-99887766/img1.dcm")
    ds = make_dx()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-99887766"
    ds.PatientBirthDate = "19710203"
    data = to_bytes(ds)
    store_on.store_bytes(data, source="import")
    ds.SeriesDescription = "another revision"
    store_on.store_bytes(to_bytes(ds), source="import")
    del ds.StudyInstanceUID
    store_on.store_bytes(to_bytes(ds), source="import")
    assert caplog.records, "the store logs revisions and rejections"
    text = caplog.text
    for secret in ("Doe", "Jane", "MRN-99887766", "19710203"):
        assert secret not in text
