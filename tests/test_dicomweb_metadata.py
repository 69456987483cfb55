"""WADO-RS metadata, frames and bulk data (what OHIF asks for), with dicomweb-client as the client.

The frames of every vendor profile (the RLE Lossless CR included, decoded to native on the server) equal
pydicom's own decoding of the stored file; the metadata is DICOM JSON that pydicom reads back, with Pixel
Data (and any large binary value) as a BulkDataURI that resolves.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless, generate_uid

from radgate.auth import Role
from radgate.dicomweb.wado import FrameAnswer, negotiate_frames, parse_accept
from radgate.gateway import Gateway
from tests.helpers.auth import token_headers
from tests.helpers.synth import image_for, profile_names

NATIVE = "1.2.840.10008.1.2.1"


def _fresh(profile: str) -> Dataset:
    ds = image_for(profile)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)  # as a file would hold it (dicomweb-client writes what it reads)


@pytest.fixture
def client(gateway: Gateway, admin_headers: dict[str, str]) -> DICOMwebClient:
    return DICOMwebClient(url=f"http://127.0.0.1:{gateway.http_port}/dicomweb", headers=admin_headers)


def test_metadata_frames_and_bulkdata_for_every_profile(client: DICOMwebClient, gateway: Gateway) -> None:
    stored = {p: _fresh(p) for p in profile_names()}
    assert any(ds.file_meta.TransferSyntaxUID == RLELossless for ds in stored.values())
    client.store_instances(list(stored.values()))
    for profile, ds in stored.items():
        meta = client.retrieve_series_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        assert len(meta) == 1, profile
        back = Dataset.from_json(meta[0], bulk_data_uri_handler=lambda *_: b"")
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert (back.Rows, back.Columns, back.BitsStored) == (ds.Rows, ds.Columns, ds.BitsStored)
        assert back.PhotometricInterpretation == ds.PhotometricInterpretation
        uri = meta[0]["7FE00010"]["BulkDataURI"]
        assert uri.endswith(f"/instances/{ds.SOPInstanceUID}/bulkdata/7FE00010"), uri

        (frame,) = client.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
        )
        expected = pydicom.dcmread(_stored_path(gateway, ds.SOPInstanceUID)).pixel_array
        got = np.frombuffer(frame, dtype=expected.dtype.newbyteorder("<")).reshape(expected.shape)
        assert np.array_equal(got, expected), profile

        (bulk,) = client.retrieve_bulkdata(uri)
        assert bulk == frame, profile

    study_meta = client.retrieve_study_metadata(stored["agfa-dx"].StudyInstanceUID)
    assert [m["00080018"]["Value"][0] for m in study_meta] == [stored["agfa-dx"].SOPInstanceUID]


def _stored_path(gateway: Gateway, sop: str) -> str:
    return str(next(gateway.settings.store_dir.rglob(f"{sop}*.dcm")))


def test_frames_negotiation_and_errors(gateway: Gateway, admin_headers: dict[str, str]) -> None:
    ds = _fresh("fuji-cr")  # RLE Lossless
    cl = DICOMwebClient(url=f"http://127.0.0.1:{gateway.http_port}/dicomweb", headers=admin_headers)
    cl.store_instances([ds])
    url = (
        f"http://127.0.0.1:{gateway.http_port}/dicomweb/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    # OHIF's (cornerstone's) Accept for frames
    ohif = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    r = httpx.get(f"{url}/frames/1", headers={**admin_headers, "Accept": ohif})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        'multipart/related; type="application/octet-stream"; boundary='
    )
    head = r.content.split(b"\r\n\r\n", 1)[0].decode()
    assert f"Content-Type: application/octet-stream; transfer-syntax={NATIVE}" in head
    # the stored RLE frame, when that is what the client asks for
    rle = f'multipart/related; type="application/octet-stream"; transfer-syntax={RLELossless}'
    r = httpx.get(f"{url}/frames/1", headers={**admin_headers, "Accept": rle})
    assert r.status_code == 200 and f"transfer-syntax={RLELossless}".encode() in r.content[:300]
    # single part
    r = httpx.get(f"{url}/frames/1", headers={**admin_headers, "Accept": "application/octet-stream"})
    assert r.status_code == 200 and len(r.content) == ds.Rows * ds.Columns * 2
    # a syntax radgate does not produce: 406 naming what it does
    jpeg = 'multipart/related; type="image/jpeg"'
    r = httpx.get(f"{url}/frames/1", headers={**admin_headers, "Accept": jpeg})
    assert r.status_code == 406 and "transfer-syntax" in r.json()["error"]
    r = httpx.get(f"{url}/frames/2", headers=admin_headers)
    assert r.status_code == 404 and "has 1 frame" in r.json()["error"]
    r = httpx.get(f"{url}/frames/x", headers=admin_headers)
    assert r.status_code == 400
    r = httpx.get(f"{url}/bulkdata/00100010", headers=admin_headers)  # PatientName is not binary
    assert r.status_code == 404
    r = httpx.get(f"{url}/metadata")  # anonymous: refused
    assert r.status_code == 401
    viewer = token_headers(gateway.db, Role.RADIOLOGIST)
    assert httpx.get(f"{url}/metadata", headers=viewer).status_code == 200


def test_accept_parsing() -> None:
    ranges = parse_accept('multipart/related; type="application/octet-stream"; transfer-syntax=*, */*')
    assert ranges[0].part_type == "application/octet-stream" and ranges[0].transfer_syntax == "*"
    assert ranges[1].media_type == "*/*"
    assert negotiate_frames(None, RLELossless) == FrameAnswer(True, NATIVE)
    assert negotiate_frames("multipart/related; type=application/octet-stream", RLELossless).multipart
