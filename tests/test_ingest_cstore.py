"""radgate's own C-STORE encodings (radgate.ingest.cstore) against pynetdicom's, and the SCP that uses them."""

from __future__ import annotations

import pytest
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, encode, encode_file_meta
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation  # type: ignore[attr-defined]
from sqlalchemy import select

from radgate.db import Instance
from radgate.gateway import Gateway
from radgate.ingest.cstore import c_store_rsp, part10_bytes
from tests.dicomgen import make_dx

DX = "1.2.840.10008.5.1.4.1.1.1.1"  # 24 characters; the UIDs below have odd and even lengths


@pytest.mark.parametrize("sop_uid", ["1.2.3.4", "1.2.826.0.1.3680043.10.543.12345"])
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"])
def test_part10_bytes_are_pynetdicoms_encoded_dataset(sop_uid: str, syntax: str) -> None:
    dataset = b"\x08\x00\x16\x00\x04\x00\x00\x00abcd"
    meta = create_file_meta(sop_class_uid=DX, sop_instance_uid=sop_uid, transfer_syntax=syntax)
    expected = b"\x00" * 128 + b"DICM" + encode_file_meta(meta) + dataset  # Event.encoded_dataset's join
    assert part10_bytes(dataset, DX, sop_uid, syntax) == expected


@pytest.mark.parametrize("comment", [None, "", "odd", "The dataset's SOPInstanceUID differs (even)"])
@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xC000, 0xC211])
@pytest.mark.parametrize("sop_uid", ["1.2.3.4", "1.2.3.45"])
def test_c_store_rsp_is_pynetdicoms_command_set(comment: str | None, status: int, sop_uid: str) -> None:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = DX
    rsp.AffectedSOPInstanceUID = sop_uid
    rsp.Status = status
    if comment is not None:
        rsp.ErrorComment = comment
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    [pdata] = list(message.encode_msg(1, 0))
    [(_, fragment)] = pdata.presentation_data_value_list
    assert fragment[0] == 0x03  # one command fragment, the last
    assert c_store_rsp(7, DX, sop_uid, status, comment) == fragment[1:]


def _ae() -> AE:
    ae = AE(ae_title="PEER")
    ae.add_requested_context(DigitalXRayImageStorageForPresentation)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 30
    return ae


def test_the_stored_file_is_what_pynetdicoms_path_would_store(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """radgate answers C-STORE itself (pynetdicom's Storage Service Class is never called), and the file it
    stores is the dataset as sent behind pynetdicom's File Meta Information."""

    def not_called(*args: object) -> None:
        raise AssertionError("pynetdicom's Storage Service Class served a C-STORE")

    monkeypatch.setattr(StorageServiceClass, "SCP", not_called)
    ds = make_dx(size=32)
    assoc = _ae().associate("127.0.0.1", gateway.dicom.port, ae_title="RADGATE")
    status = assoc.send_c_store(ds)
    syntax = assoc.accepted_contexts[0].transfer_syntax[0]
    assoc.release()
    assert int(status.Status) == 0x0000
    sent = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian)  # what pynetdicom's SCU sent
    meta = create_file_meta(
        sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID, transfer_syntax=syntax
    )
    with gateway.db.session() as s:
        row = s.scalars(select(Instance)).one()
    assert gateway.store.path_of(row).read_bytes() == b"\x00" * 128 + b"DICM" + encode_file_meta(meta) + sent


