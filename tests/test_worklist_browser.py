"""The worklist and review pages in Chromium (Debian's, via Playwright): live re-sort, keyboard-only read,
policy on screen (silent invisible, withheld not validated), nothing fetched from the network."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.testing.web import served_app
from radgate.validation.tables import GroundTruth
from radgate.web.app import create_app
from radgate.worklist import NOT_VALIDATED
from tests.helpers.auth import PASSWORD, make_user
from tests.helpers.worklist import Stored, add_result, audit_entries, store_study

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(settings: Settings, db: Database) -> Iterator[tuple[str, InstanceStore, dict[str, Stored]]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-peers.sh)")
    store = InstanceStore(settings, db)
    studies = {
        "waiting": store_study(store, db, "fuji-cr", received_minutes_ago=30, description="CHEST PA"),
        "withheld": store_study(store, db, "ge-dx", received_minutes_ago=10, description="CHEST AP"),
        "new": store_study(store, db, "agfa-dx", received_minutes_ago=0, description="CHEST PA ER"),
        "quiet": store_study(store, db, "philips-dx", received_minutes_ago=5, description="CHEST PA"),
    }
    add_result(db, studies["withheld"], policy="withheld", score=0.871)
    make_user(db, "rita", Role.RADIOLOGIST)
    app = create_app(settings, db, store)
    with served_app(app) as base:
        yield base, store, studies


def _order(page: object) -> list[str]:
    return page.locator("#rows tr[data-study-uid]").evaluate_all(  # type: ignore[attr-defined]
        "els => els.map(e => e.dataset.studyUid)"
    )


def test_live_worklist_and_keyboard_review(
    served: tuple, db: Database, settings: Settings, tmp_path: Path
) -> None:
    server, _, st = served
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    requests: list[str] = []
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(f"{server}/worklist")
        assert page.url == f"{server}/login?next=/worklist"
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/worklist")
        assert _order(page) == [st["waiting"].study, st["withheld"].study, st["quiet"].study, st["new"].study]
        held = page.locator(f'tr[data-study-uid="{st["withheld"].study}"]')
        assert NOT_VALIDATED in held.inner_text() and "0.87" not in held.inner_text()
        page.wait_for_function("() => document.getElementById('live').textContent === 'live'")

        # A silent and a shadow result while the page is open: no event, nothing on screen
        add_result(db, st["quiet"], policy="silent", score=0.991)
        add_result(db, st["quiet"], policy="shadow", score=0.982, deployment="demo-shadow")
        page.wait_for_timeout(1200)
        assert page.locator("#live").get_attribute("data-refreshed") is None  # no re-fetch happened
        assert "0.99" not in page.inner_text("main") and "0.98" not in page.inner_text("main")

        # A flagged result for the newest study: it jumps to the top without a reload
        started = time.monotonic()
        hot = np.zeros((32, 32), dtype=np.float32)
        hot[10:18, 6:14] = 1.0
        add_result(db, st["new"], score=0.95, settings=settings, explanation=hot)
        page.wait_for_function(
            f"() => document.querySelector('#rows tr').dataset.studyUid === '{st['new'].study}'", timeout=5000
        )
        resorted_s = time.monotonic() - started
        assert resorted_s < 3.0, resorted_s
        assert _order(page)[0] == st["new"].study
        assert "pneumothorax suspected" in page.locator("#rows tr").first.inner_text()
        if os.environ.get("RADGATE_UPDATE_SCREENSHOTS"):
            page.keyboard.press("j")
            page.screenshot(path=str(ROOT / "docs" / "worklist.png"), full_page=True)

        # Keyboard only: j selects the top row, Enter opens it, a accepts
        page.keyboard.press("j") if page.locator("#rows tr.selected").count() == 0 else None
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/review/{st['new'].study}")
        page.wait_for_function("() => document.getElementById('image').complete")
        assert page.evaluate("() => document.getElementById('image').naturalWidth") == 416
        assert page.locator("#region").count() == 1
        page.check("#heat-toggle")
        assert page.locator("#heatmap").is_visible()
        assert "rough guide, not proof" in page.inner_text("main")
        if os.environ.get("RADGATE_UPDATE_SCREENSHOTS"):
            page.screenshot(path=str(ROOT / "docs" / "review.png"), full_page=True)
        page.uncheck("#heat-toggle")
        page.keyboard.press("a")
        page.wait_for_function("() => document.getElementById('result').dataset.saved === 'accept'")
        assert page.inner_text("#status") == "read"
        page.keyboard.press("j")  # next study on the worklist
        page.wait_for_url(lambda url: "/review/" in url and st["new"].study not in url)

        # dismiss with a reason, by keys only
        page.keyboard.press("d")
        page.select_option("#reason", "false positive")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('result').dataset.saved === 'dismiss'")
        browser.close()
    with db.session() as s:
        truth = {t.StudyInstanceUID: (t.source, t.label) for t in s.scalars(select(GroundTruth))}
    assert truth[st["new"].study] == ("final_read", 1)
    assert sorted(v for v in truth.values()) == [("final_read", 0), ("final_read", 1)]
    assert [e["action"] for e in audit_entries(db, "review.accept")] == ["review.accept"]
    # the event stream is cut when the browser leaves the worklist page: that is the only "failure" allowed
    assert [u for u in failed if not u.endswith("/worklist/events")] == [], failed
    assert requests and all(url.startswith(server) or url.startswith("data:") for url in requests)
