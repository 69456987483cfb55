"""Orthanc (the PACS peer) pushes a study to radgate with POST /modalities/<name>/store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import select

from radgate.db import Instance, Series
from radgate.gateway import Gateway
from radgate.testing.peers import OrthancServer
from tests.dicomgen import make_dx, to_bytes

pytestmark = pytest.mark.peers


def test_orthanc_pushes_a_study_to_radgate(gateway: Gateway) -> None:
    modalities = {"radgate": (gateway.settings.server.ae_title, "127.0.0.1", gateway.dicom.port)}
    with OrthancServer(modalities=modalities) as orthanc:
        study = "1.2.826.0.1.3680043.10.543.321"
        for i in range(3):
            r = httpx.post(
                f"{orthanc.http_url}/instances",
                content=to_bytes(make_dx(study, f"{study}.1", f"{study}.1.{i}", seed=i)),
            )
            assert r.status_code == 200, r.text
        # plus a real CR chest radiograph (pydicom-data RG1_UNCR: MONOCHROME1, 15-bit)
        rg1 = get_testdata_file("RG1_UNCR.dcm")
        r = httpx.post(f"{orthanc.http_url}/instances", content=Path(rg1).read_bytes())
        assert r.status_code == 200, r.text
        orthanc_studies = orthanc.get_json("/studies")
        assert len(orthanc_studies) == 2
        for orthanc_id in orthanc_studies:
            job = orthanc.post_json(
                "/modalities/radgate/store", {"Resources": [orthanc_id], "Synchronous": True}
            )
            assert job.get("FailedInstancesCount", 0) == 0, job
    with gateway.db.session() as s:
        rows = s.scalars(select(Instance)).all()
        assert len(rows) == 4
        assert {r.calling_ae for r in rows} == {"ORTHANC"}
        cr = next(r for r in rows if r.Modality == "CR")
        assert cr.PhotometricInterpretation == "MONOCHROME1" and cr.BitsStored == 15
        assert s.get(Series, f"{study}.1").num_instances == 3
