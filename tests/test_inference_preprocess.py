"""Preprocessing matches DCMTK's rendering (``dcmj2pnm``) on real files, MONOCHROME1 included.

Reference: DCMTK 3.6 ``dcmj2pnm`` writes a 16-bit PNG (``+on2``) after Modality LUT, the VOI chosen by the
option, and the MONOCHROME1 inversion (its Presentation LUT). radgate's rendering is compared pixel by pixel:

- correlation >= 0.9999 and mean absolute error <= 1e-3 (of the [0, 1] range): the same transfer function;
- maximum absolute error <= 2 / 255 (two 8-bit grey levels): no pixel differs visibly.

Then the model input (resized by area averaging to 32x32) is compared with DCMTK's image resized by an
independent implementation (Pillow's ``Image.Resampling.BOX`` filter, also area averaging): max error <= 2 / 255.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from radgate.inference import preprocess
from radgate.models import Manifest
from tests.test_engine_support import manifest_dict

pytestmark = pytest.mark.peers

CASES = [
    # (pydicom test file, dcmj2pnm VOI option, what it exercises)
    ("RG1_UNCR.dcm", ["+Wi", "1"], "CR, MONOCHROME1, 15-bit, first window"),
    ("RG3_UNCR.dcm", ["+Wi", "1"], "CR, MONOCHROME1, 10-bit, first window"),
    ("MR_small.dcm", ["+Wi", "1"], "MR, signed 16-bit, first window"),
    ("MR-SIEMENS-DICOM-WithOverlays.dcm", ["+Wi", "1"], "MR, two windows: the first is the default"),
    ("CT_small.dcm", ["+Wm"], "CT, Rescale Slope/Intercept, no window: min-max"),
    ("mlut_18.dcm", ["+Wm"], "Modality LUT Sequence, no window: min-max"),
    ("vlut_04.dcm", ["+Wl", "1"], "VOI LUT Sequence"),
]


def _testfile(name: str) -> str:
    path = get_testdata_file(name)
    assert isinstance(path, str), f"pydicom test file {name} missing (pip install pydicom-data)"
    return path


def _dcmtk(path: str, options: list[str], out: Path) -> np.ndarray:
    exe = shutil.which("dcmj2pnm")
    assert exe is not None, "dcmj2pnm missing: apt-get install dcmtk"
    subprocess.run([exe, *options, "+on2", "--no-overlays", path, str(out)], check=True, capture_output=True)
    return np.asarray(Image.open(out)).astype(np.float64) / 65535.0


@pytest.mark.parametrize(("name", "options", "what"), CASES, ids=[c[0] for c in CASES])
def test_display_matches_dcmj2pnm(name: str, options: list[str], what: str, tmp_path: Path) -> None:
    path = _testfile(name)
    reference = _dcmtk(path, options, tmp_path / "ref.png")
    from radgate.imaging import to_display

    # The VOI LUT is applied to the stored integers (identity Modality LUT): no pydicom float-input warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = to_display(pydicom.dcmread(path)).pixels.astype(np.float64)
    assert ours.shape == reference.shape
    diff = np.abs(ours - reference)
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] >= 0.9999, what
    assert diff.mean() <= 1e-3, what
    assert diff.max() <= 2 / 255, what


def test_monochrome1_is_inverted_like_dcmtk(tmp_path: Path) -> None:
    path = _testfile("RG1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    reference = _dcmtk(path, ["+Wi", "1"], tmp_path / "ref.png")
    stored_high = ds.pixel_array >= np.percentile(ds.pixel_array, 99)
    stored_low = ds.pixel_array <= np.percentile(ds.pixel_array, 1)
    # In MONOCHROME1 high stored values are dark (PS3.3 C.7.6.3.1.2): both renderings show them darker.
    from radgate.imaging import to_display

    ours = to_display(ds)
    assert ours.inverted
    assert reference[stored_high].mean() + 0.5 < reference[stored_low].mean()
    assert ours.pixels[stored_high].mean() + 0.5 < ours.pixels[stored_low].mean()


def test_model_input_matches_resized_dcmtk(tmp_path: Path) -> None:
    path = _testfile("RG1_UNCR.dcm")
    reference = _dcmtk(path, ["+Wi", "1"], tmp_path / "ref.png").astype(np.float32)
    box = np.asarray(Image.fromarray(reference, mode="F").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    prep = Manifest.from_dict(manifest_dict()).preprocessing
    tensor = preprocess(pydicom.dcmread(path), prep)
    assert tensor.shape == (1, 32, 32) and tensor.dtype == np.float32
    assert np.abs(tensor[0] - box).max() <= 2 / 255


def test_zscore_normalisation_and_channels() -> None:
    path = _testfile("MR_small.dcm")
    raw = manifest_dict()
    raw["preprocessing"].update(normalisation="zscore", mean=0.5, std=0.25, channels=3)
    prep = Manifest.from_dict(raw).preprocessing
    ds = pydicom.dcmread(path)
    base = preprocess(ds, Manifest.from_dict(manifest_dict()).preprocessing)[0]
    tensor = preprocess(ds, prep)
    assert tensor.shape == (3, 32, 32)
    np.testing.assert_allclose(tensor[2], (base - 0.5) / 0.25, rtol=0, atol=1e-5)
