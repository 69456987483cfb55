"""WADO-RS rendered with ``viewport=VW,VH`` (PS3.18 Table 8.3.5-1): scaled to fit, aspect ratio kept; and
the six-value form ``VW,VH,SX,SY,SW,SH``: a source rectangle (clipped to the image, flipped for a negative
SW or SH), scaled the same way.

Reference: the full-size rendered PNG (itself checked against DCMTK ``dcmj2pnm`` in
tests/test_review_rendered.py) downscaled by exact area averaging with a dense overlap matrix written in the
test, and for integer factors also by Pillow's box filter (``Image.resize(..., Image.BOX)``; for
non-integer factors Pillow samples the box at pixel centres rather than weighting partial overlaps, so it
is not the same operation). Both are independent of radgate's :func:`radgate.imaging.resize_area`. The
viewport render must correlate with them at >= 0.999 and differ by at most one grey level (it averages
before rounding to 8 bits, the reference after). A source rectangle at its own size must equal, pixel for
pixel, the same numpy slice (and flip) of the full-size PNG.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.ingest.store import InstanceStore
from radgate.web.app import create_app
from radgate.worklist.render import SourceRegion, Viewport, fit_viewport, parse_viewport
from tests.helpers.auth import bearer, make_token
from tests.helpers.synth import profile_names
from tests.helpers.worklist import audit_entries, store_study


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[tuple[TestClient, InstanceStore, dict[str, str]]]:
    store = InstanceStore(settings, db)
    with TestClient(create_app(settings, db, store)) as c:
        yield c, store, bearer(make_token(db, Role.RADIOLOGIST))


def _url(st: object, query: str) -> str:
    base = f"/dicomweb/studies/{st.study}/series/{st.series}/instances/{st.sop}/rendered"  # type: ignore[attr-defined]
    return f"{base}?{query}" if query else base


def _png(response: object) -> Image.Image:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "image/png"  # type: ignore[attr-defined]
    return Image.open(io.BytesIO(response.content))  # type: ignore[attr-defined]


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Dense (n_out, n_in) weights: output bin k covers [k, k+1) * n_in / n_out of the input; each input
    pixel weighs by the length of its overlap with the bin (exact area averaging, written independently of
    radgate's banded cumulative version)."""
    weights = np.zeros((n_out, n_in))
    step = n_in / n_out
    for k in range(n_out):
        a, b = k * step, (k + 1) * step
        for j in range(int(np.floor(a)), min(int(np.ceil(b)), n_in)):
            weights[k, j] = max(0.0, min(b, j + 1) - max(a, j))
    return weights / weights.sum(axis=1, keepdims=True)


def _check(ours: np.ndarray, ref: np.ndarray, what: str, max_diff: float) -> None:
    r = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    assert r >= 0.999, f"{what}: correlation {r:.5f}"
    assert np.abs(ours - ref).max() <= max_diff, f"{what}: max difference {np.abs(ours - ref).max()}"


@pytest.mark.parametrize("profile", profile_names())
@pytest.mark.parametrize("viewport", [(208, 256), (300, 300), (1000, 160), (97, 1000), (0.5, 0.5), (0.25, 9)])
def test_viewport_matches_independent_downscale(
    profile: str, viewport: tuple[float, float], client: tuple, db: Database
) -> None:
    c, store, headers = client
    st = store_study(store, db, profile)
    window = "window=2000,3000,LINEAR"
    full = _png(c.get(_url(st, window), headers=headers))
    cols, rows = full.size
    vw, vh = (int(v * n) if v < 10 else int(v) for v, n in zip(viewport, (cols, rows), strict=True))
    small = _png(c.get(_url(st, f"{window}&viewport={vw},{vh}"), headers=headers))
    w, h = small.size
    # Fits within the viewport, touches it on one side, keeps the aspect ratio (to the pixel rounding)
    assert w <= vw and h <= vh, (small.size, (vw, vh))
    assert w == vw or h == vh, (small.size, (vw, vh))
    assert abs(w / h - cols / rows) <= (1 / min(w, h)) * (cols / rows) + 1e-9, (small.size, full.size)
    ours = np.asarray(small, dtype=np.float64)
    source = np.asarray(full, dtype=np.float64)
    what = f"{profile} viewport {vw},{vh} -> {w}x{h}"
    # Exact area average of the full 8-bit render; ours averages before rounding to 8 bits: <= 1 level
    ref = _area_matrix(rows, h) @ source @ _area_matrix(cols, w).T
    _check(ours, ref, what, 1.0)
    if cols % w == 0 and rows % h == 0:  # integer factor: Pillow's box filter is the same exact mean
        box = np.asarray(full.convert("F").resize((w, h), Image.BOX), dtype=np.float64)
        _check(ours, box, what + " (Pillow box)", 1.0)


def test_viewport_not_enlarged_and_audited(client: tuple, db: Database) -> None:
    c, store, headers = client
    st = store_study(store, db)  # agfa-dx, 512 rows x 416 columns
    full = c.get(_url(st, "window=2000,3000,LINEAR"), headers=headers)
    same = c.get(_url(st, "window=2000,3000,LINEAR&viewport=4096,4096"), headers=headers)
    assert _png(same).size == (416, 512)
    assert same.content == full.content  # a viewport larger than the image returns it as it is
    exact = c.get(_url(st, "viewport=416,512"), headers=headers)
    assert _png(exact).size == (416, 512)
    half = c.get(_url(st, "viewport=208,1000"), headers=headers)
    assert _png(half).size == (208, 256)
    entries = audit_entries(db, "dicomweb.rendered")
    assert entries[-1]["detail"]["viewport"] == "208,1000"


