"""OHIF Viewer v3 served by radgate at /viewer opens a stored study from radgate's DICOMweb, in Chromium.

Signed in as a radiologist, "Open in OHIF" on the review page opens the study; OHIF's own requests
(QIDO-RS, WADO-RS metadata and frames) go to radgate only (nothing else is reachable), none fails, and the
image is drawn: the viewport canvas is not blank and shows the radiograph's structure. OHIF's first-run tour
(Shepherd.js steps from the ``ohif.tours`` customization) is not shown: the browser context starts with an
empty localStorage, so OHIF would show it on this first visit unless radgate's app-config turns it off.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.testing.web import served_app
from radgate.web.app import create_app
from radgate.web.viewer import OHIF_DIST, ohif_installed
from tests.helpers.auth import PASSWORD, make_user
from tests.helpers.worklist import Stored, add_result, audit_entries, store_study

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(settings: Settings, db: Database) -> Iterator[tuple[str, Stored]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-peers.sh)")
    if not ohif_installed():
        pytest.skip(f"OHIF is not installed at {OHIF_DIST} (scripts/install-ohif.sh)")
    store = InstanceStore(settings, db)
    st = store_study(store, db, "fuji-cr", received_minutes_ago=3, description="CHEST PA")  # RLE, MONOCHROME1
    add_result(db, st, score=0.93)
    make_user(db, "rita", Role.RADIOLOGIST)
    app = create_app(settings, db, store)
    with served_app(app) as base:
        yield base, st


def _canvas_pixels(png: bytes) -> np.ndarray:
    from PIL import Image  # Pillow comes with highdicom

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def test_ohif_opens_a_study_from_radgate(served: tuple[str, Stored], db: Database, tmp_path: Path) -> None:
    server, st = served
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    requests: list[str] = []
    failed: list[str] = []
    bad_status: list[str] = []
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        # No network: anything not radgate is refused (and would be counted as a failed request).
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(server) or route.request.url.startswith("data:")
                else route.abort()
            ),
        )
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: bad_status.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(f"{server}/review/{st.study}")
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/review/{st.study}")
        href = page.get_attribute("#open-ohif", "href")
        assert href == f"/viewer/viewer?StudyInstanceUIDs={st.study}"
        page.goto(server + href)
        canvas = page.locator("canvas.cornerstone-canvas:visible").first
        try:
            canvas.wait_for(state="visible", timeout=90_000)
            page.wait_for_function(
                "() => [...performance.getEntriesByType('resource')].some(e => e.name.includes('/frames/1'))",
                timeout=60_000,
            )
            page.wait_for_timeout(3000)
            tour_steps = page.locator(".shepherd-element").count()
            shown_tours = page.evaluate("() => localStorage.getItem('shownTours')")
            shot = canvas.screenshot()
        finally:
            page.screenshot(path=str(tmp_path / "ohif.png"))  # kept by pytest for a failed run
            print("\n".join(console[-40:]))
        if os.environ.get("RADGATE_UPDATE_SCREENSHOTS"):
            page.screenshot(path=str(ROOT / "docs" / "ohif.png"))
        browser.close()
    pixels = _canvas_pixels(shot)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10, pixels.std()  # drawn, not a blank canvas
    assert tour_steps == 0 and shown_tours is None, (tour_steps, shown_tours)  # no first-run tour
    assert failed == [], failed
    assert bad_status == [], bad_status
    assert all(u.startswith(server) or u.startswith("data:") or u.startswith("blob:") for u in requests), [
        u for u in requests if not u.startswith(server)
    ]
    dicomweb = [u for u in requests if "/dicomweb/" in u]
    assert any(u.endswith("/metadata") for u in dicomweb), dicomweb
    assert any("/frames/1" in u for u in dicomweb), dicomweb
    assert [e["target"] for e in audit_entries(db, "viewer.open")] == [st.study]
    assert audit_entries(db, "dicomweb.frames")
