"""dicomweb-client (the PyPI peer) does STOW-RS and QIDO-RS against radgate."""

from __future__ import annotations

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

from radgate.gateway import Gateway
from tests.dicomgen import make_dx, to_bytes


@pytest.fixture
def client(gateway: Gateway, admin_headers: dict[str, str]) -> DICOMwebClient:
    return DICOMwebClient(url=f"http://127.0.0.1:{gateway.http_port}/dicomweb", headers=admin_headers)


def test_stow_and_qido_with_dicomweb_client(client: DICOMwebClient, gateway: Gateway) -> None:
    study = "1.2.826.0.1.3680043.10.543.1"
    series = [make_dx(study, f"{study}.{k}", f"{study}.{k}.{i}", seed=i) for k in (1, 2) for i in range(3)]
    for i, ds in enumerate(series):
        ds.InstanceNumber = i + 1
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    response = client.store_instances(series + [ct])
    assert len(response.ReferencedSOPSequence) == 7
    assert "FailedSOPSequence" not in response

    studies = client.search_for_studies()
    by_uid = {s["0020000D"]["Value"][0]: s for s in studies}
    port = gateway.http_port  # dicomweb-client sends "Host" without the port: the URL must still have it
    assert by_uid[study]["00081190"]["Value"] == [f"http://127.0.0.1:{port}/dicomweb/studies/{study}"]
    assert set(by_uid) == {study, ct.StudyInstanceUID}
    assert by_uid[study]["00201208"]["Value"] == [6]  # NumberOfStudyRelatedInstances
    assert by_uid[study]["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
    assert by_uid[study]["00080061"]["Value"] == ["DX"]

    found = client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})
    assert [s["0020000D"]["Value"][0] for s in found] == [ct.StudyInstanceUID]
    found = client.search_for_studies(search_filters={"PatientName": "SYNTH*"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    found = client.search_for_studies(search_filters={"StudyDate": "20251201-20260131"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    assert client.search_for_studies(limit=1, offset=0).__len__() == 1

    series_rows = client.search_for_series(study)
    assert {r["0020000E"]["Value"][0] for r in series_rows} == {f"{study}.1", f"{study}.2"}
    assert all(r["00201209"]["Value"] == [3] for r in series_rows)  # NumberOfSeriesRelatedInstances

    instances = client.search_for_instances(study, f"{study}.1")
    assert [r["00200013"]["Value"][0] for r in instances] == [1, 2, 3]
    one = client.search_for_instances(study, f"{study}.1", search_filters={"SOPInstanceUID": f"{study}.1.0"})
    assert len(one) == 1


def test_stow_reports_failures_per_instance(gateway: Gateway, admin_headers: dict[str, str]) -> None:
    good = make_dx()
    bad = make_dx()
    del bad.SeriesInstanceUID
    boundary = "radgate-test-boundary"
    body = b""
    for data in (to_bytes(good), to_bytes(bad), b"not dicom at all"):
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    r = httpx.post(
        f"http://127.0.0.1:{gateway.http_port}/dicomweb/studies",
        content=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            **admin_headers,
        },
    )
    assert r.status_code == 202  # some stored, some failed (PS3.18 Table 10.5.3-2)
    response = pydicom.Dataset.from_json(r.json())
    assert len(response.ReferencedSOPSequence) == 1
    failed = response.FailedSOPSequence
    assert len(failed) == 2
    assert all(item.FailureReason == 0xC000 for item in failed)
    assert "SeriesInstanceUID is missing" in failed[0][0x00000902].value


def test_stow_wrong_study_and_bad_media_type(
    gateway: Gateway, client: DICOMwebClient, admin_headers: dict[str, str]
) -> None:
    ds = make_dx()
    with pytest.raises(Exception):  # noqa: B017 - dicomweb-client raises requests' HTTPError on 409
        client.store_instances([ds], study_instance_uid="1.2.3.4.5")
    r = httpx.post(
        f"http://127.0.0.1:{gateway.http_port}/dicomweb/studies",
        content=b"x",
        headers={"Content-Type": "application/json", **admin_headers},
    )
    assert r.status_code == 415
    assert r.json()["ok"] is False and "multipart/related" in r.json()["error"]


def test_qido_unknown_attribute_is_a_clear_400(gateway: Gateway, admin_headers: dict[str, str]) -> None:
    r = httpx.get(
        f"http://127.0.0.1:{gateway.http_port}/dicomweb/studies", params={"Frobnicate": "1"}, headers=admin_headers
    )
    assert r.status_code == 400
    body = r.json()
    assert body == {"ok": False, "status": 400, "title": "Bad Request", "error": body["error"]}
    assert "Frobnicate" in body["error"] and "supported" in body["error"]


def test_healthz_and_rejections_page(gateway: Gateway, admin_headers: dict[str, str]) -> None:
    base = f"http://127.0.0.1:{gateway.http_port}"
    assert httpx.get(f"{base}/healthz").json()["ok"] is True  # open, no credentials
    gateway.store.store_bytes(b"garbage" * 50, source="import", origin="x")
    rows = httpx.get(f"{base}/api/rejections", headers=admin_headers).json()
    assert rows and "Not a DICOM file" in rows[0]["reason"]
    page = httpx.get(f"{base}/rejections", headers=admin_headers).text
    assert "Not a DICOM file" in page and "not a medical device" in page


def test_wado_rs_retrieves_what_stow_stored(
    client: DICOMwebClient, gateway: Gateway, admin_headers: dict[str, str]
) -> None:
    """The RetrieveURLs radgate hands out resolve: dicomweb-client retrieves instance, series and study."""
    study = "1.2.826.0.1.3680043.10.543.2"
    datasets = [make_dx(study, f"{study}.1", f"{study}.1.{i}", seed=i) for i in range(2)]
    datasets.append(make_dx(study, f"{study}.2", f"{study}.2.0", seed=7))
    for i, ds in enumerate(datasets):
        ds.InstanceNumber = i + 1
    client.store_instances(datasets)
    one = client.retrieve_instance(study, f"{study}.1", f"{study}.1.1")
    assert one.SOPInstanceUID == f"{study}.1.1" and one.PixelData == datasets[1].PixelData
    series = client.retrieve_series(study, f"{study}.1")
    assert [ds.SOPInstanceUID for ds in series] == [f"{study}.1.0", f"{study}.1.1"]
    assert len(client.retrieve_study(study)) == 3
    missing = httpx.get(
        f"http://127.0.0.1:{gateway.http_port}/dicomweb/studies/1.2.3/series/4/instances/5", headers=admin_headers
    )
    assert missing.status_code == 404 and missing.json()["ok"] is False