@pytest.mark.parametrize(
    "value",
    [
        "0,100", "100,0", "-5,10", "abc,100", "1.5,100", "100", "100,100,100", "70000,10",
        "10,10,-1,0,5,5", "10,10,0,-2,5,5", "10,10,0,0,0,5", "10,10,0,0,5,0", "10,10,0,0,x,5",
        "10,10,0,0,5,70000", "0,10,0,0,5,5", "10,10,0,0,5", "10,10,0,0,5,5,5", "10,10,416,0,5,5",
        "10,10,0,512,5,5", "10,10,nan,0,5,5",
    ],
)  # fmt: skip
def test_bad_viewport_is_400_naming_the_value(value: str, client: tuple, db: Database) -> None:
    c, store, headers = client
    st = store_study(store, db)
    response = c.get(_url(st, f"viewport={value}"), headers=headers)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert value in message and "\n" not in message, message


def test_parse_and_fit_viewport() -> None:
    assert parse_viewport(None) is None and parse_viewport("") is None
    assert parse_viewport(" 640 , 480 ") == Viewport(640, 480)
    assert parse_viewport("640,480,10,20,300,-200") == Viewport(640, 480, SourceRegion(10, 20, 300, -200))
    assert parse_viewport("64,48,10.4,19.6,-30.2,20") == Viewport(64, 48, SourceRegion(10, 20, -30, 20))
    with pytest.raises(Invalid):
        parse_viewport("640x480")
    assert fit_viewport(2048, 2048, None) == (2048, 2048)
    assert fit_viewport(2048, 2048, Viewport(900, 720)) == (720, 720)
    assert fit_viewport(2048, 1024, Viewport(900, 720)) == (720, 360)
    assert fit_viewport(3, 3000, Viewport(100, 100)) == (1, 100)  # never 0 rows
    assert fit_viewport(512, 416, Viewport(5000, 5000)) == (512, 416)


def _region_png(c: TestClient, st: object, headers: dict[str, str], viewport: str) -> np.ndarray:
    # The image's own VOI (a fixed window leaves some profiles' crops flat): the crop must take the VOI of
    # the whole image (for a min-max VOI, the whole image's range), not of the rectangle
    response = c.get(_url(st, f"viewport={viewport}"), headers=headers)
    return np.asarray(_png(response), dtype=np.float64)


@pytest.mark.parametrize("profile", profile_names())
def test_source_rectangle_is_the_same_crop_of_the_full_render(
    profile: str, client: tuple, db: Database
) -> None:
    c, store, headers = client
    st = store_study(store, db, profile)
    full = np.asarray(_png(c.get(_url(st, ""), headers=headers)), dtype=np.float64)
    rows, cols = full.shape
    # At its own size: exactly the slice of the full-size render (the window applies before the cut)
    crop = _region_png(c, st, headers, "200,150,40,60,200,150")
    assert np.array_equal(crop, full[60:210, 40:240]), profile
    # Negative SW / SH: the same rectangle, flipped
    assert np.array_equal(
        _region_png(c, st, headers, "200,150,40,60,-200,150"), full[60:210, 40:240][:, ::-1]
    )
    assert np.array_equal(_region_png(c, st, headers, "200,150,40,60,200,-150"), full[60:210, 40:240][::-1])
    # Past the image's edge: clipped to the image
    # (a rectangle from 100 pixels before the right and bottom edges, 500 wide and high, whatever the
    # profile's image size: the siemens-dx image is 1536², the smaller profiles' are not)
    sx, sy = cols - 100, rows - 100
    edge = _region_png(c, st, headers, f"1000,1000,{sx},{sy},500,500")
    assert np.array_equal(edge, full[sy:, sx:]), (edge.shape, full.shape)
    # Scaled into a smaller viewport: the area average of that crop (aspect kept: 100 x 75)
    small = _region_png(c, st, headers, "100,100,40,60,200,150")
    assert small.shape == (75, 100), small.shape
    source = full[60:210, 40:240]
    ref = _area_matrix(150, 75) @ source @ _area_matrix(200, 100).T
    assert ref.std() > 10, f"{profile}: the crop has too little contrast at this window to compare"
    _check(small, ref, f"{profile} 200x150 crop in 100x100", 1.0)
    assert rows == full.shape[0] and cols == full.shape[1]


def test_source_rectangle_outside_the_image_names_the_size(client: tuple, db: Database) -> None:
    c, store, headers = client
    st = store_study(store, db)  # agfa-dx, 512 rows x 416 columns
    response = c.get(_url(st, "viewport=100,100,420,0,50,50"), headers=headers)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "420,0,50,50" in message and "416 x 512" in message and "\n" not in message, message
    ok = c.get(_url(st, "viewport=100,100,0,0,50,50"), headers=headers)
    assert _png(ok).size == (50, 50)
    assert audit_entries(db, "dicomweb.rendered")[-1]["detail"]["viewport"] == "100,100,0,0,50,50"
