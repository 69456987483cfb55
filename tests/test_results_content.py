"""AIResult / AIFinding are valid by construction; identities give stable UIDs and SR revisions."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from radgate.results import AIFinding, Concept, ResultIdentity
from radgate.results.identity import derived_uid
from radgate.results.labels import series_description
from radgate.testing.results import PNEUMOTHORAX, chest_dx, example_result

UID = "1.2.826.0.1.3680043.8.498.1"


def finding(**overrides: object) -> AIFinding:
    values: dict[str, object] = dict(
        name="Pneumothorax",
        finding_type=PNEUMOTHORAX,
        probability=0.83,
        threshold=0.42,
        operating_point="high-sensitivity",
        present=True,
        SOPInstanceUID=UID,
    )
    values.update(overrides)
    return AIFinding(**values)  # type: ignore[arg-type]


def test_a_pydicom_code_is_accepted_as_concept() -> None:
    f = finding(finding_type=codes.SCT.Pneumothorax)
    assert f.finding_type == Concept("36118008", "SCT", "Pneumothorax")
    assert f.label == "Pneumothorax 0.83 (present)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"probability": 1.2}, r"Probability of 'Pneumothorax' 1.2 is outside \[0, 1\]"),
        ({"probability": float("nan")}, r"outside \[0, 1\]"),
        ({"threshold": -0.1}, r"Threshold of 'Pneumothorax' -0.1 is outside"),
        ({"probability": "0.8"}, r"must be a number in \[0, 1\], got str"),
        ({"present": False}, r"present=False contradicts probability 0.83 >= threshold 0.42"),
        ({"probability": 0.2}, r"present=True contradicts probability 0.2 < threshold 0.42"),
        ({"SOPInstanceUID": "1.2.abc"}, r"'1.2.abc' is not a valid DICOM UID"),
        ({"region": ((1, 1), (2, 2))}, r"at least 3 distinct"),
        ({"region": ((1, 1), (2, -2), (3, 1))}, r"finite and non-negative"),
        ({"name": ""}, r"Finding name '' must be a non-empty string"),
        ({"operating_point": "a\\b"}, r"must not contain a backslash"),
        ({"finding_type": "pneumothorax"}, r"Expected a Concept or a pydicom Code, got str"),
    ],
)
def test_findings_refuse_bad_values_naming_them(overrides: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        finding(**overrides)


def test_a_closed_region_is_stored_open() -> None:
    f = finding(region=[(1, 1), (5, 1), (5, 5), (1, 1)])
    assert f.region == ((1.0, 1.0), (5.0, 1.0), (5.0, 5.0))


def test_result_checks_model_identity_window_and_explanations() -> None:
    good = example_result([chest_dx()])
    with pytest.raises(ValueError, match="64 lower-case hex digits"):
        replace(good, model_sha256="abc")
    with pytest.raises(ValueError, match="task 'screening' is not one of"):
        replace(good, task="screening")
    with pytest.raises(ValueError, match=r"window_width 0.5 is below 1"):
        replace(good, window_width=0.5)
    with pytest.raises(ValueError, match="at least one finding"):
        replace(good, findings=())
    with pytest.raises(ValueError, match="which no finding refers to"):
        replace(good, explanations={"1.2.3": np.zeros((4, 4))})
    with pytest.raises(ValueError, match=r"range \[2.0, 2.0\]"):
        replace(good, explanations={good.findings[0].SOPInstanceUID: np.full((4, 4), 2.0)})
    uid = good.findings[0].SOPInstanceUID
    result = replace(good, explanations={uid: np.ones((8, 8))})
    assert not result.explanations[uid].flags.writeable
    assert result.source_uids == (uid,)


def test_series_descriptions_carry_the_synthetic_warning_and_fit_lo() -> None:
    synthetic = example_result([chest_dx()])
    assert series_description(synthetic, "SR") == "AI report: synthetic demo model - not for clinical use"
    real = replace(synthetic, synthetic=False, model_name="x" * 64)
    assert len(series_description(real, "PR")) == 64
    with pytest.raises(ValueError, match="Series kind 'XX'"):
        series_description(synthetic, "XX")


def test_identity_uids_are_stable_valid_and_distinct() -> None:
    a, b = ResultIdentity("job-1"), ResultIdentity("job-1")
    assert a.sr_sop_uid == b.sr_sop_uid  # same result, same UID: resends are never duplicates
    uids = {a.sr_series_uid, a.sr_sop_uid, a.pr_series_uid, a.pr_sop_uid(UID), a.sc_sop_uid(UID)}
    assert len(uids) == 5
    assert ResultIdentity("job-2").sr_sop_uid != a.sr_sop_uid
    for uid in uids:
        assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid) and len(uid) <= 64  # PS3.5 B.2
    with pytest.raises(ValueError, match="derive"):
        derived_uid()


def test_a_revision_names_its_predecessor_and_keeps_tracking_uids() -> None:
    first = ResultIdentity("job-1")
    second = first.next_revision()
    assert first.predecessor("1.2.3") is None
    previous = second.predecessor("1.2.3")
    assert previous is not None
    assert (previous.SeriesInstanceUID, previous.SOPInstanceUID) == (first.sr_series_uid, first.sr_sop_uid)
    assert second.sr_series_uid == first.sr_series_uid and second.sr_sop_uid != first.sr_sop_uid
    assert second.tracking_uid(0) == first.tracking_uid(0)
    assert previous.to_dataset().SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    with pytest.raises(ValueError, match="revision 0"):
        ResultIdentity("job-1", 0)