def test_an_exception_while_storing_is_0xC211_and_the_association_goes_on(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = gateway.store.store_bytes

    def store_bytes(data: bytes, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("a bug in the store (simulated)")
        return real(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gateway.store, "store_bytes", store_bytes)
    assoc = _ae().associate("127.0.0.1", gateway.dicom.port, ae_title="RADGATE")
    first = assoc.send_c_store(make_dx(sop_uid="1.2.826.0.1.3680043.10.543.61.1"))
    second = assoc.send_c_store(make_dx(sop_uid="1.2.826.0.1.3680043.10.543.61.2"))
    assoc.release()
    assert (int(first.Status), int(second.Status)) == (0xC211, 0x0000)  # PS3.7 C.4.2 "unable to process"
    assert calls[0]["calling_ae"] == "PEER" and calls[0]["source"] == "dimse"
    assert calls[0]["expected_sop_instance_uid"] == "1.2.826.0.1.3680043.10.543.61.1"
    with gateway.db.session() as s:
        assert s.scalars(select(Instance.SOPInstanceUID)).all() == ["1.2.826.0.1.3680043.10.543.61.2"]


def _lane_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of C-STOREs answered by the DUL thread's lane and by the association thread (hand-back)."""
    from radgate.ingest.scp import DicomServer

    calls = {"lane": 0, "handed back": 0}
    lane, handed = DicomServer._lane_answer, DicomServer.serve_c_store

    def lane_answer(self, *args):  # type: ignore[no-untyped-def]
        calls["lane"] += 1
        return lane(self, *args)

    def serve(self, assoc, req, context_id):  # type: ignore[no-untyped-def]
        if isinstance(req, C_STORE):
            calls["handed back"] += 1
        return handed(self, assoc, req, context_id)

    monkeypatch.setattr(DicomServer, "_lane_answer", lane_answer)
    monkeypatch.setattr(DicomServer, "serve_c_store", serve)
    return calls


@pytest.mark.parametrize("max_pdu", [0, 1024])
def test_the_lane_answers_c_store_and_hands_echo_to_pynetdicom_on_one_association(
    settings: object, monkeypatch: pytest.MonkeyPatch, max_pdu: int
) -> None:
    """C-ECHO and C-STORE alternate on one association; with 1 KiB PDUs a dataset is many fragments."""
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    settings.server.max_pdu = max_pdu  # type: ignore[attr-defined]
    calls = _lane_calls(monkeypatch)
    gw = Gateway(settings)  # type: ignore[arg-type]
    gw.start()
    try:
        ae = _ae()
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", gw.dicom.port, ae_title="RADGATE")
        statuses = []
        sent = [make_dx(sop_uid=f"1.2.826.0.1.3680043.10.543.62.{i}", size=48, seed=i) for i in range(3)]
        for ds in sent:
            statuses.append(int(assoc.send_c_echo().Status))
            statuses.append(int(assoc.send_c_store(ds).Status))
        syntax = assoc.accepted_contexts[0].transfer_syntax[0]
        assoc.release()
        assert statuses == [0x0000] * 6
        assert calls == {"lane": 3, "handed back": 0}
        with gw.db.session() as s:
            rows = {r.SOPInstanceUID: r for r in s.scalars(select(Instance))}
        for ds in sent:
            body = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian)
            assert gw.store.path_of(rows[ds.SOPInstanceUID]).read_bytes().endswith(body)
    finally:
        gw.stop()
        gw.db.dispose()


def test_a_command_the_lane_does_not_vouch_for_goes_to_pynetdicom(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A C-STORE-RQ carrying an element outside PS3.7's C-STORE-RQ (here Error Comment) is decoded and
    served by pynetdicom as before, and the lane takes the next request again."""
    from pynetdicom.dimse import DIMSEServiceProvider

    calls = _lane_calls(monkeypatch)
    real = DIMSEServiceProvider.send_msg
    odd = {"n": 0}

    def send_msg(self, primitive, context_id):  # type: ignore[no-untyped-def]
        if isinstance(primitive, C_STORE) and odd["n"] == 0 and primitive.MessageID is not None:
            odd["n"] += 1
            from pynetdicom.dimse_messages import C_STORE_RQ

            message = C_STORE_RQ()
            message.primitive_to_message(primitive)
            message.command_set.ErrorComment = "odd"  # (0000,0902): not an element of a C-STORE-RQ
            for pdata in message.encode_msg(context_id, self.assoc.acceptor.maximum_length):
                self.dul.send_pdu(pdata)
            return
        real(self, primitive, context_id)

    monkeypatch.setattr(DIMSEServiceProvider, "send_msg", send_msg)
    assoc = _ae().associate("127.0.0.1", gateway.dicom.port, ae_title="RADGATE")
    first = assoc.send_c_store(make_dx(sop_uid="1.2.826.0.1.3680043.10.543.63.1"))
    second = assoc.send_c_store(make_dx(sop_uid="1.2.826.0.1.3680043.10.543.63.2"))
    assoc.release()
    assert (int(first.Status), int(second.Status)) == (0x0000, 0x0000)
    assert calls == {"lane": 1, "handed back": 1}
