"""GSPS and heatmap SC against real peers: dciodvfy, DCMTK dcmpschk, and DCMTK's dcmp2pgm rendering compared
with radgate's own rendering (radgate.imaging.to_display) of the same window; MONOCHROME1 included."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from radgate.imaging import to_display
from radgate.results import AIFinding, AIResult, ResultIdentity, build_gsps, build_heatmap_sc
from radgate.results.labels import ROUGH_GUIDE, SYNTHETIC_WARNING
from radgate.testing import dciodvfy, which
from radgate.testing.results import chest_dx, example_result
from tests.helpers.synth import image_for, profile_names

pytestmark = pytest.mark.peers


def read_pgm(path: Path) -> np.ndarray:
    """A binary PGM (P5) as floats in [0, 1]."""
    data = path.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert header is not None, f"{path} is not a binary PGM"
    w, h, top = (int(v) for v in header.groups())
    dtype = np.uint8 if top < 256 else np.dtype(">u2")
    pixels = data[header.end() : header.end() + w * h * np.dtype(dtype).itemsize]
    return np.frombuffer(pixels, dtype=dtype).reshape(h, w).astype(np.float64) / top


def render(tmp_path: Path, image: Path, gsps: Path | None) -> np.ndarray:
    """DCMTK's rendering of ``image``, under ``gsps`` when given (dcmp2pgm -p)."""
    out = tmp_path / f"{image.stem}-{'gsps' if gsps else 'plain'}.pgm"
    args = [which("dcmp2pgm"), *(["-p", str(gsps)] if gsps else []), str(image), str(out)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return read_pgm(out)


def windowed(source: Dataset, center: float, width: float) -> np.ndarray:
    """radgate's rendering of ``source`` at the given window."""
    shown = Dataset()
    shown.update(source)
    shown.file_meta = source.file_meta
    shown.WindowCenter, shown.WindowWidth = center, width
    if "VOILUTSequence" in shown:
        del shown.VOILUTSequence
    return to_display(shown).pixels.astype(np.float64)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def sample(name: str) -> Dataset:
    return pydicom.dcmread(str(get_testdata_file(name)))


# name -> (source, the window the model used: None = the source's own VOI as to_display chose it)
CASES = {
    "cr_monochrome1_rg1": (lambda: sample("RG1_UNCR.dcm"), (12000.0, 9000.0)),
    "cr_monochrome1_rg3": (lambda: sample("RG3_UNCR.dcm"), (400.0, 700.0)),
    "dx_monochrome2": (lambda: chest_dx(photometric="MONOCHROME2"), (1800.0, 2400.0)),
    "dx_monochrome1": (lambda: chest_dx(photometric="MONOCHROME1"), (2300.0, 2400.0)),
    "voi_lut_sequence": (lambda: sample("vlut_04.dcm"), None),
    "modality_lut_sequence": (lambda: sample("mlut_18.dcm"), None),
}


def result_for(source: Dataset, window: tuple[float, float] | None) -> AIResult:
    if window is not None:
        return example_result([source], window=window)
    display = to_display(source)
    result = example_result([source], window=(display.window_center, display.window_width))
    return replace(result, voi_source=display.voi_source)


@pytest.mark.parametrize("name", list(CASES))
def test_gsps_is_valid_and_dcmtk_renders_what_radgate_renders(tmp_path: Path, name: str) -> None:
    make, window = CASES[name]
    source = make()
    result = result_for(source, window)
    gsps = build_gsps(result, source, ResultIdentity(f"pr-{name}"))
    image_path, gsps_path = tmp_path / "image.dcm", tmp_path / "gsps.dcm"
    source.save_as(image_path, enforce_file_format=True)
    gsps.save_as(gsps_path, enforce_file_format=True)

    errors, _warnings = dciodvfy(gsps_path)
    assert errors == []
    check = subprocess.run([which("dcmpschk"), str(gsps_path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "Test passed" in check.stdout + check.stderr, check.stdout + check.stderr

    dcmtk = render(tmp_path, image_path, gsps_path)
    ours = windowed(source, *window) if window else to_display(source).pixels.astype(np.float64)
    assert dcmtk.shape == ours.shape
    assert corr(dcmtk, ours) >= 0.99
    assert np.abs(dcmtk - ours).mean() < 0.01  # 8-bit output: one grey level is 0.0039
    if window is not None:
        # Without the GSPS, DCMTK shows the source's own window: a different picture. The GSPS is what
        # carries the model's window to the viewer.
        plain = render(tmp_path, image_path, None)
        assert np.abs(plain - ours).mean() > 0.03


def test_monochrome1_needs_an_inverse_presentation_lut(tmp_path: Path) -> None:
    """highdicom's default IDENTITY presentation LUT shows a MONOCHROME1 image inverted (the known trap)."""
    source = sample("RG1_UNCR.dcm")
    result = example_result([source], window=(15000.0, 30000.0))
    gsps = build_gsps(result, source, ResultIdentity("pr-trap"))
    assert gsps.PresentationLUTShape == "INVERSE"
    image_path, good, bad = tmp_path / "image.dcm", tmp_path / "good.dcm", tmp_path / "bad.dcm"
    source.save_as(image_path, enforce_file_format=True)
    gsps.save_as(good, enforce_file_format=True)
    gsps.PresentationLUTShape = "IDENTITY"
    gsps.save_as(bad, enforce_file_format=True)
    ours = to_display(source).pixels.astype(np.float64)
    assert corr(render(tmp_path, image_path, good), ours) >= 0.99
    assert corr(render(tmp_path, image_path, bad), ours) <= -0.99


def test_gsps_draws_the_region_and_labels_on_its_own_layer() -> None:
    source = chest_dx()
    result = example_result([source])
    identity = ResultIdentity("pr-content")
    gsps = build_gsps(result, source, identity)
    assert gsps.StudyInstanceUID == source.StudyInstanceUID
    assert gsps.SeriesInstanceUID == identity.pr_series_uid != source.SeriesInstanceUID
    assert gsps.PresentationLUTShape == "IDENTITY"
    voi = gsps.SoftcopyVOILUTSequence[0]
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (1800.0, 2400.0)
    assert [layer.GraphicLayer for layer in gsps.GraphicLayerSequence] == ["RADGATE_AI"]
    annotation = gsps.GraphicAnnotationSequence[0]
    assert annotation.GraphicLayer == "RADGATE_AI"
    assert annotation.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    outline = annotation.GraphicObjectSequence[0]
    assert outline.GraphicType == "POLYLINE" and outline.GraphicAnnotationUnits == "PIXEL"
    points = np.asarray(outline.GraphicData, dtype=float).reshape(-1, 2)
    assert len(points) == 5 and tuple(points[0]) == tuple(points[-1])  # closed
    assert np.allclose(points[:4], np.asarray(result.findings[0].region))  # (column, row) as given
    assert outline.TrackingUID == identity.tracking_uid(0)  # the SR's tracking UID: viewers can link them
    texts = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
    assert texts == ["Pneumothorax 0.83 (present)", SYNTHETIC_WARNING]
    assert SYNTHETIC_WARNING in gsps.SeriesDescription


def test_gsps_refuses_a_source_without_findings() -> None:
    source, other = chest_dx(rows=64, columns=64), chest_dx(rows=64, columns=64)
    result = example_result([source])
    with pytest.raises(ValueError, match=f"refers to source {other.SOPInstanceUID}"):
        build_gsps(result, other, ResultIdentity("x"))
    bad = replace(result, voi_source="voi_lut_sequence")
    with pytest.raises(ValueError, match="has no VOI LUT Sequence"):
        build_gsps(bad, source, ResultIdentity("x"))


def test_heatmap_secondary_capture_is_valid_and_labelled(tmp_path: Path) -> None:
    source = sample("RG1_UNCR.dcm")
    result = example_result([source], explanation=True)
    identity = ResultIdentity("sc-rg1")
    sc = build_heatmap_sc(result, source, identity)
    path = tmp_path / "sc.dcm"
    sc.save_as(path, enforce_file_format=True)
    errors, _warnings = dciodvfy(path)
    assert errors == []
    assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.SeriesInstanceUID == identity.sc_series_uid
    assert sc.BurnedInAnnotation == "YES"
    assert ROUGH_GUIDE in sc.ImageComments and SYNTHETIC_WARNING in sc.ImageComments
    assert sc.SeriesDescription == f"AI heatmap: {SYNTHETIC_WARNING}"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert max(sc.Rows, sc.Columns) == 1024 and sc.PhotometricInterpretation == "RGB"
    rgb = pydicom.dcmread(path).pixel_array.astype(float)
    rows, columns = rgb.shape[:2]
    # The map peaks at (19, 24) of 64x64: that part of the picture is tinted (red > blue); a cold corner is grey.
    hot = rgb[int(rows * 24 / 64), int(columns * 19 / 64)]
    cold = rgb[int(rows * 0.9), int(columns * 0.9)]
    assert hot[0] - hot[2] > 40
    assert abs(cold[0] - cold[2]) < 10
    # The label is burnt in: the top-left text box is dark with white letters.
    banner = rgb[: rows // 30, : columns // 3]
    assert banner.max() > 200 and np.median(banner) < 60


def test_heatmap_needs_a_map_for_its_source() -> None:
    source = chest_dx(rows=64, columns=64)
    result = example_result([source])
    with pytest.raises(ValueError, match="has no explanation map"):
        build_heatmap_sc(result, source, ResultIdentity("x"))
    unoriented = chest_dx(rows=64, columns=64)
    del unoriented.PatientOrientation
    f = AIFinding(**{**result.findings[0].__dict__, "SOPInstanceUID": unoriented.SOPInstanceUID})
    no_orientation = replace(
        result, findings=(f,), explanations={unoriented.SOPInstanceUID: np.zeros((4, 4))}
    )
    with pytest.raises(ValueError, match="neither PatientOrientation nor ImageOrientationPatient"):
        build_heatmap_sc(no_orientation, unoriented, ResultIdentity("x"))


@pytest.mark.parametrize("profile", profile_names())
def test_gsps_from_every_vendor_profile_passes_dciodvfy(tmp_path: Path, profile: str) -> None:
    """Defect: from a source with a VOI LUT Sequence (12-bit entries), the GSPS's Softcopy VOI LUT said 16 bits
    per entry while its data stop at 0xFFF, and dciodvfy reported "LookupTableData bad"."""
    source = image_for(profile)
    result = result_for(source, None)  # the source's own VOI, as the model saw it
    gsps = build_gsps(result, source, ResultIdentity(f"pr-{profile}"))
    path = tmp_path / "gsps.dcm"
    gsps.save_as(path, enforce_file_format=True)
    errors, _warnings = dciodvfy(path)
    assert errors == [], (profile, result.voi_source, errors)
    if "VOILUTSequence" in source:  # same entries and first value, 16 bits per entry
        lut = gsps.SoftcopyVOILUTSequence[0].VOILUTSequence[0]
        assert list(lut.LUTDescriptor)[:2] == list(source.VOILUTSequence[0].LUTDescriptor)[:2]
        assert int(lut.LUTDescriptor[2]) == 16
        image_path = tmp_path / "image.dcm"
        source.save_as(image_path, enforce_file_format=True)
        dcmtk = render(tmp_path, image_path, path)  # the rescaled LUT shows the same picture
        ours = to_display(source).pixels.astype(np.float64)
        assert corr(dcmtk, ours) >= 0.99 and np.abs(dcmtk - ours).mean() < 0.01
