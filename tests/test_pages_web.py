"""The informaticist's pages over HTTP: each needs its permission, is audited, and shows what it says;
the mode change needs a confirmation, passes the go-live gate, and an override needs a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from radgate.audit import AuditEntry
from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.models import get_model
from radgate.routing import get_deployment
from radgate.routing.tables import DeploymentChange
from radgate.web import create_app
from radgate.web.pages import SYNTHETIC_NOTE
from tests.helpers.auth import make_user, page_csrf, sign_in
from tests.helpers.pages import Site, populate

PAGES = ["/", "/models", "/models/tiny-ptx/1.0.0", "/deployments", "/series", "/outbox", "/rejections"]


@pytest.fixture
def site(tmp_path: Path, settings: Settings, db: Database) -> Site:
    return populate(tmp_path, settings, db)


@pytest.fixture
def client(settings: Settings, db: Database, site: Site) -> Iterator[TestClient]:
    for name, role in (("ada", Role.ADMIN), ("rita", Role.RADIOLOGIST), ("dora", Role.DIRECTOR)):
        make_user(db, name, role)
    with TestClient(create_app(settings, db, InstanceStore(settings, db))) as c:
        yield c


def _views(db: Database) -> list[tuple[str, str | None, str]]:
    with db.session() as s:
        return [(e.actor, e.target, e.detail) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "pages.view").order_by(AuditEntry.id))]


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_every_page_needs_sign_in(client: TestClient) -> None:
    for path in PAGES:
        r = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}", path
        assert client.get(path).status_code == 401, path


def test_admin_sees_every_page_and_each_view_is_audited(client: TestClient, db: Database, site: Site) -> None:
    sign_in(client, "ada")
    pages = {}
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "not a medical device" in r.text and 'data-user="ada"' in r.text
        pages[path] = _text(r.text)
    views = _views(db)
    assert [v[0] for v in views] == ["ada"] * len(PAGES)
    assert [json.loads(v[2])["path"] for v in views] == PAGES

    home = pages["/"]
    assert "What you can do here" in home and "Change a deployment's mode" in home and "Needs another role" in home
    assert "Worklist" in home  # admins lack worklist.read: listed under "needs another role"
    models = pages["/models"]
    assert "tiny-ptx" in models and "ptx-live (live)" in models and SYNTHETIC_NOTE in models
    card = pages["/models/tiny-ptx/1.0.0"]
    assert "Adult PA/AP chest radiographs" in card and "high-sensitivity" in card and SYNTHETIC_NOTE in card
    assert "Model card tiny Synthetic, not for clinical use." in card  # MODEL_CARD.md rendered
    deployments = pages["/deployments"]
    assert "ptx-live — live" in deployments and "ptx-trial — silent" in deployments
    assert "sample_size" in deployments and "positives = 0" in deployments  # the checks with their numbers
    assert "ViewPosition LL is not in PA, AP" in deployments  # a routing decision with its reason
    assert "matched: 1" in deployments and SYNTHETIC_NOTE in deployments
    series = pages["/series"]
    assert site.flagged in series and site.lateral in series and "complete" in series
    outbox = pages["/outbox"]
    assert site.flagged in outbox and "SR" in outbox and SYNTHETIC_NOTE in outbox
    assert site.lateral not in outbox
    assert "Recent rejections" in pages["/rejections"] and site.rejected_uid in pages["/rejections"]
    assert "SOP Class UID does not match the dataset" in pages["/rejections"]


def test_model_card_markdown_is_rendered_and_raw_html_is_not_run(client: TestClient, db: Database) -> None:
    sign_in(client, "ada")
    with db.session() as s:
        path = get_model(s, "tiny-ptx", "1.0.0").path
    card = path / "MODEL_CARD.md"
    card.write_text("# Card\n\n| Profile | AUC |\n|---|---|\n| vendor-a | 0.91 |\n\n<script>alert(1)</script>\n")
    html = client.get("/models/tiny-ptx/1.0.0").text
    assert "<h1>Card</h1>" in html and "<td>vendor-a</td>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert client.get("/models/tiny-ptx/9.9.9").status_code == 404


def test_roles_see_what_they_may(client: TestClient) -> None:
    sign_in(client, "rita")  # a radiologist: models and cards yes, deployments and ingest no
    home = _text(client.get("/").text)
    assert "Worklist" in home.split("Needs another role")[0] and "Models" in home
    assert "Deployments" in home.split("Needs another role")[1]
    assert client.get("/models/tiny-ptx/1.0.0").status_code == 200
    for path in ("/deployments", "/series", "/outbox", "/rejections"):
        assert client.get(path).status_code == 403, path
    client.cookies.clear()
    sign_in(client, "dora")  # a director: deployments read-only, no mode change
    page = client.get("/deployments").text
    assert "Change mode" not in page
    r = client.post("/deployments/ptx-trial/mode", data={"mode": "off", "csrf_token": page_csrf(page)})
    assert r.status_code == 403


def test_mode_change_needs_confirmation_gate_and_reason(client: TestClient, db: Database) -> None:
    sign_in(client, "ada")
    csrf = page_csrf(client.get("/deployments").text)
    url = "/deployments/ptx-trial/mode"
    assert client.post(url, data={"mode": "off"}).status_code == 403  # no CSRF token

    asked = client.post(url, data={"mode": "live", "csrf_token": csrf})
    assert asked.status_code == 200 and "Change ptx-trial from silent to live?" in _text(asked.text)
    assert "NOT READY" in asked.text and 'name="override"' in asked.text
    with db.session() as s:
        assert get_deployment(s, "ptx-trial").mode == "silent"  # asking changes nothing

    refused = client.post(url, data={"mode": "live", "csrf_token": csrf, "confirm": "yes"})
    assert refused.status_code == 409 and "not ready to go live" in refused.text
    with db.session() as s:
        assert get_deployment(s, "ptx-trial").mode == "silent"

    done = client.post(url, data={"mode": "live", "csrf_token": csrf, "confirm": "yes", "note": "pilot",
                                  "override": "approved by the AI committee"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/deployments?changed=")
    assert "ptx-trial is now live" in _text(client.get(done.headers["location"]).text)
    with db.session() as s:
        assert get_deployment(s, "ptx-trial").mode == "live"
        changes = list(s.scalars(select(DeploymentChange).where(DeploymentChange.deployment == "ptx-trial")))
        actions = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.target == "ptx-trial"))]
    override = next(c for c in changes if c.field == "readiness_override")
    assert override.changed_by == "ada" and override.note == "approved by the AI committee"
    assert any(c.field == "mode" and c.new_value == "live" and c.changed_by == "ada" for c in changes)
    assert actions  # the change is in the audit log

    bad = client.post(url, data={"mode": "loud", "csrf_token": csrf})
    assert bad.status_code == 400 and "expected one of off, silent, shadow, live" in bad.text
    assert client.post("/deployments/nope/mode", data={"mode": "off", "csrf_token": csrf}).status_code == 404
