"""Sources that omit type 2 patient/study attributes still get valid SR and GSPS (regression)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radgate.results.content import AIFinding, AIResult, Concept
from radgate.results.identity import ResultIdentity
from radgate.results.publish import build_objects
from radgate.testing.peers import dciodvfy
from tests.test_engine_support import make_dx

pytestmark = pytest.mark.peers


def test_source_without_birth_date_accession_or_study_time(tmp_path: Path) -> None:
    ds = make_dx(view="PA", bright_lesion=True, rows=128)
    for keyword in ("PatientBirthDate", "AccessionNumber", "StudyTime", "ReferringPhysicianName", "StudyID"):
        if keyword in ds:
            delattr(ds, keyword)
    finding = AIFinding(
        name="pneumothorax",
        finding_type=Concept("36118008", "SCT", "Pneumothorax"),
        probability=0.9,
        threshold=0.5,
        operating_point="default",
        present=True,
        SOPInstanceUID=ds.SOPInstanceUID,
        region=((1.0, 1.0), (10.0, 1.0), (10.0, 10.0)),
    )
    result = AIResult(
        model_name="tiny", model_version="1.0.0", model_sha256="a" * 64, synthetic=True, task="triage",
        findings=(finding,), window_center=2048, window_width=4096,
    )
    objects = build_objects(result, [ds], ResultIdentity("regression-type2"))
    assert [kind for kind, _ in objects] == ["SR", "PR"]
    for kind, obj in objects:
        assert obj.PatientBirthDate == "" and obj.StudyInstanceUID == ds.StudyInstanceUID
        path = tmp_path / f"{kind}.dcm"
        obj.save_as(path, enforce_file_format=True)
        errors, _ = dciodvfy(path)
        assert errors == [], (kind, errors)
