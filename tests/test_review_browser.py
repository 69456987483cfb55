"""The review page in Chromium beyond accept: modify moves the region (the new SR revision has the new
coordinates and the free text), the model card link, and label requests from the annotation queue
(labelled from the worklist's "Label requests", ground truth recorded, the request closed, audited)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select, update

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.db.schema import Study
from radgate.ingest.store import InstanceStore
from radgate.learning.tables import LabelRequest
from radgate.results.outbox import OutboxItem, results_store
from radgate.testing.web import served_app
from radgate.validation.tables import GroundTruth
from radgate.web.app import create_app
from radgate.worklist.tables import ReviewRead
from tests.helpers.auth import PASSWORD, make_user
from tests.helpers.synth import image_for
from tests.helpers.worklist import Stored, add_label_request, add_result, audit_entries, store_study

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def served(settings: Settings, db: Database) -> Iterator[tuple[str, dict[str, Stored], int]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-peers.sh)")
    store = InstanceStore(settings, db)
    studies = {
        "flagged": store_study(store, db, "siemens-dx", received_minutes_ago=4, description="CHEST PA"),
        "picked": store_study(store, db, "ge-dx", received_minutes_ago=2, description="CHEST AP PICKED"),
    }
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[10:18, 6:14] = 1.0
    add_result(db, studies["flagged"], score=0.94, settings=settings, explanation=hot)
    # the picked case has a shadow result only: its score must not reach the radiologist
    add_result(db, studies["picked"], policy="shadow", score=0.513, deployment="demo-shadow")
    request_id = add_label_request(db, studies["picked"])
    make_user(db, "rita", Role.RADIOLOGIST)
    app = create_app(settings, db, store)
    with served_app(app) as base:
        yield base, studies, request_id


def _walk(items):  # type: ignore[no-untyped-def]
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def test_modify_moves_the_region_and_label_requests(served: tuple, db: Database, settings: Settings) -> None:
    server, st, request_id = served
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(f"{server}/review/{st['flagged'].study}")
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/review/{st['flagged'].study}")
        page.wait_for_function("() => document.getElementById('image').complete")
        assert page.get_attribute("#model-card", "href") == "/models/demo-pneumothorax/1.0.0"
        ai_region = [float(v) for v in page.get_attribute("#region", "data-region").split(",")]

        # Modify by keys and mouse: m, Shift-drag a new region, free text, Enter
        page.keyboard.press("m")
        page.select_option("#present", "present")
        page.fill("#read-text", "Apical pneumothorax, 2 cm rim.")
        page.click("h1")  # leave the text box: keys act on the page again
        box = page.evaluate(
            "() => { const r = document.getElementById('stage').getBoundingClientRect();"
            " return {x: r.left, y: r.top, w: r.width, cols: +document.getElementById('viewer').dataset.columns}; }"
        )
        scale = box["w"] / box["cols"]
        x1, y1, x2, y2 = box["x"] + 60, box["y"] + 80, box["x"] + 200, box["y"] + 260
        page.keyboard.down("Shift")
        page.mouse.move(x1, y1)
        page.mouse.down()
        page.mouse.move(x2, y2, steps=8)
        page.mouse.up()
        page.keyboard.up("Shift")
        drawn = [float(v) for v in page.get_attribute("#region", "data-region").split(",")]
        expected = [60 / scale, 80 / scale, 200 / scale, 260 / scale]
        assert np.allclose(drawn, expected, atol=1 / scale + 0.1), (drawn, expected)  # a screen pixel
        assert not np.allclose(drawn, ai_region, atol=2)  # it moved
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('result').dataset.saved === 'modify'")

        # The worklist's "Label requests": the picked case, without its shadow score
        page.goto(f"{server}/worklist")
        row = page.locator(f'#label-requests tr[data-label-request="{request_id}"]')
        assert row.count() == 1 and "CHEST AP PICKED" in row.inner_text()
        assert "0.51" not in page.inner_text("main")
        row.locator("a").click()
        page.wait_for_url(f"{server}/review/{st['picked'].study}?label_request={request_id}")
        assert "0.51" not in page.inner_text("main")  # shadow: no score, no strategy reason
        assert page.locator("#region").count() == 0
        page.select_option("#label-present", "absent")
        page.fill("#read-text", "No pneumothorax.")
        page.click("#label-save")
        page.wait_for_function("() => document.getElementById('result').dataset.saved === 'label'")
        page.goto(f"{server}/worklist")
        assert page.locator("#label-requests").count() == 0  # closed: no open request left
        browser.close()
    assert failed == [] or all(u.endswith("/worklist/events") for u in failed), failed

    # the new SR revision has the new coordinates, the read and the free text
    with db.session() as s:
        read = s.scalars(select(ReviewRead).where(ReviewRead.action == "modify")).one()
        path = s.scalars(select(OutboxItem.path).where(OutboxItem.SOPInstanceUID == read.sr_sop_uid)).one()
    sr = pydicom.dcmread(results_store(settings.data_dir) / path)
    items = list(_walk(sr.ContentSequence))
    graphic = np.asarray(next(i.GraphicData for i in items if "GraphicData" in i), dtype=float).reshape(-1, 2)
    assert np.allclose(graphic.min(axis=0), drawn[:2], atol=0.11)
    assert np.allclose(graphic.max(axis=0), drawn[2:], atol=0.11)
    texts = {i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue for i in items if i.ValueType == "TEXT"}
    assert texts["Comment"] == "Apical pneumothorax, 2 cm rim."
    assert sr.VerificationFlag == "VERIFIED" and read.text == "Apical pneumothorax, 2 cm rim."

    # the label: ground truth (radiologist) for the series and study, the request closed, audited
    with db.session() as s:
        truth = {
            (t.SeriesInstanceUID or t.StudyInstanceUID, t.source, t.label)
            for t in s.scalars(select(GroundTruth).where(GroundTruth.source == "radiologist"))
        }
        status = s.get(LabelRequest, request_id).status  # type: ignore[union-attr]
        label_read = s.scalars(select(ReviewRead).where(ReviewRead.action == "label")).one()
    assert truth == {(st["picked"].series, "radiologist", 0), (st["picked"].study, "radiologist", 0)}
    assert status == "labelled"
    assert (label_read.label_request_id, label_read.text) == (request_id, "No pneumothorax.")
    (entry,) = audit_entries(db, "review.label")
    assert entry["target"] == st["picked"].study and entry["detail"]["label_request"] == request_id
    assert "No pneumothorax" not in str(entry)  # the free text stays out of the audit log


def _store_large(settings: Settings, db: Database, zoom: int) -> Stored:
    """A released, flagged study whose image is the siemens-dx profile enlarged ``zoom`` times (a 512²
    image fits every test window whole, so it cannot show the page asking for less)."""
    ds = image_for("siemens-dx")
    ds.PixelData = np.kron(ds.pixel_array, np.ones((zoom, zoom), dtype=ds.pixel_array.dtype)).tobytes()
    ds.Rows, ds.Columns = ds.Rows * zoom, ds.Columns * zoom
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDescription = "CHEST PA LARGE"
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    store = InstanceStore(settings, db)
    assert store.store_bytes(buf.getvalue(), source="import").ok
    with db.session() as s:
        s.execute(
            update(Study).where(Study.StudyInstanceUID == ds.StudyInstanceUID).values(status="complete")
        )
    path = next(store.root.rglob(f"{ds.SOPInstanceUID}*.dcm"))
    large = Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, path)
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[10:18, 6:14] = 1.0
    add_result(db, large, score=0.96, settings=settings, explanation=hot)
    return large


def test_image_requested_at_the_displayed_size(served: tuple, settings: Settings, db: Database) -> None:
    """WADO-RS rendered is asked for the long side the image is shown at (CSS pixels x devicePixelRatio)
    rounded up to a multiple of 256, at most the image's own; again larger on zoom; the region outline stays
    in image pixel space. Once a page has left its image box in the radgate_viewer cookie, the server writes
    the next page's <img src> and the image is asked for once."""
    server, _, _ = served
    large = _store_large(settings, db, 3)  # 1536 x 1536
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    natural = "() => document.getElementById('image').naturalWidth"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # 600x500: the viewer is 420x400 CSS px, the 1536² image is fitted at 400/1536: 400 px -> 512
        page = browser.new_page(viewport={"width": 600, "height": 500})
        page.goto(f"{server}/review/{large.study}")
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/review/{large.study}")
        page.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
        src = page.get_attribute("#image", "src") or ""
        assert "viewport=512,512" in src and "window=" in src, src
        assert page.evaluate(natural) == 512
        region = page.get_attribute("#region", "data-region")
        assert page.get_attribute("#overlay", "viewBox") == "0 0 1536 1536"

        def outline() -> list[float]:
            return page.evaluate(
                "() => { const s = document.getElementById('stage').getBoundingClientRect();"
                " const r = document.getElementById('region').getBoundingClientRect();"
                " const k = s.width / 1536; return [(r.left - s.left) / k, (r.top - s.top) / k]; }"
            )

        x0, y0 = (float(v) for v in (region or "").split(",")[:2])
        assert all(abs(a - b) <= 4 for a, b in zip(outline(), (x0, y0), strict=True))
        page.click("[data-zoom='1.25']")  # 500 px: the 512 PNG still covers it, nothing fetched
        page.click("[data-zoom='1.25']")  # 625 px: a sharper image is fetched, 768
        page.wait_for_function(f"{natural} === 768")
        assert "viewport=768,768" in (page.get_attribute("#image", "src") or "")
        assert all(abs(a - b) <= 4 for a, b in zip(outline(), (x0, y0), strict=True))
        assert page.get_attribute("#region", "data-region") == region
        before = page.get_attribute("#image", "src") or ""
        page.click("[data-preset='wide']")  # a new window keeps the displayed size
        page.wait_for_function(
            f"() => document.getElementById('image').src.split('?')[1] !== {before.split('?')[1]!r}"
        )
        page.wait_for_function(
            "() => { const i = document.getElementById('image'); return i.complete && i.naturalWidth === 768; }"
        )
        assert "viewport=768,768" in (page.get_attribute("#image", "src") or "")
        # A high-density screen: 280 CSS px x 1.5 = 420 device pixels -> 512
        dense = browser.new_page(viewport={"width": 400, "height": 400}, device_scale_factor=1.5)
        dense.context.add_cookies(page.context.cookies())
        dense.goto(f"{server}/review/{large.study}")
        dense.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
        assert "viewport=512,512" in (dense.get_attribute("#image", "src") or "")
        # The 512² study fits whole: its own size, asked for once (the early request, not a second one)
        small = browser.new_page(viewport={"width": 600, "height": 500})
        small.context.add_cookies(page.context.cookies())
        rendered: list[str] = []
        small.on("request", lambda r: rendered.append(r.url) if "/rendered" in r.url else None)
        html = small.goto(f"{server}/review/{served[1]['flagged'].study}").text()  # type: ignore[union-attr]
        # The image box the first page left in its cookie: the server wrote the <img src> itself
        assert 'src="/dicomweb/studies/' in html and "viewport=512,512" in html
        small.wait_for_function("() => document.getElementById('image').naturalWidth === 512")
        small.wait_for_timeout(300)
        assert len(rendered) == 1 and "viewport=512,512" in rendered[0], rendered
        browser.close()


