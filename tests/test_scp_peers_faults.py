"""Slow and stuck DIMSE peers, and the association limit (issue 17)."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]

from radgate.config import Settings
from radgate.gateway import Gateway
from tests.dicomgen import make_dx


@pytest.fixture
def strict(settings: Settings) -> Iterator[Gateway]:
    settings.server.network_timeout_s = 2.0
    settings.server.max_associations = 2
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.db.dispose()


def _ae() -> AE:
    ae = AE(ae_title="PEER")
    ae.add_requested_context(DigitalXRayImageStorageForPresentation)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 30
    return ae


def test_a_peer_that_stops_mid_dataset_is_dropped_and_others_keep_storing(strict: Gateway) -> None:
    port = strict.dicom.port
    stuck = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
    assert stuck.is_established
    context_id = stuck.accepted_contexts[0].context_id
    # A P-DATA-TF PDU announcing 64 KiB of dataset (PDV control header 0x00: dataset, not last) of which
    # only 100 bytes ever arrive (PS3.8 9.3.5).
    pdv = struct.pack(">IBB", 65536 - 6 + 2, context_id, 0x00) + bytes(100)
    stuck.dul.socket.socket.sendall(struct.pack(">BBI", 0x04, 0x00, 65536) + pdv)  # type: ignore[union-attr]
    start = time.monotonic()

    other = _ae().associate("127.0.0.1", port, ae_title="RADGATE")  # not held up by the stuck one
    assert other.is_established
    status = other.send_c_store(make_dx())
    assert int(status.Status) == 0x0000
    other.release()
    assert time.monotonic() - start < 2.0

    while stuck.is_alive() and time.monotonic() - start < 15:
        time.sleep(0.1)
    dropped_after = time.monotonic() - start
    assert not stuck.is_established and stuck.is_aborted, "the stuck association is still open"
    assert 1.5 < dropped_after < 8, dropped_after  # server.network_timeout_s = 2


def test_associations_over_the_limit_are_rejected_with_a_reason(strict: Gateway) -> None:
    port = strict.dicom.port
    held = [_ae().associate("127.0.0.1", port, ae_title="RADGATE") for _ in range(2)]
    assert all(a.is_established for a in held)
    excess = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
    assert excess.is_rejected
    rj = excess.acceptor.primitive
    # A-ASSOCIATE-RJ: rejected-transient (2), service-provider presentation (3), local-limit-exceeded (2)
    # (PS3.8 9.3.4, Table 9-21).
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02)
    held[0].release()
    time.sleep(0.3)
    again = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
    assert again.is_established
    again.release()
    held[1].release()


def test_a_refused_instance_carries_its_reason_in_error_comment(strict: Gateway) -> None:
    ds = make_dx()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    del ds.SeriesInstanceUID
    assoc = _ae().associate("127.0.0.1", strict.dicom.port, ae_title="RADGATE")
    status = assoc.send_c_store(ds)
    assoc.release()
    assert int(status.Status) == 0xC000
    assert status.ErrorComment.startswith("SeriesInstanceUID is missing")  # (0000,0902), at most 64 chars


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_a_pdu_claiming_a_gigabyte_allocates_only_what_arrives(strict: Gateway) -> None:
    """radgate reads a PDU in pieces of at most 4 MiB: the length a peer claims reserves no memory."""
    port = strict.dicom.port
    stuck = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
    assert stuck.is_established
    context_id = stuck.accepted_contexts[0].context_id
    before = _rss_bytes()
    claimed = 1024**3
    pdv = struct.pack(">IBB", claimed - 4, context_id, 0x00) + bytes(1000)
    stuck.dul.socket.socket.sendall(struct.pack(">BBI", 0x04, 0x00, claimed) + pdv)  # type: ignore[union-attr]
    time.sleep(0.5)  # the server is now waiting inside that PDU
    assert _rss_bytes() - before < 200 * 1024**2
    start = time.monotonic()
    while stuck.is_alive() and time.monotonic() - start < 15:
        time.sleep(0.1)
    assert not stuck.is_established and stuck.is_aborted, "the stuck association is still open"
    other = _ae().associate("127.0.0.1", port, ae_title="RADGATE")
    assert other.is_established and int(other.send_c_store(make_dx()).Status) == 0x0000
    other.release()


def test_an_idle_association_still_stores_and_is_released(strict: Gateway) -> None:
    """Idle, the DUL thread blocks in select (radgate.ingest.scp._dul_reactor); it wakes for the next
    request, for the response to send and for the release."""
    assoc = _ae().associate("127.0.0.1", strict.dicom.port, ae_title="RADGATE")
    assert assoc.is_established
    for _ in range(3):
        time.sleep(0.3)  # several of the DUL's waits (scp.DUL_WAIT_S) with nothing to do
        assert int(assoc.send_c_store(make_dx()).Status) == 0x0000
    assoc.release()
    assert assoc.is_released
