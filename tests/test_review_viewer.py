"""``/viewer`` serving (radgate/web/viewer.py) on a small stand-in for OHIF's ``dist/``: the sub-path rewrite
of index.html, bundles and stylesheets, the generated app-config.js, sign-in, no path outside dist/, and the
one-line answer when OHIF is not installed. The real OHIF is exercised in tests/test_review_ohif_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.web.app import create_app
from tests.helpers.auth import token_headers
from tests.helpers.worklist import audit_entries

INDEX = (
    '<!doctype html><html><head><script>window.PUBLIC_URL="/"</script>'
    '<link rel="manifest" href="/manifest.json"><script rel="preload" as="script" src="/app-config.js"></script>'
    '<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
    '<script defer src="/app.bundle.js"></script><link href="//cdn.example/x.css" rel="stylesheet"></head>'
    '<body><div id="root"></div></body></html>'
)


@pytest.fixture
def client(settings: Settings, db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "app.bundle.js").write_text('(() => {\n__webpack_require__.p = "/";\n})();')
    (dist / "plain.js").write_text("console.log(1);")
    (dist / "app.bundle.css").write_text("@font-face{src:url(/a1.woff2)}.x{background:url('/assets/b.png')}")
    (dist / "x.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("outside dist")
    app = create_app(settings, db, InstanceStore(settings, db))
    app.state.ohif_dist = dist
    with TestClient(app) as c:
        yield c, dist


def test_viewer_is_served_under_viewer(client: tuple[TestClient, Path], db: Database) -> None:
    c, _ = client
    h = token_headers(db, Role.RADIOLOGIST)
    index = c.get("/viewer/viewer?StudyInstanceUIDs=1.2.3", headers=h)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert 'window.PUBLIC_URL="/viewer/"' in index.text
    assert 'src="/viewer/app.bundle.js"' in index.text and 'href="/viewer/manifest.json"' in index.text
    assert "init-service-worker" not in index.text  # no service worker caching patient images
    assert 'href="//cdn.example/x.css"' in index.text  # protocol-relative links are left alone
    assert [e["target"] for e in audit_entries(db, "viewer.open")] == ["1.2.3"]

    bundle = c.get("/viewer/app.bundle.js", headers=h)
    assert '__webpack_require__.p = "/viewer/";' in bundle.text
    assert c.get("/viewer/plain.js", headers=h).text == "console.log(1);"
    css = c.get("/viewer/app.bundle.css", headers=h).text
    assert "url(/viewer/a1.woff2)" in css and "url('/viewer/assets/b.png')" in css
    assert c.get("/viewer/x.wasm", headers=h).headers["content-type"] == "application/wasm"

    config = c.get("/viewer/app-config.js", headers=h)
    assert config.status_code == 200
    assert "window.location.origin + '/dicomweb'" in config.text
    assert '"routerBasename": "/viewer"' in config.text and '"imageRendering": "wadors"' in config.text
    assert '"ohif.tours": []' in config.text  # no first-run tour (checked in Chromium by the OHIF test)

    assert c.get("/viewer/missing.js", headers=h).status_code == 404
    outside = c.get("/viewer/..%2Fsecret.txt", headers=h)
    assert outside.status_code == 404 and "outside dist" not in outside.text
    assert c.get("/viewer", headers=h, follow_redirects=False).headers["location"] == "/viewer/"


def test_viewer_needs_sign_in_and_says_when_missing(client: tuple[TestClient, Path], db: Database) -> None:
    c, dist = client
    assert c.get("/viewer/app-config.js").status_code == 401
    page = c.get("/viewer/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code in (302, 303, 307) and page.headers["location"].startswith("/login")
    c.app.state.ohif_dist = dist / "nowhere"  # type: ignore[attr-defined]
    r = c.get("/viewer/", headers=token_headers(db, Role.RADIOLOGIST))
    assert r.status_code == 404 and "scripts/install-ohif.sh" in r.json()["error"]
