"""The TID 1500 SR against real peers: dciodvfy, DCMTK dsrdump, PixelMed's DicomSRValidator, highdicom."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from radgate.results import AIFinding, ResultIdentity, SourceMismatchError, build_sr
from radgate.results.labels import SYNTHETIC_WARNING
from radgate.testing import dciodvfy, pixelmed_sr_validate, which
from radgate.testing.results import chest_dx, example_result

pytestmark = pytest.mark.peers


def rg1() -> Dataset:
    """pydicom-data's RG1_UNCR: CR, MONOCHROME1, PixelSpacing 0\\0, no ImagerPixelSpacing."""
    return pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Dataset, Dataset]]:
    """SRs written to disk once per module: name -> (path, sr, source)."""
    folder = tmp_path_factory.mktemp("sr")
    cases: dict[str, tuple[Path, Dataset, Dataset]] = {}
    cr = rg1()
    sr = build_sr(example_result([cr]), [cr], ResultIdentity("sr-rg1"))
    cases["rg1_region"] = (folder / "rg1.dcm", sr, cr)
    dx = chest_dx()
    revised = build_sr(
        example_result([dx], region=False, present=False),
        [dx],
        ResultIdentity("sr-dx", 2),
        verifying_observer_name="Reader^Synthetic",
        verifying_organization="radgate demo site",
    )
    cases["dx_revision2"] = (folder / "dx.dcm", revised, dx)
    for path, ds, _ in cases.values():
        ds.save_as(path, enforce_file_format=True)
    return cases


@pytest.fixture(scope="module")
def pixelmed(written: dict[str, tuple[Path, Dataset, Dataset]]) -> dict[str, tuple[list[str], list[str]]]:
    """PixelMed's verdict on each SR; the JVM runs take seconds, so they run side by side."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(pixelmed_sr_validate, path) for name, (path, _, _) in written.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", ["rg1_region", "dx_revision2"])
def test_dciodvfy_finds_no_errors(written: dict[str, tuple[Path, Dataset, Dataset]], name: str) -> None:
    errors, _warnings = dciodvfy(written[name][0])
    assert errors == []


@pytest.mark.parametrize("name", ["rg1_region", "dx_revision2"])
def test_pixelmed_tid1500_validator_finds_no_errors(
    pixelmed: dict[str, tuple[list[str], list[str]]], name: str
) -> None:
    errors, _warnings = pixelmed[name]
    assert errors == []


def dsrdump(path: Path) -> str:
    """DCMTK's rendering of the content tree, with all codes, long values and template identifiers."""
    args = [which("dsrdump"), "+Pc", "+Pl", "+Pt", str(path)]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=30).stdout


def test_dsrdump_shows_the_tid1500_tree(written: dict[str, tuple[Path, Dataset, Dataset]]) -> None:
    out = dsrdump(written["rg1_region"][0])
    for line in (
        "Verification Flag   : UNVERIFIED",
        "Completion Flag     : COMPLETE",
        "Series              : AI report: synthetic demo model - not for clinical use",
        '<CONTAINER:(126000,DCM,"Imaging Measurement Report")=CONTINUOUS>  # TID 1500 (DCMR)',
        '<contains CONTAINER:(125007,DCM,"Measurement Group")=CONTINUOUS>  # TID 1410 (DCMR)',
        '<has obs context TEXT:(112039,DCM,"Tracking Identifier")="radgate-demo-ptx Pneumothorax #1">',
        '<has obs context UIDREF:(112040,DCM,"Tracking Unique Identifier")="2.25.',
        '<has obs context CODE:(121005,DCM,"Observer Type")=(121007,DCM,"Device")>',
        '<has obs context TEXT:(121013,DCM,"Device Observer Name")="radgate">',
        '<has concept mod CODE:(121058,DCM,"Procedure reported")=(363679005,SCT,"Imaging procedure")>',
        '<contains CONTAINER:(111028,DCM,"Image Library")=CONTINUOUS>',
        '<contains CONTAINER:(126010,DCM,"Imaging Measurements")=CONTINUOUS>',
        '<contains CODE:(121071,DCM,"Finding")=(36118008,SCT,"Pneumothorax")>',
        '<has concept mod CODE:(363698007,SCT,"Finding Site")=(39607008,SCT,"Lung structure")>',
        '<has concept mod TEXT:(111001,DCM,"Algorithm Name")="radgate-demo-ptx">',
        '<has concept mod TEXT:(111003,DCM,"Algorithm Version")="1.0.0">',
        '<has concept mod TEXT:(111002,DCM,"Algorithm Parameters")="operating point: high-sensitivity">',
        f'<has concept mod TEXT:(111002,DCM,"Algorithm Parameters")="{SYNTHETIC_WARNING}">',
        '<contains NUM:(122157,DCM,"Probability")="0.83" (1,UCUM,"no units")>',
        '<contains CODE:(36118008,SCT,"Pneumothorax")=(52101004,SCT,"Present")>',
        '<contains SCOORD:(111030,DCM,"Image Region")=(POLYLINE,',
        '<selected from IMAGE:(260753009,SCT,"Source")=(CR image,',
    ):
        assert line in out, f"{line!r} missing from dsrdump output:\n{out}"


