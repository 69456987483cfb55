"""The whole flow in one gateway: storescu -> store -> assembly -> routing -> inference -> SR + GSPS -> Orthanc.

A tiny ONNX model (tests/test_engine_support.py) stands in for a real one; the peers are real: DCMTK storescu
sends, Orthanc receives radgate's results, and a QIDO query on Orthanc finds them in the original study.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from radgate.config import Settings, load_settings
from radgate.db import database_for
from radgate.engine import Prediction, RoutingDecisionRow
from radgate.gateway import Gateway
from radgate.models import add_model
from radgate.results.tables import OutboxItem
from radgate.testing.peers import OrthancServer
from tests.test_engine_support import build_package, make_dx

pytestmark = pytest.mark.peers


def _settings(tmp_path: Path, mode: str, send_to: list[str]) -> Settings:
    settings = load_settings(
        data_dir=tmp_path / "data",
        environ={},
        server__dicom_port=0,
        server__http_port=0,
        assembly__quiet_period_s=0.3,
        assembly__poll_interval_s=0.1,
        results__send_to=send_to,
    )
    settings.deployments = [{"name": f"tiny-{mode}", "model": "tiny-ptx", "version": "1.0.0", "mode": mode}]
    db = database_for(settings, migrate=True)
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
    db.dispose()
    return settings


def _send(gateway: Gateway, folder: Path) -> None:
    result = subprocess.run(
        ["storescu", "-aec", "RADGATE", "+sd", "-aet", "MODALITY", "127.0.0.1", str(gateway.dicom.port), str(folder)],
        capture_output=True, text=True, env=dict(os.environ, TCP_NODELAY="1"), timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _wait(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the pipeline")


def _studies(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    pa = make_dx(view="PA", bright_lesion=True, rows=128)
    lateral = make_dx(view="LL", rows=128, StudyInstanceUID=pa.StudyInstanceUID)
    pa.save_as(folder / "pa.dcm", enforce_file_format=True)
    lateral.save_as(folder / "lat.dcm", enforce_file_format=True)
    return folder, pa.StudyInstanceUID, pa.SeriesInstanceUID


def test_live_result_reaches_orthanc_in_the_original_study(tmp_path: Path) -> None:
    with OrthancServer() as orthanc:
        settings = _settings(tmp_path, "live", [f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"])
        folder, study, series = _studies(tmp_path)
        with Gateway(settings) as gw:
            _send(gw, folder)

            def delivered() -> bool:
                with gw.db.session() as s:
                    rows = s.scalars(select(OutboxItem)).all()
                    return bool(rows) and all(r.status == "sent" for r in rows)

            _wait(delivered)
            with gw.db.session() as s:
                predictions = s.scalars(select(Prediction)).all()
                decisions = s.scalars(select(RoutingDecisionRow)).all()
        assert [(p.SeriesInstanceUID, p.mode, p.flag) for p in predictions] == [(series, "live", True)]
        skipped = [d for d in decisions if d.SeriesInstanceUID != series]
        assert len(skipped) == 1 and "ViewPosition LL is not in PA, AP" in (skipped[0].reason or "")

        found = httpx.get(f"{orthanc.dicomweb_url}/studies/{study}/series").json()
        modalities = sorted(item["00080060"]["Value"][0] for item in found)
        assert modalities == ["PR", "SR"]  # radgate's SR and GSPS, in the study the images came from


def test_silent_result_is_stored_and_never_sent(tmp_path: Path) -> None:
    with OrthancServer() as orthanc:
        settings = _settings(tmp_path, "silent", [f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"])
        folder, study, series = _studies(tmp_path)
        with Gateway(settings) as gw:
            _send(gw, folder)

            def predicted() -> bool:
                with gw.db.session() as s:
                    return s.scalars(select(Prediction)).first() is not None

            _wait(predicted)
            time.sleep(1.5)  # give the outbox worker its chances
            with gw.db.session() as s:
                prediction = s.scalars(select(Prediction)).one()
                assert s.scalars(select(OutboxItem)).all() == []
        assert prediction.mode == "silent"
        found = httpx.get(f"{orthanc.dicomweb_url}/studies/{study}/series").json()
        assert found == [] or all(item["00080060"]["Value"][0] == "DX" for item in found)
        assert not (settings.data_dir / "results").exists() or not any((settings.data_dir / "results").rglob("*.dcm"))
