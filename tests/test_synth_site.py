"""The synthetic site on disk: byte-identical reruns, realistic headers per profile, labels.csv that agrees
with the headers, dciodvfy-clean files, and the ``radgate synth`` command."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from radgate.imaging import to_display
from radgate.synth import IMAGE_COMMENT, LABEL_COLUMNS, PROFILES, generate_site
from radgate.synth.population import age_on
from radgate.synth.profiles import CR_IMAGE_STORAGE, DX_IMAGE_STORAGE_FOR_PRESENTATION
from radgate.synth.scenario import parse_scenario, single_profile_scenario

STUDIES_PER_PROFILE = 3


@pytest.fixture(scope="module")
def profile_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small site per profile (3 studies each, pneumothorax prevalence 0.5)."""
    root = tmp_path_factory.mktemp("synth")
    out = {}
    for name in PROFILES:
        out[name] = root / name
        generate_site(out[name], single_profile_scenario(name, STUDIES_PER_PROFILE, prevalence=0.5), seed=11)
    return out


def _rows(site: Path) -> list[dict[str, str]]:
    with (site / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_site_and_another_seed_does_not(tmp_path: Path) -> None:
    from radgate.synth import builtin_scenario

    scenario = builtin_scenario("all-profiles").with_total(14)
    generate_site(tmp_path / "a", scenario, seed=7)
    generate_site(tmp_path / "b", scenario, seed=7)
    generate_site(tmp_path / "c", scenario, seed=8)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) >= 2 + 14  # labels.csv, site.json and at least one image per study
    assert {r["profile"] for r in _rows(tmp_path / "a")} == set(PROFILES)  # every encoder path, RLE included
    assert a == b
    uids_a = {r["SOPInstanceUID"] for r in _rows(tmp_path / "a")}
    uids_c = {r["SOPInstanceUID"] for r in _rows(tmp_path / "c")}
    assert uids_a.isdisjoint(uids_c)


def test_refuses_to_overwrite_a_site_unless_asked(tmp_path: Path) -> None:
    scenario = single_profile_scenario("ge-dx", 1)
    generate_site(tmp_path, scenario, seed=1)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_site(tmp_path, scenario, seed=1)
    summary = generate_site(tmp_path, scenario, seed=2, overwrite=True)
    assert len(_rows(tmp_path)) == summary.images


@pytest.mark.parametrize("name", list(PROFILES))
def test_headers_follow_the_profile(profile_sites: dict[str, Path], name: str) -> None:
    profile = PROFILES[name]
    site = profile_sites[name]
    rows = _rows(site)
    assert rows
    for row in rows:
        ds = pydicom.dcmread(site / row["path"])
        assert ds.SOPClassUID == profile.sop_class_uid
        assert ds.file_meta.TransferSyntaxUID == profile.transfer_syntax
        assert ds.Modality == ("CR" if profile.sop_class_uid == CR_IMAGE_STORAGE else "DX")
        assert ds.PhotometricInterpretation == profile.photometric
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16,
            profile.bits_stored,
            profile.bits_stored - 1,
            0,
        )
        assert (ds.Rows, ds.Columns) == (profile.rows, profile.columns)
        assert [float(v) for v in ds.ImagerPixelSpacing] == [profile.pitch_mm, profile.pitch_mm]
        assert ds.Manufacturer == profile.manufacturer
        assert ds.ManufacturerModelName == profile.model_name
        assert ds.SoftwareVersions == profile.software_versions
        assert ds.StationName == profile.station_name
        assert profile.kvp[0] - 15 <= float(ds.KVP) <= profile.kvp[1]
        assert int(ds.Exposure) >= 1 and int(ds.ExposureTime) >= 1
        assert ds.BodyPartExamined == "CHEST"
        assert ds.ViewPosition in ("PA", "AP", "LL")
        # Modality LUT and VOI LUT as the profile says.
        if profile.rescale is None:
            assert "RescaleSlope" not in ds
        else:
            assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) == (
                *profile.rescale,
                "US",
            )
        if profile.voi == "window":
            assert "VOILUTSequence" not in ds
            centers = ds.WindowCenter if ds["WindowCenter"].VM > 1 else [ds.WindowCenter]
            assert [float(c) for c in centers] == [c for c, _ in profile.windows]
        else:
            assert "WindowCenter" not in ds
            lut = ds.VOILUTSequence[0]
            assert list(lut.LUTDescriptor) == [profile.max_stored + 1, 0, 12]
            assert len(lut.LUTData) == profile.max_stored + 1
            assert np.all(np.diff(np.asarray(lut.LUTData, dtype=np.int64)) >= 0)  # monotonic
        if ds.SOPClassUID == DX_IMAGE_STORAGE_FOR_PRESENTATION:
            assert ds.PresentationIntentType == "FOR PRESENTATION"
            shape = "IDENTITY" if profile.photometric == "MONOCHROME2" else "INVERSE"
            assert ds.PresentationLUTShape == shape
        # Stored values stay in BitsStored and use the range; the display is a plausible radiograph.
        pixels = ds.pixel_array
        assert int(pixels.max()) <= profile.max_stored
        assert np.percentile(pixels, 99) - np.percentile(pixels, 1) > 0.4 * profile.max_stored
        shown = to_display(ds).pixels
        assert 0.15 < float(shown.mean()) < 0.85
        if profile.voi == "lut":  # the display is the LUT applied to the stored values, then inverted if MONO1
            table = np.asarray(ds.VOILUTSequence[0].LUTData, dtype=np.float64) / 4095.0
            expected = table[pixels.astype(np.int64)]
            if profile.photometric == "MONOCHROME1":
                expected = 1.0 - expected
            np.testing.assert_allclose(shown, expected, atol=1e-6)


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_file_says_it_is_synthetic(profile_sites: dict[str, Path], name: str) -> None:
    site = profile_sites[name]
    for row in _rows(site):
        ds = pydicom.dcmread(site / row["path"], stop_before_pixels=True)
        assert ds.SeriesDescription.startswith("SYNTHETIC")
        assert ds.ImageComments == IMAGE_COMMENT
        assert str(ds.PatientName).startswith("SYNTHETIC^PHANTOM-")
        assert ds.PatientIdentityRemoved == "YES" and "Synthetic" in ds.DeidentificationMethod
        assert ds.BurnedInAnnotation == "NO"
    provenance = json.loads((site / "site.json").read_text())
    assert provenance["synthetic"] is True and provenance["seed"] == 11


