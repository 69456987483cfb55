"""De-identification (PS3.15 Annex E Basic Profile + options) and ``radgate export dataset``.

Every row of the action table on a synthetic DX with that attribute set; pydicom's own test files scanned
element by element (sequences, private tags and file meta included) for the original names, IDs, birth dates
and accession numbers; the export of a deployment (images + radgate's SR and GSPS) checked by dciodvfy and
its labels CSV keyed by the new UIDs.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from sqlalchemy import select
from typer.testing import CliRunner

from radgate.audit.tables import AuditEntry
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.learning.deid import ANNEX_E, Deidentifier, DeidOptions, Rule
from radgate.learning.export import export_dataset
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import results_store
from radgate.results.publish import publish
from radgate.testing import dciodvfy, which
from radgate.testing.results import chest_dx, example_result
from radgate.validation.tables import GroundTruth
from tests.helpers.learning import paired_site
from tests.test_engine_support import index_series

KEY = b"k" * 32
VALUES = {
    "PN": "Doe^Jane",
    "DA": "19610203",
    "TM": "101112",
    "DT": "19610203101112",
    "UI": "1.2.3.4.5.6",
    "LO": "ORIGINAL-LO",
    "SH": "ORIG-SH",
    "LT": "original text",
    "ST": "original text",
    "UT": "original text",
    "CS": "ORIGCS",
    "AS": "061Y",
    "DS": "1.5",
    "IS": "7",
    "AE": "ORIGAE",
    "US": 3,
    "UL": 3,
    "FD": 1.5,
    "FL": 1.5,
    "OB": b"\x01\x02",
    "UN": b"\x01\x02",
    "SS": 3,
    "SL": 3,
    "UC": "original",
    "UR": "http://example.org/x",
}


def _value(rule: Rule) -> tuple[str, object]:
    vr = dictionary_VR(rule.tag).split(" or ")[0]
    if vr == "SQ":
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X1", "99ORIG", "Doe^Jane"
        item.PersonName = "Doe^Jane"
        return vr, Sequence([item])
    return vr, VALUES[vr]


def _check(rule: Rule, action: str, deid: Deidentifier, patient_offset: int) -> None:
    ds = chest_dx()
    vr, value = _value(rule)
    ds.add_new(rule.tag, vr, value)
    deid.apply(ds)
    where = f"{rule.name} ({rule.tag:08X}) action {action}"
    if rule.tag == 0x00020003:  # lives in the file meta
        return
    if action == "X":
        assert rule.tag not in ds, where
        return
    assert rule.tag in ds, where
    new = ds[rule.tag].value
    if rule.tag in (0x00100010, 0x00100020):  # Z permits a dummy: the per-patient pseudonym
        assert str(new).startswith("RG-"), where
    elif action == "Z":
        assert new in ("", None) or (vr == "SQ" and len(new) == 0), where
    elif action == "K":
        assert new == value or vr == "SQ", where
    elif action == "U":
        if vr == "UI":
            assert new == deid.uid(str(value)) and new != value, where
    elif action == "D":
        if vr == "SQ":
            assert all("PersonName" not in item or item.PersonName != "Doe^Jane" for item in new), where
        else:
            assert new not in ("", None) and new != value, where
    elif action == "C" and vr in ("DA", "DT"):
        shifted = dt.date(1961, 2, 3) - dt.timedelta(days=patient_offset)
        assert str(new)[:8] == shifted.strftime("%Y%m%d"), where


@pytest.mark.parametrize(
    "options",
    [DeidOptions(), DeidOptions(retain_device_identity=True), DeidOptions(dates_modified=True)],
    ids=["basic", "rdi", "dates"],
)
def test_every_attribute_of_the_annex_e_table(options: DeidOptions) -> None:
    deid = Deidentifier(KEY, options)
    offset = deid.day_offset("SYN-RESULTS")
    for rule in ANNEX_E:
        _check(rule, deid.action(rule, clean_content=False), deid, offset)
    assert len(ANNEX_E) >= 249 and len({r.tag for r in ANNEX_E}) == len(ANNEX_E)
    by_option = {r.tag for r in ANNEX_E if (options.retain_device_identity and r.rdi == "K")}
    assert all(deid.action(r, False) == "K" for r in ANNEX_E if r.tag in by_option)


def test_profile_marks_and_uid_consistency() -> None:
    deid = Deidentifier(KEY, DeidOptions(dates_modified=True))
    a, b = chest_dx(), chest_dx()
    b.StudyInstanceUID = a.StudyInstanceUID
    a.add_new(0x00091010, "LO", "private secret")
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = b.SOPClassUID, b.SOPInstanceUID
    a.ReferencedImageSequence = Sequence([ref])
    original_b = b.SOPInstanceUID
    deid.apply(a)
    deid.apply(b)
    assert a.StudyInstanceUID == b.StudyInstanceUID  # one original, one new UID
    assert a.ReferencedImageSequence[0].ReferencedSOPInstanceUID == b.SOPInstanceUID != original_b
    assert a.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert not any(e.tag.is_private for e in a)
    assert a.PatientIdentityRemoved == "YES" and a.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [c.CodeValue for c in a.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107"]
    assert a.StudyDate != "20260101" and len(a.StudyDate) == 8
    burned = chest_dx()
    burned.BurnedInAnnotation = "YES"
    with pytest.raises(Exception, match="burned-in annotation"):
        deid.apply(burned)


def _strings(ds: Dataset) -> list[str]:
    out = []
    for elem in ds.iterall():
        if elem.VR in ("SQ",):
            continue
        value = elem.value
        if isinstance(value, bytes):
            out.append(value.decode("latin-1", errors="ignore"))
        elif isinstance(value, list | tuple) or (hasattr(value, "__iter__") and not isinstance(value, str)):
            out.extend(str(v) for v in value)
        else:
            out.append(str(value))
    return out


def _identifiers(ds: Dataset) -> set[str]:
    found = set()
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            for part in str(elem.value).replace("=", "^").split("^"):
                if len(part.strip()) >= 3:
                    found.add(part.strip())
        if (
            elem.keyword
            in (
                "PatientID",
                "OtherPatientIDs",
                "AccessionNumber",
                "PatientBirthDate",
                "IssuerOfPatientID",
                "StudyID",
                "MedicalRecordLocator",
            )
            and elem.value
        ):
            value = str(elem.value).strip()
            if len(value) >= (6 if value.isdigit() else 3):  # a short number would match by chance
                found.add(value)
    return found


def test_pydicom_test_files_keep_no_identifier() -> None:
    from pydicom.data import get_testdata_files

    files = [f for f in get_testdata_files("*.dcm") if Path(f).stat().st_size < 3_000_000]
    checked = 0
    for path in files:
        try:
            ds = dcmread(path)
        except (InvalidDicomError, OSError, ValueError, AttributeError):
            continue
        if "SOPInstanceUID" not in ds or str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            continue
        originals = _identifiers(ds)
        if not originals:
            continue
        try:
            Deidentifier(KEY).apply(ds)
        except (ValueError, TypeError, AttributeError, OverflowError):
            continue  # a test file pydicom cannot re-encode (malformed on purpose)
        text = "\n".join(_strings(ds) + (_strings(ds.file_meta) if hasattr(ds, "file_meta") else []))
        leaked = {o for o in originals if o in text and o not in ("ANONYMOUS",)}
        assert not leaked, f"{Path(path).name}: {leaked}"
        assert not any(e.tag.is_private for e in ds.iterall()), Path(path).name
        checked += 1
    assert checked >= 40


@pytest.mark.skipif(not which("dciodvfy"), reason="dciodvfy (dicom3tools) not installed")
def test_export_dataset_end_to_end(tmp_path: Path, settings: Settings, db: Database) -> None:
    paired_site(tmp_path, settings, db, n=8)  # the deployments; the simulated rows have no files
    dx = chest_dx()
    dx.PatientName, dx.PatientID, dx.AccessionNumber = "Smith^Johanna", "MRN-778899", "ACC-445566"
    dx.PatientBirthDate, dx.InstitutionName, dx.StationName = "19530417", "Saint Example", "ROOM-7"
    dx.OtherPatientIDs = "OTHER-12345"
    dx.add_new(0x00111010, "LO", "MRN-778899 private copy")
    # what chest_dx leaves out of the DX IOD, so that dciodvfy judges the export and not the phantom
    dx.ImageLaterality, dx.PixelIntensityRelationship, dx.PixelIntensityRelationshipSign = "U", "LOG", -1
    dx.PresentationLUTShape, dx.LossyImageCompression, dx.BurnedInAnnotation = "IDENTITY", "00", "NO"
    dx.DetectorType, dx.PositionerType = "SCINTILLATOR", ""
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "43799004", "SCT", "Chest"
    dx.AnatomicRegionSequence = Sequence([region])
    ctx = Dataset()
    ctx.ValueType, ctx.TextValue = "TEXT", "Smith^Johanna positioned by ROOM-7"
    dx.AcquisitionContextSequence = Sequence([ctx])
    uid = index_series(db, settings, [dx])
    with db.session() as s:
        template = s.scalars(select(Prediction).where(Prediction.deployment == "champion")).first()
        assert template is not None
        s.add(
            Prediction(
                **{c.key: getattr(template, c.key) for c in Prediction.__table__.columns if c.key != "id"}
                | {
                    "StudyInstanceUID": dx.StudyInstanceUID,
                    "SeriesInstanceUID": uid,
                    "SOPInstanceUID": dx.SOPInstanceUID,
                    "score": 0.83,
                }
            )
        )
        s.add(
            GroundTruth(
                StudyInstanceUID=dx.StudyInstanceUID,
                SeriesInstanceUID=None,
                label=1,
                source="biopsy",
                reference_date=dt.date(2026, 2, 1),
                imported_at=utcnow(),
                origin="t",
            )
        )
    publish(
        db,
        example_result([dx]),
        [dx],
        ResultIdentity(f"{uid}/champion/tiny-ptx/1.0.0"),
        release="released",
        destinations=["folder"],
        results_dir=results_store(settings.data_dir),
    )

    out = tmp_path / "export"
    summary = export_dataset(
        db,
        settings,
        "champion",
        out,
        by="ds",
        labels=True,
        retain_device_identity=True,
        retain_dates="modified",
    )
    assert summary.images == 1 and summary.results == 2 and summary.series == 1
    files = sorted((out / "dicom").rglob("*.dcm"))
    assert len(files) == 3
    originals = {
        "Smith",
        "Johanna",
        "MRN-778899",
        "ACC-445566",
        "19530417",
        "OTHER-12345",
        str(dx.StudyInstanceUID),
        str(uid),
        str(dx.SOPInstanceUID),
    }
    modalities = set()
    for path in files:
        raw = path.read_bytes().decode("latin-1")
        assert not {o for o in originals if o in raw}, path.name
        ds = dcmread(path)
        modalities.add(str(ds.Modality))
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("RG-")
        errors, _ = dciodvfy(path)
        assert errors == [], f"{ds.Modality}: {errors}"
    assert modalities == {"DX", "SR", "PR"}
    sr = next(dcmread(p) for p in files if dcmread(p).Modality == "SR")
    assert "113104" in [
        c.CodeValue for c in sr.DeidentificationMethodCodeSequence
    ]  # clean structured content
    assert "ContentSequence" in sr  # kept under Clean Structured Content
    image = next(dcmread(p) for p in files if dcmread(p).Modality == "DX")
    assert image.get("StationName") == "ROOM-7"  # retain device identity
    assert "InstitutionName" not in image
    with (out / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    mine = [r for r in rows if r["SeriesInstanceUID"] == str(image.SeriesInstanceUID)]
    assert (
        len(mine) == 1 and mine[0]["label"] == "1" and mine[0]["StudyInstanceUID"] == image.StudyInstanceUID
    )
    assert json.loads((out / "export.json").read_text())["images"] == 1
    with db.session() as s:
        assert "learning.export" in [e.action for e in s.scalars(select(AuditEntry))]

    import radgate.cli.learning  # noqa: F401  (registers the commands)
    from radgate.cli.app import app

    def cli(*args: str):
        return CliRunner().invoke(
            app, [*args, "--data-dir", str(settings.data_dir)], env={"RADGATE_CONFIG": ""}
        )

    again = cli("export", "dataset", "--deployment", "champion", "--out", str(tmp_path / "cli"), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["images"] == 1 and not (tmp_path / "cli" / "labels.csv").exists()
    busy = cli("export", "dataset", "--deployment", "champion", "--out", str(out))
    assert (
        busy.exit_code != 0
        and "is not empty" in " ".join(busy.stderr.split())
        and "Traceback" not in busy.output
    )
    bad = cli(
        "export",
        "dataset",
        "--deployment",
        "champion",
        "--out",
        str(tmp_path / "x"),
        "--retain-dates",
        "full",
    )
    assert bad.exit_code != 0 and "'modified'" in bad.stderr
