"""Malformed header elements get a failure status and a reason, never HTTP 500 or 0xC211 (issue 17)."""

from __future__ import annotations

import warnings

import httpx
import pydicom
import pytest
from fastapi.testclient import TestClient

from radgate.config import Settings
from radgate.db import database_for
from radgate.ingest import InstanceStore, Status
from radgate.web import create_app
from tests.dicomgen import make_dx
from tests.helpers.auth import token_headers
from tests.helpers.faulty import to_bytes, with_value_length, with_vr

ROWS, BITS_STORED = (0x0028, 0x0010), (0x0028, 0x0101)
SOP_CLASS, SOP_INSTANCE = (0x0008, 0x0016), (0x0008, 0x0018)
STUDY, SERIES = (0x0020, 0x000D), (0x0020, 0x000E)

MALFORMED = {
    "Rows odd length": (lambda b: with_value_length(b, ROWS, b"\x01"), "Rows"),
    "Rows two values": (lambda b: with_value_length(b, ROWS, b"\x01\x00"), "Rows"),
    "BitsStored odd length": (lambda b: with_value_length(b, BITS_STORED, b"\x01"), "BitsStored"),
    "BitsStored two values": (lambda b: with_value_length(b, BITS_STORED, b"\x01\x00"), "BitsStored"),
    "SOPClassUID as FD": (lambda b: with_vr(b, SOP_CLASS, b"FD"), "SOPClassUID"),
    "SOPInstanceUID as FD": (lambda b: with_vr(b, SOP_INSTANCE, b"FD"), "SOPInstanceUID"),
    "SOPInstanceUID as US": (lambda b: with_vr(b, SOP_INSTANCE, b"US"), "SOPInstanceUID"),
    "SOPInstanceUID as SQ": (lambda b: with_vr(b, SOP_INSTANCE, b"SQ"), "SOPInstanceUID"),
    "SOPInstanceUID VR zeros": (lambda b: with_vr(b, SOP_INSTANCE, b"\x00\x00"), "SOPInstanceUID"),
    "StudyInstanceUID as AT": (lambda b: with_vr(b, STUDY, b"AT"), "StudyInstanceUID"),
    "SeriesInstanceUID as FD": (lambda b: with_vr(b, SERIES, b"FD"), "SeriesInstanceUID"),
}


@pytest.fixture
def store(settings: Settings):
    db = database_for(settings)
    yield InstanceStore(settings, db)
    db.dispose()


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> None:
    warnings.simplefilter("ignore")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_element_is_rejected_with_its_name(store: InstanceStore, case: str) -> None:
    mutate, keyword = MALFORMED[case]
    outcome = store.store_bytes(mutate(to_bytes(make_dx())), source="import")
    assert (outcome.outcome, outcome.status) == ("rejected", Status.CANNOT_UNDERSTAND), outcome
    assert keyword in (outcome.reason or "")
    assert outcome.SOPInstanceUID is None or pydicom.uid.UID(outcome.SOPInstanceUID).is_valid


def test_stow_answers_each_malformed_instance_in_the_response(
    store: InstanceStore, settings: Settings
) -> None:
    client = TestClient(create_app(settings, store.db, store), raise_server_exceptions=False)
    body = b""
    for mutate, _ in MALFORMED.values():
        body += b"--b\r\nContent-Type: application/dicom\r\n\r\n" + mutate(to_bytes(make_dx())) + b"\r\n"
    body += b"--b--\r\n"
    r = client.post(
        "/dicomweb/studies",
        content=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
                 **token_headers(store.db)},
    )
    assert r.status_code == httpx.codes.CONFLICT, r.text  # all failed (PS3.18 Table 10.5.3-2)
    failed = pydicom.Dataset.from_json(r.json()).FailedSOPSequence
    assert len(failed) == len(MALFORMED)
    assert {item.FailureReason for item in failed} == {Status.CANNOT_UNDERSTAND}
    assert all(item[0x00000902].value for item in failed)


def test_deflate_bomb_is_refused_without_inflating_it_whole(store: InstanceStore) -> None:
    import tracemalloc

    from tests.helpers.faulty import deflate_bomb

    store.settings.ingest.max_inflated_bytes = 16 * 1024**2
    bomb = deflate_bomb(200 * 1024**2)  # ~200 KB on the wire
    assert len(bomb) < 1024**2
    tracemalloc.start()
    try:
        outcome = store.store_bytes(bomb, source="stow")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (outcome.outcome, outcome.status) == ("rejected", Status.OUT_OF_RESOURCES)
    assert "ingest.max_inflated_bytes" in (outcome.reason or "")
    assert peak < 8 * 1024**2  # inflated in 1 MiB steps, never whole (before: the whole 200 MiB, copied)

    # A broken deflate stream is a rejection, and a real deflated file is still stored.
    broken = bomb[:400] + bytes(64) + bomb[464:]
    assert store.store_bytes(broken, source="stow").status == Status.CANNOT_UNDERSTAND
    from pydicom.data import get_testdata_file

    with open(get_testdata_file("image_dfl.dcm"), "rb") as f:
        assert store.store_bytes(f.read(), source="stow").ok


def test_an_optional_attribute_with_an_unknown_vr_is_stored_without_it(store: InstanceStore) -> None:
    """InstanceNumber with VR bytes 'MS' (found by bench/fuzz.py): stored, its index column left empty
    (was 0xA700 "could not store the instance durably")."""
    ds = make_dx()
    outcome = store.store_bytes(with_vr(to_bytes(ds), (0x0020, 0x0013), b"MS"), source="import")
    assert (outcome.outcome, outcome.status) == ("stored", Status.SUCCESS), outcome
    from sqlalchemy import select

    from radgate.db import Instance

    with store.db.session() as s:
        assert s.scalars(select(Instance.InstanceNumber)).one() is None


def test_a_reason_never_echoes_bytes_that_may_be_patient_data(
    store: InstanceStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A length field that swallows the next elements makes the UID's value carry them (PatientName here):
    the reason and the log say what is wrong without quoting those bytes."""
    import struct

    data = to_bytes(make_dx())
    i = data.index(struct.pack("<HH", 0x0008, 0x0018), 144)
    (length,) = struct.unpack_from("<H", data, i + 6)
    data = data[: i + 6] + struct.pack("<H", length + 200) + data[i + 8 :]  # SOPInstanceUID eats 200 bytes
    data = data.replace(b"SYNTHETIC^TEST", b"DOE^JANE^SECRT")
    j = data.index(b"DOE^JANE")
    assert i < j < i + 8 + length + 200  # the name lies inside the swallowed bytes
    with caplog.at_level("DEBUG"):
        outcome = store.store_bytes(data, source="import")
    assert outcome.status == Status.CANNOT_UNDERSTAND and "SOPInstanceUID" in (outcome.reason or "")
    assert "DOE" not in (outcome.reason or "") and "DOE" not in caplog.text
