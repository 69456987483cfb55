"""The /monitoring dashboard over a real HTTP server, checked in Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import open_database
from radgate.monitoring.service import run_monitoring
from radgate.monitoring.simulate import simulate_site
from radgate.testing.web import served_app
from radgate.web.app import create_app
from tests.helpers.auth import PASSWORD, make_user
from tests.helpers.monitoring import demo_site

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    db = open_database(settings.database_url)
    simulate_site(db, demo_site(), seed=1)
    run_monitoring(db, settings, until=dt.date(2026, 2, 28))
    make_user(db, "dana", Role.DIRECTOR)
    with served_app(create_app(settings, db, None)) as base:  # type: ignore[arg-type]
        yield base
    db.dispose()


def test_dashboard_renders_offline_in_chromium(server: str, tmp_path: Path) -> None:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-peers.sh)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)  # the page is drawn server-side; slow on a loaded 2-core machine
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{server}/monitoring")  # a director signs in first
        assert page.url == f"{server}/login?next=/monitoring"
        page.fill("input[name=username]", "dana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/monitoring")
        plots = page.locator("figure[data-plot] svg")
        assert plots.count() == 5
        names = page.locator("figure[data-plot]").evaluate_all("els => els.map(e => e.dataset.plot)")
        assert names == ["auc", "rates", "scanners", "cbpe", "drift"]
        rules = page.locator("table.alerts td:nth-child(2)").all_inner_texts()
        assert "new_scanner" in rules and "input_drift" in rules
        assert "Agfa" in page.locator("table.alerts").inner_text()
        assert "not a medical device" in page.inner_text("main")
        page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)
        if os.environ.get("RADGATE_UPDATE_SCREENSHOTS"):
            page.screenshot(path=str(ROOT / "docs" / "monitoring-dashboard.png"), full_page=True)
        browser.close()
    assert requests and all(url.startswith(server) for url in requests)  # nothing from the network
