"""The pages in Chromium (Debian's, via Playwright): sign in, visit each page from the navigation, change a
deployment's mode through the confirmation (refused by the go-live gate, then with an override reason)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.routing import get_deployment
from radgate.routing.tables import DeploymentChange
from radgate.testing.web import served_app
from radgate.web import create_app
from radgate.web.pages import SYNTHETIC_NOTE
from tests.helpers.auth import PASSWORD, make_user
from tests.helpers.pages import Site, populate

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/install-peers.sh); never `playwright install`


@pytest.fixture
def served(tmp_path: Path, settings: Settings, db: Database) -> Iterator[tuple[str, Site]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-peers.sh)")
    site = populate(tmp_path, settings, db)
    make_user(db, "ada", Role.ADMIN)
    app = create_app(settings, db, InstanceStore(settings, db))
    with served_app(app) as base:
        yield base, site


def test_sign_in_visit_each_page_and_change_a_mode(served: tuple[str, Site], db: Database) -> None:
    base, site = served
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.goto(f"{base}/")
        assert page.url == f"{base}/login?next=/"
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        assert page.locator("h1#home").count() == 1
        can = page.locator("#can").inner_text()
        assert "Deployments" in can and "Change a deployment's mode" in can

        for link, heading in (("Models", "Models"), ("Deployments", "Deployments"), ("Series", "Series"),
                              ("Outbox", "Outbox"), ("Rejections", "Recent rejections")):
            page.click(f"nav >> text={link}")
            page.wait_for_load_state()
            assert heading in page.locator("h1").inner_text(), link
            assert "not a medical device" in page.locator(".banner").inner_text()
        assert site.rejected_uid in page.inner_text("main")

        page.click("nav >> text=Models")
        page.click("text=tiny-ptx")
        page.wait_for_url(f"{base}/models/tiny-ptx/1.0.0")
        assert SYNTHETIC_NOTE in page.locator("#synthetic").inner_text()
        assert "high-sensitivity" in page.locator("#operating-points").inner_text()

        page.click("nav >> text=Deployments")
        trial = page.locator("section#ptx-trial")
        assert trial.get_attribute("data-mode") == "silent"
        assert "ViewPosition LL is not in PA, AP" in page.locator("section#ptx-live").inner_text()
        trial.locator("select[name=mode]").select_option("live")
        trial.locator("input[name=note]").fill("pilot")
        trial.locator("button[type=submit]").click()
        page.wait_for_selector("h1#confirm")
        assert "from silent to live" in page.locator("h1#confirm").inner_text()
        assert "NOT READY" in page.inner_text("main")
        with db.session() as s:
            assert get_deployment(s, "ptx-trial").mode == "silent"  # the confirmation changes nothing
        # The gate refuses without a reason (the browser insists on the field first: remove `required`)
        page.evaluate("document.querySelector('textarea[name=override]').removeAttribute('required')")
        page.click("#confirm-button")
        page.wait_for_selector("#error")
        assert "not ready to go live" in page.locator("#error").inner_text()
        page.fill("textarea[name=override]", "approved by the AI committee")
        page.click("#confirm-button")
        page.wait_for_selector("#changed")
        assert "ptx-trial is now live" in page.locator("#changed").inner_text()
        assert page.locator("section#ptx-trial").get_attribute("data-mode") == "live"

        # back to silent: no gate, still a confirmation
        trial = page.locator("section#ptx-trial")
        trial.locator("select[name=mode]").select_option("silent")
        trial.locator("button[type=submit]").click()
        page.wait_for_selector("h1#confirm")
        assert page.locator("textarea[name=override]").count() == 0
        page.click("#confirm-button")
        page.wait_for_selector("#changed")
        assert page.locator("section#ptx-trial").get_attribute("data-mode") == "silent"
        browser.close()
    with db.session() as s:
        changes = [(c.field, c.new_value, c.changed_by) for c in s.scalars(
            select(DeploymentChange).where(DeploymentChange.deployment == "ptx-trial").order_by(DeploymentChange.id))]
    assert ("mode", "live", "ada") in changes and ("mode", "silent", "ada") in changes
    assert any(f == "readiness_override" for f, _, _ in changes)
    assert outside == [], f"the pages fetched from outside radgate: {outside}"
