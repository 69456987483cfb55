"""No patient data in logs, on the surfaces sign-in and audit added (extends tests/test_ingest_store.py's test):
neither the Python log nor the audit log holds a patient's name, ID or birth date after STOW-RS, QIDO-RS with
a PatientName filter, WADO-RS, sign-in failures and a refused association."""

from __future__ import annotations

import json
import logging
import subprocess

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient

from radgate import audit
from radgate.auth import Role
from radgate.gateway import Gateway
from tests.dicomgen import make_dx
from tests.helpers.auth import bearer, make_token, make_user, sign_in

SECRETS = ("Doe", "Jane", "MRN-99887766", "19710203")
# The test's own clients log the URLs they request (with the query): those are not radgate's logs.
CLIENT_LOGGERS = ("urllib3", "dicomweb_client", "httpx", "httpcore", "requests")


def test_no_patient_data_in_logs_or_audit_log(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{gateway.http_port}"
    token = make_token(gateway.db, Role.ADMIN, "pacs")
    client = DICOMwebClient(url=f"{base}/dicomweb", headers=bearer(token))
    study = "1.2.826.0.1.3680043.10.543.88"
    ds = make_dx(study, f"{study}.1", f"{study}.1.1")
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-99887766"
    ds.PatientBirthDate = "19710203"
    client.store_instances([ds])
    assert len(client.search_for_studies(search_filters={"PatientName": "Doe*"})) == 1
    assert len(client.search_for_studies(search_filters={"PatientID": "MRN-99887766"})) == 1
    assert client.retrieve_instance(study, f"{study}.1", f"{study}.1.1").PatientName == "Doe^Jane"
    assert httpx.get(f"{base}/dicomweb/studies", params={"PatientName": "Doe*"}).status_code == 401
    make_user(gateway.db, "reader", Role.RADIOLOGIST)
    with httpx.Client(base_url=base) as browser:
        assert sign_in(browser, "reader", "not-the-password").status_code == 401
    subprocess.run(["echoscu", "-aec", "WRONG", "127.0.0.1", str(gateway.dicom.port)], capture_output=True, timeout=60)

    with gateway.db.session() as s:
        entries = list(audit.iter_entries(s))
    actions = {e["action"] for e in entries}
    assert {"dicomweb.store", "dicomweb.search", "dicomweb.retrieve", "auth.sign_in_failed"} <= actions
    searches = [e for e in entries if e["action"] == "dicomweb.search"]
    assert searches[0]["detail"]["filters"] == ["PatientName"] and searches[0]["detail"]["studies"] == [study]
    audit_text = json.dumps(entries)
    server_log = "\n".join(
        f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)
    )
    assert "refused" in server_log and "radgate.ingest.scp" in server_log
    for secret in SECRETS:
        assert secret not in server_log, secret
        assert secret not in audit_text, secret
