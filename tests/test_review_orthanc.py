"""Accept on the review page (HTTP, signed-in radiologist): the VERIFIED SR revision reaches a real Orthanc
with the radiologist as Verifying Observer and the AI's first report as predecessor."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient

from radgate.auth import Role
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.ingest.store import InstanceStore
from radgate.results.outbox import deliver_pending, results_store
from radgate.results.send import destinations_from_settings
from radgate.results.sink import Publisher
from radgate.testing import OrthancServer
from radgate.web.app import create_app
from tests.helpers.auth import make_user, page_csrf, sign_in
from tests.helpers.worklist import add_result, store_study

pytestmark = pytest.mark.peers


@pytest.fixture
def orthanc() -> Iterator[OrthancServer]:
    with OrthancServer(aet="PACS") as server:
        yield server


def test_accept_sends_a_verified_revision_to_orthanc(
    orthanc: OrthancServer, settings: Settings, db: Database
) -> None:
    settings.results.send_to = [f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"]
    destinations = destinations_from_settings(settings)
    store = InstanceStore(settings, db)
    st = store_study(store, db, "carestream-portable")  # MONOCHROME1 with a VOI LUT
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[4:12, 4:12] = 1.0
    pid = add_result(db, st, score=0.91, settings=settings, explanation=hot)
    with db.session() as s:  # the AI's own report, as the results worker builds it
        Publisher(settings, destinations).publish_prediction(s, s.get(Prediction, pid))
    make_user(db, "rita", Role.RADIOLOGIST)
    with TestClient(create_app(settings, db, store), base_url="http://127.0.0.1") as c:
        sign_in(c, "rita")
        csrf = page_csrf(c.get(f"/review/{st.study}").text)
        r = c.post(f"/review/{st.study}/read", data={"action": "accept"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        written = r.json()["written"]
    report = deliver_pending(db, destinations, utcnow(), results_dir=results_store(settings.data_dir))
    assert report.failed == 0 and report.sent >= 4  # rev 1 SR + GSPS, rev 2 SR + GSPS

    client = DICOMwebClient(orthanc.dicomweb_url)
    found = {i["00080018"]["Value"][0] for i in client.search_for_instances(study_instance_uid=st.study)}
    assert set(written) <= found
    srs = []
    for uid in found:
        meta = client.search_for_instances(
            study_instance_uid=st.study, search_filters={"SOPInstanceUID": uid}
        )
        if meta and meta[0]["00080060"]["Value"][0] == "SR":
            series = meta[0]["0020000E"]["Value"][0]
            raw = client.retrieve_instance(st.study, series, uid)
            buf = io.BytesIO()
            pydicom.dcmwrite(buf, raw)
            srs.append(pydicom.dcmread(io.BytesIO(buf.getvalue())))
    by_flag = {ds.VerificationFlag: ds for ds in srs}
    assert set(by_flag) == {"UNVERIFIED", "VERIFIED"}
    verified = by_flag["VERIFIED"]
    assert str(verified.VerifyingObserverSequence[0].VerifyingObserverName) == "rita"
    prev = verified.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert prev.ReferencedSOPInstanceUID == by_flag["UNVERIFIED"].SOPInstanceUID
