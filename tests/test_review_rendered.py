"""WADO-RS rendered (PS3.18): the PNG radgate serves against DCMTK ``dcmj2pnm`` at the same window.

Reference: DCMTK 3.6 ``dcmj2pnm`` renders with ``+Ww CENTER WIDTH`` (an explicit VOI window, replacing the
image's own VOI), ``+Wl 1`` (the first VOI LUT of the image) or ``+Wi 1`` (its first window), applies the
MONOCHROME1 inversion, and writes an 8-bit PNG (``+on``). radgate's PNG must correlate at >= 0.999 with it
(issue 11) and differ by at most two grey levels anywhere, on every synthetic vendor profile (MONOCHROME1,
VOI LUT Sequence, Rescale, 10- to 15-bit, JPEG-free and big-endian transfer syntaxes).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.web.app import create_app
from radgate.worklist.render import encode_png, parse_window
from tests.helpers.auth import bearer, make_token
from tests.helpers.synth import image_for, profile_names
from tests.helpers.worklist import audit_entries, store_study

pytestmark = pytest.mark.peers


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[tuple[TestClient, InstanceStore, dict[str, str]]]:
    store = InstanceStore(settings, db)
    with TestClient(create_app(settings, db, store)) as c:
        yield c, store, bearer(make_token(db, Role.RADIOLOGIST))


def _dcmtk(path: Path, options: list[str], out: Path) -> np.ndarray:
    exe = shutil.which("dcmj2pnm")
    assert exe is not None, "dcmj2pnm missing: apt-get install dcmtk"
    subprocess.run(
        [exe, *options, "+on", "--no-overlays", str(path), str(out)], check=True, capture_output=True
    )
    return np.asarray(Image.open(out)).astype(np.float64)


def _url(st: object, window: str | None) -> str:
    base = f"/dicomweb/studies/{st.study}/series/{st.series}/instances/{st.sop}/rendered"  # type: ignore[attr-defined]
    return base + (f"?window={window}" if window else "")


def _compare(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert ours.shape == ref.shape, what
    r = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    assert r >= 0.999, f"{what}: correlation {r:.5f}"
    assert np.abs(ours - ref).max() <= 2, what


@pytest.mark.parametrize("profile", profile_names())
def test_rendered_matches_dcmj2pnm(profile: str, client: tuple, db: Database, tmp_path: Path) -> None:
    c, store, headers = client
    st = store_study(store, db, profile)
    ds = image_for(profile)
    # An explicit window well inside the stored range: ~the central 60% of the image's values
    from radgate.imaging import to_display

    own = to_display(ds)
    arr = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(
        ds.get("RescaleIntercept", 0) or 0
    )
    lo, hi = np.percentile(arr, [20, 80])
    center, width = round(float((lo + hi) / 2), 1), round(float(hi - lo), 1)
    response = c.get(_url(st, f"{center},{width},LINEAR"), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    ours = np.asarray(Image.open(io.BytesIO(response.content))).astype(np.float64)
    ref = _dcmtk(st.path, ["+Ww", str(center), str(width)], tmp_path / "win.png")
    _compare(ours, ref, f"{profile} window {center},{width}")
    if own.inverted:  # MONOCHROME1: high values are dark in both
        high = arr >= np.percentile(arr, 95)
        assert ours[high].mean() < ours[~high].mean() and ref[high].mean() < ref[~high].mean()

    # The image's own VOI when no window is given: its VOI LUT Sequence, else its first window
    default = c.get(_url(st, None), headers=headers)
    assert default.status_code == 200, default.text
    mine = np.asarray(Image.open(io.BytesIO(default.content))).astype(np.float64)
    option = ["+Wl", "1"] if own.voi_source == "voi_lut_sequence" else ["+Wi", "1"]
    if own.voi_source == "minmax":
        option = ["+Wm"]
    _compare(mine, _dcmtk(st.path, option, tmp_path / "own.png"), f"{profile} own VOI ({own.voi_source})")


def test_rendered_errors_and_audit(client: tuple, db: Database) -> None:
    c, store, headers = client
    st = store_study(store, db)
    assert c.get(_url(st, "40,400,LINEAR")).status_code == 401
    bad = c.get(_url(st, "40,400,SIGMOID"), headers=headers)
    assert bad.status_code == 400 and "SIGMOID" in bad.text
    assert c.get(_url(st, "40,0,LINEAR"), headers=headers).status_code == 400
    assert c.get(_url(st, "a,b"), headers=headers).status_code == 400
    missing = c.get(
        f"/dicomweb/studies/{st.study}/series/{st.series}/instances/1.2.3/rendered", headers=headers
    )
    assert missing.status_code == 404
    director = bearer(make_token(db, Role.AUDITOR))
    assert c.get(_url(st, None), headers=director).status_code == 403
    assert c.get(_url(st, "100,200,linear"), headers=headers).status_code == 200
    entries = audit_entries(db, "dicomweb.rendered")
    assert entries and entries[-1]["target"] == st.sop


def test_png_encoder_round_trips() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(7, 13), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(encode_png(img))))  # Pillow decodes it independently
    assert back.dtype == np.uint8 and np.array_equal(back, img)
    assert parse_window(None) is None and parse_window("1,2").function == "LINEAR"


@pytest.mark.parametrize("profile", profile_names())
def test_header_window_and_png_round_trip(profile: str) -> None:
    """The review page's window from the header equals to_display's; the Sub-filtered PNG decodes (Pillow)
    to exactly the pixels encoded."""
    from radgate.imaging import to_display
    from radgate.worklist.render import header_window

    ds = image_for(profile)
    display = to_display(ds)
    window = header_window(ds)
    if display.voi_source == "minmax":
        assert window is None
    else:
        assert window == pytest.approx((display.window_center, display.window_width))
    gray = np.rint(display.pixels * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(gray)))), gray)
