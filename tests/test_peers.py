"""The shared peer helpers (radgate.testing): ports, tool lookup, dciodvfy, PixelMed, a throwaway Orthanc."""

from __future__ import annotations

import socket
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE

from radgate.testing import OrthancServer, PeerMissingError, dciodvfy, free_port, pixelmed_sr_validate, which

pytestmark = pytest.mark.peers

VERIFICATION = "1.2.840.10008.1.1"  # Verification SOP Class (PS3.4 A.4)


def sample_path(name: str) -> str:
    path = get_testdata_file(name)
    assert isinstance(path, str), f"pydicom test file {name} is not available"
    return path


def test_free_port_is_bindable_and_never_repeated() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(20000 <= p <= 32767 for p in ports)
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", ports[-1]))


def test_free_port_rejects_a_bad_range() -> None:
    with pytest.raises(ValueError, match=r"\[40000, 30000\]"):
        free_port(40000, 30000)


def test_which_finds_peers_and_names_the_missing_package() -> None:
    assert Path(which("dciodvfy")).is_file()
    assert which("Orthanc") == "/usr/sbin/Orthanc"  # not in a normal user's $PATH
    with pytest.raises(PeerMissingError, match="'no-such-peer-tool'"):
        which("no-such-peer-tool")


def test_dciodvfy_passes_a_valid_ct_and_reports_a_broken_one(tmp_path: Path) -> None:
    good = sample_path("CT_small.dcm")
    errors, _warnings = dciodvfy(good)
    assert errors == []

    ds = pydicom.dcmread(good)
    del ds.StudyInstanceUID  # Type 1 in General Study (PS3.3 C.7.2.1)
    del ds.Modality
    broken = tmp_path / "broken.dcm"
    ds.save_as(broken)
    errors, _warnings = dciodvfy(broken)
    assert any("<StudyInstanceUID>" in e for e in errors), errors
    assert any("<Modality>" in e for e in errors), errors


def test_pixelmed_refuses_a_non_sr_object() -> None:
    errors, _warnings = pixelmed_sr_validate(sample_path("CT_small.dcm"))
    assert errors and "unrecognized" in errors[0]


def test_orthanc_starts_answers_echo_and_dicomweb_then_leaves_nothing_behind() -> None:
    server = OrthancServer(aet="PEERTEST", modalities={"radgate": ("RADGATE", "127.0.0.1", 11112)})
    with server as orthanc:
        assert orthanc.get_json("/system")["DicomAet"] == "PEERTEST"
        assert orthanc.get_json("/modalities") == ["radgate"]
        assert "dicom-web" in orthanc.get_json("/plugins")
        assert orthanc.dicomweb_url == f"http://127.0.0.1:{orthanc.http_port}/dicom-web"

        ae = AE(ae_title="RADGATE")
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()

        proc = orthanc._proc
        storage = orthanc.log_path.parent
        assert storage.is_dir()
    assert proc is not None and proc.poll() is not None
    assert not storage.exists()
