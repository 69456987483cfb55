"""DICOM TLS with DCMTK's storescu +tls, HTTPS with Secure cookies, and the called AE title check."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import select

from radgate.auth import Role
from radgate.config import load_settings
from radgate.db import Instance, Rejection
from radgate.gateway import Gateway
from tests.helpers.auth import make_user, sign_in
from tests.helpers.datadir import make_data_dir
from tests.helpers.tls import Pki, make_pki

ENV = dict(os.environ, TCP_NODELAY="1")
CT = get_testdata_file("CT_small.dcm")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=ENV, timeout=120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _settings(tmp_path: Path, pki: Pki, **overrides: object):  # type: ignore[no-untyped-def]
    make_data_dir(tmp_path / "data")
    return load_settings(
        data_dir=tmp_path / "data",
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        tls__cert_file=str(pki.server_cert),
        tls__key_file=str(pki.server_key),
        **overrides,
    )


def test_storescu_over_tls_with_client_certificates(tmp_path: Path, pki: Pki) -> None:
    settings = _settings(tmp_path, pki, tls__dicom=True, tls__ca_file=str(pki.ca_cert))
    with Gateway(settings) as gw:
        port = str(gw.dicom.port)
        tls = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca_cert)]
        stored = run("storescu", *tls, "-aec", "RADGATE", "-aet", "MODALITY", "127.0.0.1", port, CT)
        assert stored.returncode == 0, stored.stderr
        plain = run("storescu", "-aec", "RADGATE", "-to", "10", "127.0.0.1", port, CT)
        assert plain.returncode != 0  # no TLS, no association
        # a client certificate from another CA is refused by the TLS handshake
        other = make_pki(tmp_path / "other")
        foreign = ["+tls", str(other.client_key), str(other.client_cert), "+cf", str(pki.ca_cert)]
        refused = run("storescu", *foreign, "-aec", "RADGATE", "-to", "10", "127.0.0.1", port, CT)
        assert refused.returncode != 0
        with gw.db.session() as s:
            assert len(s.scalars(select(Instance)).all()) == 1
        gw.db.dispose()


def test_https_with_secure_session_cookie(tmp_path: Path, pki: Pki) -> None:
    settings = _settings(tmp_path, pki, tls__http=True)
    with Gateway(settings) as gw:
        assert gw.http_url.startswith("https://")
        make_user(gw.db, "alice", Role.ADMIN)
        base = f"https://127.0.0.1:{gw.http_port}"
        with httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=str(pki.ca_cert))) as client:
            assert client.get("/healthz").json()["ok"] is True
            r = sign_in(client, "alice")
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            assert "radgate_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
            assert client.get("/").status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{gw.http_port}/healthz", timeout=5)
        gw.db.dispose()


def test_wrong_called_ae_title_is_refused(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=make_data_dir(tmp_path / "d"), environ={}, server__dicom_port=0, server__http_port=0
    )
    with Gateway(settings) as gw:
        port = str(gw.dicom.port)
        wrong = run("storescu", "-aet", "MODALITY", "-aec", "SOMEONE-ELSE", "127.0.0.1", port, CT)
        default = run("echoscu", "127.0.0.1", port)  # DCMTK's default called AE title is ANY-SCP
        right = run("echoscu", "-aec", "RADGATE", "127.0.0.1", port)
        assert wrong.returncode != 0 and "Called AE Title Not Recognized" in wrong.stderr, wrong.stderr
        assert default.returncode != 0 and right.returncode == 0
        with gw.db.session() as s:
            reasons = [r.reason for r in s.scalars(select(Rejection)).all()]
            assert not s.scalars(select(Instance)).all()
        assert any("'SOMEONE-ELSE'" in r and "auth.accept_any_called_ae" in r for r in reasons)
        gw.db.dispose()
    settings.auth.accept_any_called_ae = True
    with Gateway(settings) as gw:
        assert run("echoscu", "-aec", "ANYTHING", "127.0.0.1", str(gw.dicom.port)).returncode == 0
        gw.db.dispose()