def test_image_box_fits_the_image_and_the_ai_panel_is_beside_it(
    served: tuple, settings: Settings, db: Database
) -> None:
    """At 1400 x 900 the image box has the image's own aspect ratio (the image fills it: no black band
    beside a square or portrait image) and the AI panel sits to the right of the image, not below it.
    (Found on docs/review.png: a 900 x 720 box around a square image, the panel under the image.)"""
    server, st, _ = served
    portrait = store_study(
        InstanceStore(settings, db), db, "fuji-cr", received_minutes_ago=1, description="CHEST PA PORTRAIT"
    )  # 420 x 512
    add_result(db, portrait, score=0.91)
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    boxes = (
        "() => { const r = id => document.querySelector(id).getBoundingClientRect();"
        " const v = r('#viewer'), s = r('#stage'), p = r('.side'), d = document.getElementById('viewer').dataset;"
        " return {rows: +d.rows, cols: +d.columns, vl: v.left, vt: v.top, vw: v.width, vh: v.height,"
        " sw: s.width, sh: s.height, pl: p.left, pt: p.top}; }"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{server}/review/{st['flagged'].study}")
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        for study in (st["flagged"], portrait):
            page.goto(f"{server}/review/{study.study}")
            page.wait_for_function("() => document.getElementById('image').complete")
            b = page.evaluate(boxes)
            assert abs(b["vw"] / b["vh"] - b["cols"] / b["rows"]) < 0.01, b  # the box has the image's shape
            assert abs(b["sw"] - b["vw"]) <= 1 and abs(b["sh"] - b["vh"]) <= 1, b  # the image fills it
            assert b["vh"] >= 700, b  # as tall as the window allows (80vh)
            assert b["pl"] >= b["vl"] + b["vw"] and b["pt"] < b["vt"] + b["vh"] / 4, b  # the panel beside it
        browser.close()
