"""The worklist and review pages over HTTP: order in the DOM, policy, identity, audit, CSRF, final reads."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from radgate.auth import Role
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.validation.tables import GroundTruth
from radgate.web.app import create_app
from radgate.worklist import NOT_VALIDATED
from tests.helpers.auth import bearer, make_token, make_user, page_csrf, sign_in
from tests.helpers.worklist import Stored, add_result, audit_entries, store_study


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[tuple[TestClient, dict[str, Stored]]]:
    store = InstanceStore(settings, db)
    studies = {
        "plain": store_study(store, db, "fuji-cr", name="PLAIN^PAT", received_minutes_ago=20),
        "flagged": store_study(
            store, db, "agfa-dx", name="FLAG^PAT", patient_id="F-1", received_minutes_ago=1
        ),
        "withheld": store_study(store, db, "ge-dx", name="HELD^PAT", received_minutes_ago=4),
        "silent": store_study(store, db, "siemens-dx", name="SILENT^PAT", received_minutes_ago=3),
    }
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[8:16, 20:28] = 1.0
    add_result(db, studies["flagged"], score=0.93, settings=settings, explanation=hot)
    add_result(db, studies["withheld"], policy="withheld", score=0.871)
    add_result(db, studies["silent"], policy="silent", score=0.987)
    add_result(db, studies["silent"], policy="shadow", score=0.976, deployment="demo-shadow")
    make_user(db, "rita", Role.RADIOLOGIST)
    make_user(db, "dana", Role.DIRECTOR)
    with TestClient(create_app(settings, db, store), base_url="http://127.0.0.1") as c:
        yield c, studies


def _order(html: str) -> list[str]:
    return re.findall(r'<tr data-study-uid="([^"]+)"', html)


def test_worklist_page_order_policy_identity(site: tuple, db: Database) -> None:
    c, st = site
    assert sign_in(c, "rita").status_code == 303
    page = c.get("/worklist")
    assert page.status_code == 200
    html = page.text
    # 100 x 0.965 + 1 (flagged) > 20 (plain, waiting) > 4 (withheld: no urgency) > 3 (silent: as if no AI)
    assert _order(html) == [st["flagged"].study, st["plain"].study, st["withheld"].study, st["silent"].study]
    assert "FLAG^PAT" in html and "F-1" in html  # radiologists see the patient
    assert NOT_VALIDATED in html and "0.871" not in html and "0.87" not in html
    assert "0.987" not in html and "0.99" not in html and "0.976" not in html and "0.98" not in html
    assert "pneumothorax suspected" in html and "0.93" in html
    fragment = c.get("/worklist/rows").text
    assert _order(fragment) == _order(html)
    flagged_only = c.get("/worklist?flagged=1").text
    assert _order(flagged_only) == [st["flagged"].study]
    assert c.get("/worklist?status=bogus").status_code == 400
    api = c.get("/api/worklist").json()
    assert [r["StudyInstanceUID"] for r in api["rows"]] == _order(html)
    silent = next(r for r in api["rows"] if r["StudyInstanceUID"] == st["silent"].study)
    assert silent["ai"] == "none" and silent["score"] is None and silent["model"] is None
    withheld = next(r for r in api["rows"] if r["StudyInstanceUID"] == st["withheld"].study)
    assert withheld["ai"] == "withheld" and withheld["score"] is None and withheld["note"] == NOT_VALIDATED
    events = c.get("/worklist/events")  # not an EventSource: the current version once
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: worklist" in events.text and "0.98" not in events.text and "silent" not in events.text
    actions = [e["action"] for e in audit_entries(db, "worklist.")]
    assert {"worklist.view", "worklist.list", "worklist.events"} <= set(actions)
    assert all("PAT" not in str(e["detail"]) for e in audit_entries(db, "worklist."))


def test_director_sees_no_patient_identity(site: tuple) -> None:
    c, st = site
    assert sign_in(c, "dana").status_code == 303
    html = c.get("/worklist").text
    assert len(_order(html)) == 4 and "PAT" not in html and "F-1" not in html
    assert all(r["patient_name"] is None for r in c.get("/api/worklist").json()["rows"])


def test_worklist_needs_sign_in_and_permission(site: tuple, db: Database) -> None:
    c, _ = site
    assert c.get("/worklist", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    assert c.get("/api/worklist").status_code == 401
    assert c.get("/api/worklist", headers=bearer(make_token(db, Role.AUDITOR))).status_code == 403


def test_review_page_and_reads(site: tuple, db: Database, settings: Settings) -> None:
    c, st = site
    sign_in(c, "rita")
    flagged = st["flagged"]
    page = c.get(f"/review/{flagged.study}")
    assert page.status_code == 200, page.text
    html = page.text
    assert (
        'data-action="accept"' in html and 'data-action="modify"' in html and 'data-action="dismiss"' in html
    )
    assert "rough guide, not proof" in html and "0.930" in html and "operating point default" in html
    assert "demo-pneumothorax 1.0.0" in html
    assert "synthetic demo model – not for clinical use" in html  # the bundled model's card says synthetic
    # the region of the map's hot cells (rows 8-15, columns 20-27 of 32) in image pixels: 512 x 416 image
    m = re.search(r'<rect id="region" data-region="([^"]+)"', html)
    assert m, html
    left, top, right, bottom = (float(v) for v in m.group(1).split(","))
    assert (left, top, right, bottom) == pytest.approx(
        (20 * 416 / 32, 8 * 512 / 32, 28 * 416 / 32, 16 * 512 / 32)
    )
    img = re.search(r'src="(/dicomweb/[^"]+/rendered\?window=[^"]+)"', html)
    assert img and c.get(img.group(1).replace("&amp;", "&")).headers["content-type"] == "image/png"
    csrf = page_csrf(html)
    url = f"/review/{flagged.study}/read"
    assert c.post(url, data={"action": "accept"}).status_code == 403  # no CSRF token
    ok = c.post(url, data={"action": "accept"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert ok.json()["label"] == 1 and ok.json()["next"] is not None
    assert len(ok.json()["written"]) == 2  # the VERIFIED SR revision and its GSPS, queued for the PACS
    with db.session() as s:
        truth = s.scalars(select(GroundTruth).where(GroundTruth.StudyInstanceUID == flagged.study)).all()
    assert [(t.source, t.label) for t in truth] == [("final_read", 1)]
    # modify: finding absent, region moved; the later read replaces the label
    mod = c.post(
        url,
        data={"action": "modify", "present": "absent", "region": "10,20,110,220"},
        headers={"X-CSRF-Token": csrf},
    )
    assert mod.status_code == 200 and mod.json()["region"] == [10, 20, 110, 220]
    with db.session() as s:
        truth = s.scalars(select(GroundTruth).where(GroundTruth.StudyInstanceUID == flagged.study)).all()
    assert [(t.source, t.label) for t in truth] == [("final_read", 0)]
    bad = c.post(url, data={"action": "dismiss", "reason": "because"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400 and "reason 'because'" in bad.text
    held = c.post(
        f"/review/{st['withheld'].study}/read", data={"action": "accept"}, headers={"X-CSRF-Token": csrf}
    )
    assert held.status_code == 409
    dis = c.post(
        f"/review/{st['plain'].study}/read",
        data={"action": "dismiss", "reason": "false positive"},
        headers={"X-CSRF-Token": csrf},
    )
    assert dis.status_code == 200 and dis.json()["label"] == 0
    acts = [(e["action"], e["target"]) for e in audit_entries(db, "review.")]
    assert ("review.view", flagged.study) in acts and ("review.accept", flagged.study) in acts
    assert ("review.modify", flagged.study) in acts and ("review.dismiss", st["plain"].study) in acts
    modify = next(e for e in audit_entries(db, "review.modify"))
    assert modify["detail"]["region"] == [10.0, 20.0, 110.0, 220.0]


def test_review_withheld_and_silent(site: tuple) -> None:
    c, st = site
    sign_in(c, "rita")
    held = c.get(f"/review/{st['withheld'].study}").text
    assert NOT_VALIDATED in held and "0.871" not in held and "0.87" not in held and 'id="region"' not in held
    silent = c.get(f"/review/{st['silent'].study}").text
    assert (
        "No AI result" in silent
        and "0.98" not in silent
        and "0.97" not in silent
        and "demo-pneumothorax" not in silent
    )
    assert c.get("/review/1.2.3.4").status_code == 404