@pytest.mark.parametrize("name", list(PROFILES))
def test_labels_agree_with_headers(profile_sites: dict[str, Path], name: str) -> None:
    site = profile_sites[name]
    rows = _rows(site)
    assert tuple(rows[0]) == LABEL_COLUMNS
    per_series: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        ds = pydicom.dcmread(site / row["path"], stop_before_pixels=True)
        assert row["StudyInstanceUID"] == ds.StudyInstanceUID
        assert row["SeriesInstanceUID"] == ds.SeriesInstanceUID
        assert row["SOPInstanceUID"] == ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert row["AccessionNumber"] == ds.AccessionNumber
        assert row["PatientID"] == ds.PatientID
        assert row["view"] == ds.ViewPosition
        assert row["sex"] == ds.PatientSex
        assert row["manufacturer"] == ds.Manufacturer and row["model"] == ds.ManufacturerModelName
        assert row["profile"] == name and row["modality"] == ds.Modality
        study_date = dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date()
        assert row["study_date"] == study_date.isoformat() and row["month"] == study_date.strftime("%Y-%m")
        # PatientAge, PatientBirthDate and StudyDate agree.
        birth = dt.datetime.strptime(ds.PatientBirthDate, "%Y%m%d").date()
        assert ds.PatientAge == f"{int(row['age']):03d}Y"
        assert age_on(birth, study_date) == int(row["age"])
        assert (
            int(row["series_number"]) == ds.SeriesNumber and int(row["instance_number"]) == ds.InstanceNumber
        )
        if row["label"] == "1":
            assert row["side"] in ("left", "right") and row["location"] in ("apical", "lateral")
            assert row["size"] in ("small", "moderate", "large") and float(row["size_mm"]) > 0
        else:
            assert row["label"] == "0" and row["side"] == row["size"] == row["location"] == ""
        per_series[row["SeriesInstanceUID"]].append(row)
    for series_rows in per_series.values():
        expected = int(series_rows[0]["series_expected_instances"])
        complete = series_rows[0]["series_complete"] == "1"
        assert complete == (len(series_rows) == expected)


def test_incomplete_series_miss_an_instance_and_say_so(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "scenario": {"name": "gaps", "months": 1, "studies_per_month": 4, "prevalence": 0.0},
            "studies": {
                "lateral_fraction": 1.0,
                "two_series_fraction": 0.0,
                "missing_instance_fraction": 1.0,
            },
            "vendors": [{"from_month": 1, "mix": {"siemens-dx": 1.0}}],
        }
    )
    summary = generate_site(tmp_path, scenario, seed=3)
    rows = _rows(tmp_path)
    pa_studies = summary.studies - summary.by_view.get("AP", 0)
    assert summary.missing_instances == pa_studies > 0
    for row in rows:
        if row["view"] != "AP":
            assert (row["series_expected_instances"], row["series_complete"]) == ("2", "0")


@pytest.mark.peers
@pytest.mark.parametrize("name", list(PROFILES))
def test_dciodvfy_finds_no_errors(profile_sites: dict[str, Path], name: str) -> None:
    dciodvfy = shutil.which("dciodvfy")
    assert dciodvfy, "dciodvfy (Debian dicom3tools) is needed for this test"
    site = profile_sites[name]
    for row in _rows(site):
        result = subprocess.run([dciodvfy, str(site / row["path"])], capture_output=True, text=True)
        lines = (result.stdout + result.stderr).splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        warnings = [line for line in lines if line.startswith("Warning")]
        assert errors == [], f"{row['path']}: {errors}"
        assert len(warnings) <= 2, f"{row['path']}: {warnings}"


def test_cli_generates_a_site_and_lists_profiles(tmp_path: Path) -> None:
    import radgate.cli.synth  # noqa: F401  (registers the commands)
    from radgate.cli.app import app

    runner = CliRunner()
    out = tmp_path / "site"
    result = runner.invoke(
        app,
        [
            "synth",
            "--out",
            str(out),
            "--studies",
            "2",
            "--seed",
            "4",
            "--profile",
            "fuji-cr",
            "--data-dir",
            str(tmp_path / "data"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output.lower() and (out / "labels.csv").exists()
    assert {r["profile"] for r in _rows(out)} == {"fuji-cr"}

    again = runner.invoke(app, ["synth", "--out", str(out), "--studies", "2", "--profile", "fuji-cr"])
    assert again.exit_code == 1 and "--overwrite" in again.output

    listing = runner.invoke(app, ["synth", "profiles", "--json", "--data-dir", str(tmp_path / "data")])
    assert listing.exit_code == 0, listing.output
    assert {r["profile"] for r in json.loads(listing.stdout)} == set(PROFILES)

    both = runner.invoke(
        app, ["synth", "--out", str(tmp_path / "x"), "--profile", "ge-dx", "--scenario", "demo-site"]
    )
    assert both.exit_code == 2 and "not both" in both.output
    missing = runner.invoke(app, ["synth", "--studies", "2"])
    assert missing.exit_code == 2 and "--out" in missing.output