def test_document_identity_study_and_flags(written: dict[str, tuple[Path, Dataset, Dataset]]) -> None:
    path, _, source = written["rg1_region"]
    sr = pydicom.dcmread(path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.StudyInstanceUID == source.StudyInstanceUID  # results stay in the original study ...
    assert sr.SeriesInstanceUID not in (source.SeriesInstanceUID, "")  # ... in a new series
    assert sr.SOPInstanceUID == ResultIdentity("sr-rg1").sr_sop_uid
    assert (sr.VerificationFlag, sr.CompletionFlag, sr.PreliminaryFlag) == (
        "UNVERIFIED",
        "COMPLETE",
        "PRELIMINARY",
    )
    assert SYNTHETIC_WARNING in sr.SeriesDescription
    assert "PredecessorDocumentsSequence" not in sr
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == source.StudyInstanceUID
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        source.SOPInstanceUID
    )


def test_signed_revision_2_names_revision_1_as_predecessor(
    written: dict[str, tuple[Path, Dataset, Dataset]],
) -> None:
    path, _, source = written["dx_revision2"]
    sr = pydicom.dcmread(path)
    first = ResultIdentity("sr-dx", 1)
    assert sr.InstanceNumber == 2
    assert (sr.VerificationFlag, sr.PreliminaryFlag) == ("VERIFIED", "FINAL")  # signed off by a reader
    assert sr.VerifyingObserverSequence[0].VerifyingObserverName == "Reader^Synthetic"
    assert sr.SeriesInstanceUID == first.sr_series_uid
    predecessor = sr.PredecessorDocumentsSequence[0]
    assert predecessor.StudyInstanceUID == source.StudyInstanceUID
    series = predecessor.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == first.sr_series_uid
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == first.sr_sop_uid


def test_projection_radiograph_library_carries_geometry_and_zero_spacing_is_dropped(
    written: dict[str, tuple[Path, Dataset, Dataset]],
) -> None:
    dump_dx = dsrdump(written["dx_revision2"][0])
    # TID 1603 from the source's PatientOrientation and ImagerPixelSpacing.
    assert '<has acq context TEXT:(111044,DCM,"Patient Orientation Row")="L">' in dump_dx
    assert '<has acq context NUM:(111026,DCM,"Horizontal Pixel Spacing")="0.2" (mm,UCUM,"mm")>' in dump_dx
    # TID 1501 (no region): the group references its source image.
    assert '<contains CONTAINER:(125007,DCM,"Measurement Group")=CONTINUOUS>  # TID 1501 (DCMR)' in dump_dx
    assert '<contains IMAGE:(121112,DCM,"Source of Measurement")=(DX image,' in dump_dx
    assert '<contains CODE:(36118008,SCT,"Pneumothorax")=(272519000,SCT,"Absent")>' in dump_dx
    dump_cr = dsrdump(written["rg1_region"][0])
    assert "Pixel Spacing" not in dump_cr  # RG1's 0\0 is no spacing at all


def test_highdicom_reads_back_the_measurements(written: dict[str, tuple[Path, Dataset, Dataset]]) -> None:
    path, _, source = written["rg1_region"]
    report = hd.sr.srread(path).content
    assert isinstance(report, hd.sr.MeasurementReport)
    groups = report.get_planar_roi_measurement_groups()
    assert len(groups) == 1
    group = groups[0]
    assert group.tracking_uid == ResultIdentity("sr-rg1").tracking_uid(0)
    assert group.finding_type == codes.SCT.Pneumothorax
    assert group.tracking_identifier == "radgate-demo-ptx Pneumothorax #1"
    measurement = group.get_measurements(name=codes.DCM.Probability)[0]
    assert measurement.value == pytest.approx(0.83)
    assert group.get_qualitative_evaluations()[0].value == codes.SCT.Present
    region = group.roi
    assert region is not None and region.value.shape == (5, 2)  # closed: 4 vertices + the first again
    assert (
        region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    )


def test_a_half_named_verifier_is_refused() -> None:
    dx = chest_dx(rows=64, columns=64)
    with pytest.raises(ValueError, match="needs both verifying_observer_name"):
        build_sr(example_result([dx]), [dx], ResultIdentity("v", 2), verifying_observer_name="Reader^A")


def test_same_result_same_uids_other_result_other_uids() -> None:
    dx = chest_dx(rows=64, columns=64)
    result = example_result([dx])
    a = build_sr(result, [dx], ResultIdentity("k1"))
    b = build_sr(result, [dx], ResultIdentity("k1"))
    c = build_sr(result, [dx], ResultIdentity("k2"))
    assert a.SOPInstanceUID == b.SOPInstanceUID != c.SOPInstanceUID


def test_sources_that_do_not_fit_are_refused_with_the_uid() -> None:
    dx = chest_dx(rows=64, columns=64)
    other = chest_dx(rows=64, columns=64)
    result = example_result([dx])
    with pytest.raises(SourceMismatchError, match=f"{dx.SOPInstanceUID}.*not among the 1 source"):
        build_sr(result, [other], ResultIdentity("k"))
    two = example_result([dx, other])
    with pytest.raises(SourceMismatchError, match="belong to 2 studies"):
        build_sr(two, [dx, other], ResultIdentity("k"))
    outside = replace(result.findings[0], region=((10, 10), (80, 10), (80, 40)))
    with pytest.raises(SourceMismatchError, match=r"point \(80.0, 10.0\) outside source"):
        build_sr(replace(result, findings=(outside,)), [dx], ResultIdentity("k"))
    rgb = chest_dx(rows=64, columns=64)
    rgb.PhotometricInterpretation = "RGB"
    f = AIFinding(**{**result.findings[0].__dict__, "SOPInstanceUID": rgb.SOPInstanceUID})
    with pytest.raises(SourceMismatchError, match="PhotometricInterpretation 'RGB'"):
        build_sr(replace(result, findings=(f,)), [rgb], ResultIdentity("k"))
