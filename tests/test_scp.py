"""DCMTK's echoscu and storescu against radgate's C-ECHO / C-STORE SCP."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Instance, Rejection
from radgate.gateway import Gateway
from radgate.ingest.scp import parse_allow_entry
from tests.dicomgen import make_dx
from tests.helpers.datadir import make_data_dir

ENV = dict(os.environ, TCP_NODELAY="1")

# pydicom's test files, one per transfer syntax the issue names, with the storescu option that proposes it.
COMPRESSED = {
    "JPEG baseline": ("SC_rgb_jpeg_dcmtk.dcm", "-xy"),
    "JPEG lossless": ("JPEG-LL.dcm", "-xs"),
    "JPEG-LS lossless": ("emri_small_jpeg_ls_lossless.dcm", "-xt"),
    "JPEG 2000": ("JPEG2000.dcm", "-xw"),
    "RLE": ("MR_small_RLE.dcm", "-xr"),
    "Deflate": ("image_dfl.dcm", "-xd"),
    "Implicit VR": ("rtplan.dcm", "-xi"),
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=ENV, timeout=120)


def test_echoscu(gateway: Gateway) -> None:
    assert (
        run("echoscu", "-aet", "MODALITY", "-aec", "RADGATE", "127.0.0.1", str(gateway.dicom.port)).returncode
        == 0
    )


def test_storescu_stores_every_transfer_syntax_and_pixels_decode(gateway: Gateway, tmp_path: Path) -> None:
    for name, option in COMPRESSED.values():
        result = run(
            "storescu",
            option,
            "-aec",
            "RADGATE",
            "-aet",
            "MODALITY",
            "127.0.0.1",
            str(gateway.dicom.port),
            get_testdata_file(name),
        )
        assert result.returncode == 0, (name, result.stderr)
    with gateway.db.session() as s:
        rows = s.scalars(select(Instance)).all()
    assert {r.TransferSyntaxUID for r in rows} >= {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2",
    }
    gateway.pixels.stop()
    while gateway.pixels.run_once():
        pass
    with gateway.db.session() as s:
        statuses = {r.SOPInstanceUID: r.pixel_status for r in s.scalars(select(Instance)).all()}
    assert set(statuses.values()) == {"ok"}, statuses


def test_refused_calling_ae_and_wrong_host(tmp_path: Path) -> None:
    from radgate.config import load_settings

    settings = load_settings(
        data_dir=make_data_dir(tmp_path / "d"),
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        server__allow_ae=["MODALITY@127.0.0.1", "OTHER@192.0.2.10"],
    )
    with Gateway(settings) as gw:
        port = str(gw.dicom.port)
        ok = run("echoscu", "-aec", "RADGATE", "-aet", "MODALITY", "127.0.0.1", port)
        refused = run("storescu", "-aec", "RADGATE", "-aet", "INTRUDER", "127.0.0.1", port, get_testdata_file("CT_small.dcm"))
        wrong_host = run("echoscu", "-aec", "RADGATE", "-aet", "OTHER", "127.0.0.1", port)
        assert ok.returncode == 0
        assert refused.returncode != 0 and "Rejected" in refused.stderr
        assert wrong_host.returncode != 0 and "Rejected" in wrong_host.stderr
        with gw.db.session() as s:
            reasons = [r.reason for r in s.scalars(select(Rejection)).all()]
            assert not s.scalars(select(Instance)).all()
        assert any("INTRUDER" in r and "allowlist" in r for r in reasons)
        assert any("OTHER" in r for r in reasons)
        gw.db.dispose()


def test_allow_entry_parsing() -> None:
    assert parse_allow_entry("PACS@10.0.0.1").host == "10.0.0.1"
    assert parse_allow_entry("PACS").host is None
    with pytest.raises(ValueError, match="1 to 16"):
        parse_allow_entry("A" * 17)
    with pytest.raises(ValueError, match="AET@HOST"):
        parse_allow_entry("PACS@")


def test_concurrent_associations(gateway: Gateway, tmp_path: Path) -> None:
    folders = []
    for k in range(4):
        folder = tmp_path / f"batch{k}"
        folder.mkdir()
        study, series = f"1.2.826.0.1.3680043.10.999.{k}", f"1.2.826.0.1.3680043.10.999.{k}.1"
        for i in range(10):
            make_dx(study, series, f"{series}.{i}", seed=i).save_as(
                folder / f"{i}.dcm", enforce_file_format=True
            )
        folders.append(folder)
    results: list[int] = []

    def send(folder: Path) -> None:
        results.append(
            run(
                "storescu", "-aec", "RADGATE", "-aet", "MODALITY", "+sd", "127.0.0.1", str(gateway.dicom.port), str(folder)
            ).returncode
        )

    threads = [threading.Thread(target=send, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0, 0, 0, 0]
    with gateway.db.session() as s:
        assert len(s.scalars(select(Instance)).all()) == 40


def test_bad_instance_gets_failure_status_and_server_keeps_serving(gateway: Gateway, tmp_path: Path) -> None:
    ds = make_dx()
    del ds.StudyInstanceUID  # storescu sends it anyway; radgate must answer a failure status
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad, enforce_file_format=True)
    good = tmp_path / "good.dcm"
    make_dx().save_as(good, enforce_file_format=True)
    result = run(
        "storescu", "-aec", "RADGATE", "-v", "-nh", "-aet", "MODALITY", "127.0.0.1", str(gateway.dicom.port), str(bad), str(good)
    )
    assert "Error: CannotUnderstand" in result.stderr, result.stderr  # 0xC000, PS3.4 B.2.3
    with gateway.db.session() as s:
        assert len(s.scalars(select(Instance)).all()) == 1
        assert "StudyInstanceUID is missing" in s.scalars(select(Rejection)).one().reason
    assert run("echoscu", "-aec", "RADGATE", "127.0.0.1", str(gateway.dicom.port)).returncode == 0


def test_settings_fixture_is_isolated(settings: Settings) -> None:
    assert settings.server.dicom_port == 0


def test_associations_share_the_servers_contexts_instead_of_copying_them(gateway: Gateway) -> None:
    """pynetdicom deep-copied the 171 supported contexts (7,695 transfer syntaxes) for every association:
    165 ms of CPU under the GIL before its first PDU. The contexts are shared (negotiation only reads them)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="PEER")
    ae.add_requested_context(Verification)
    server = gateway.dicom.server
    assert server is not None
    # A released association's thread may still be winding down when the next one starts: skip it.
    seen: list[object] = []
    for _ in range(2):
        assoc = ae.associate("127.0.0.1", gateway.dicom.port, ae_title="RADGATE")
        assert assoc.is_established
        [acceptor] = [a for a in server.active_associations if not a.is_requestor and a not in seen]
        seen.append(acceptor)
        shared = acceptor.acceptor.supported_contexts
        assert len(shared) == len(server.contexts) > 100
        assert all(a is b for a, b in zip(shared, server.contexts, strict=True))
        assert int(assoc.send_c_echo().Status) == 0x0000
        assoc.release()
