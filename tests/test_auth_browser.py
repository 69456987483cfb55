"""A real browser signs in: Playwright (the Python package) driving Debian's Chromium, no browser download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from radgate.auth import Role
from radgate.gateway import Gateway
from tests.helpers.auth import PASSWORD, make_user

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/install-peers.sh); never `playwright install`


@pytest.fixture
def browser() -> Iterator[object]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/install-peers.sh (make peers)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def test_sign_in_reaches_a_page_that_requires_it(gateway: Gateway, browser: object) -> None:
    make_user(gateway.db, "rita", Role.ADMIN)
    base = f"http://127.0.0.1:{gateway.http_port}"
    page = browser.new_page()  # type: ignore[attr-defined]
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))

    page.goto(f"{base}/rejections")  # requires sign-in: the browser lands on the form
    assert page.url == f"{base}/login?next=/rejections"
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", "wrong password, surely")
    page.click("button[type=submit]")
    assert "wrong password" in page.locator("[role=alert]").inner_text()

    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/rejections")
    assert "Recent rejections" in page.locator("h1").inner_text()
    assert page.locator("[data-user=rita]").count() == 1
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["radgate_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("radgate_session") == -1  # not readable by scripts

    page.goto(f"{base}/docs")  # Swagger UI renders from the package's assets, offline
    page.wait_for_selector(".swagger-ui .info", timeout=20000)
    assert "radgate" in page.locator(".swagger-ui .info").inner_text()

    page.goto(f"{base}/")
    page.click("text=Sign out")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/rejections")
    assert page.url.startswith(f"{base}/login")
    assert outside == [], f"the pages fetched from outside radgate: {outside}"
