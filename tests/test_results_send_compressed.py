"""The C-STORE sender proposes each file's own transfer syntax, so compressed files go through (regression)."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file
from sqlalchemy import select

from radgate.db import Instance
from radgate.gateway import Gateway
from radgate.results.send import CStoreDestination


def test_rle_and_jpeg2000_files_are_sent_in_their_own_syntax(gateway: Gateway) -> None:
    files = [Path(get_testdata_file(name)) for name in ("MR_small_RLE.dcm", "JPEG2000.dcm", "CT_small.dcm")]
    sender = CStoreDestination(gateway.settings.server.ae_title, "127.0.0.1", gateway.dicom.port, "SENDER")
    outcomes = sender.send(files)
    assert [o.ok for o in outcomes] == [True, True, True], [o.reason for o in outcomes]
    with gateway.db.session() as s:
        syntaxes = {r.TransferSyntaxUID for r in s.scalars(select(Instance))}
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.91"} <= syntaxes
