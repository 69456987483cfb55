"""The rendered-PNG cache (radgate/worklist/render_cache.py) behind WADO-RS rendered, and the pre-render of a
released result's review image by the results worker.

A hit must be byte-for-byte the PNG a fresh render gives (itself checked against DCMTK in
tests/test_review_rendered.py), every request must be audited (a cached image is still a view), a new
revision of the instance must never be served its predecessor's PNG, and the directory must stay within
its bound, least recently used first out.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from radgate.auth import Role
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.imaging.decode import read_dataset
from radgate.ingest.store import InstanceStore
from radgate.policy.tables import PublishIntent
from radgate.results.sink import ResultsWorker
from radgate.web.app import create_app
from radgate.worklist.render import parse_viewport, parse_window, render_png
from radgate.worklist.render_cache import RenderCache, page_viewport, viewer_viewport
from radgate.worklist.review import review_view
from tests.helpers.auth import bearer, make_token
from tests.helpers.synth import image_for
from tests.helpers.worklist import Stored, add_result, audit_entries, store_study


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[tuple[TestClient, InstanceStore, dict[str, str]]]:
    store = InstanceStore(settings, db)
    with TestClient(create_app(settings, db, store)) as c:
        yield c, store, bearer(make_token(db, Role.RADIOLOGIST))


def _url(st: Stored, query: str) -> str:
    return f"/dicomweb/studies/{st.study}/series/{st.series}/instances/{st.sop}/rendered?{query}"


def _pngs(settings: Settings, st: Stored) -> list[Path]:
    return sorted((Path(settings.data_dir) / "rendered" / st.sop).glob("*.png"))


def test_second_view_is_a_cache_hit_and_both_are_audited(
    client: tuple, db: Database, settings: Settings
) -> None:
    c, store, headers = client
    st = store_study(store, db, "siemens-dx")
    query = "window=2000,3000,LINEAR&viewport=256,256"
    first = c.get(_url(st, query), headers=headers)
    second = c.get(_url(st, query), headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    expected = render_png(
        read_dataset(st.path), parse_window("2000,3000"), viewport=parse_viewport("256,256")
    )
    assert second.content == expected  # the cached bytes are those of a fresh render
    assert [e["detail"]["cache"] for e in audit_entries(db, "dicomweb.rendered")] == ["miss", "hit"]
    assert len(_pngs(settings, st)) == 1
    other = c.get(_url(st, "window=2000,1000,LINEAR&viewport=256,256"), headers=headers)
    assert other.content != first.content and len(_pngs(settings, st)) == 2  # another window: its own file


def test_a_new_revision_is_never_served_the_old_png(client: tuple, db: Database, settings: Settings) -> None:
    c, store, headers = client
    st = store_study(store, db, "agfa-dx")
    query = "window=2000,3000,LINEAR"
    old = c.get(_url(st, query), headers=headers).content
    assert len(_pngs(settings, st)) == 1
    ds = pydicom.dcmread(st.path)
    arr = ds.pixel_array.copy()
    arr[:100, :100] = arr.max()  # the same SOP Instance UID with other pixels: revision 2
    ds.PixelData = arr.tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    assert store.store_bytes(buf.getvalue(), source="import").outcome == "revision"
    new = c.get(_url(st, query), headers=headers)
    assert new.status_code == 200 and new.content != old
    assert np.asarray(_open(new.content))[:100, :100].min() > np.asarray(_open(old))[:100, :100].min()
    (png,) = _pngs(settings, st)  # the predecessor's render was removed with the new one's write
    assert png.read_bytes() == new.content
    assert [e["detail"]["cache"] for e in audit_entries(db, "dicomweb.rendered")] == ["miss", "miss"]


def _open(data: bytes):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.open(io.BytesIO(data))


def test_the_directory_is_bounded_least_recently_used_out(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path, max_bytes=10_000)
    blob = b"x" * 3_000
    for i in range(3):
        cache.put("1.2.3", "a" * 64, f"k{i}", blob)
    assert cache.get("1.2.3", "a" * 64, "k0") == blob  # read: k0 is now the most recently used
    import os
    import time

    past = time.time() - 100
    for i in (1, 2):  # make the order unambiguous on coarse file-system clocks
        os.utime(cache.path("1.2.3", "a" * 64, f"k{i}"), (past + i, past + i))
    cache.put("1.2.3", "a" * 64, "k3", blob)  # 12,000 > 10,000: down to 8,000 at most
    kept = {p.name.split("-")[1][:-4] for p in (tmp_path / "rendered" / "1.2.3").glob("*.png")}
    assert kept == {"k0", "k2", "k3"} or kept == {"k0", "k3"}, kept
    assert sum(p.stat().st_size for p in (tmp_path / "rendered").rglob("*.png")) <= 8_000 + 3_000
    assert "k1" not in kept  # the least recently used went first


def test_unwritable_cache_still_serves(client: tuple, db: Database, settings: Settings) -> None:
    c, store, headers = client
    st = store_study(store, db, "ge-dx")
    (Path(settings.data_dir) / "rendered").write_text("not a directory")  # every write fails
    for _ in range(2):
        response = c.get(_url(st, "viewport=128,128"), headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert [e["detail"]["cache"] for e in audit_entries(db, "dicomweb.rendered")] == ["miss", "miss"]


def test_results_worker_prerenders_the_review_image(client: tuple, db: Database, settings: Settings) -> None:
    c, store, headers = client
    st = store_study(store, db, "philips-dx", received_minutes_ago=3)
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[10:18, 6:14] = 1.0
    prediction_id = add_result(db, st, score=0.95, settings=settings, explanation=hot)
    now = utcnow()
    with db.session() as s:  # what the engine queues with a released result
        s.add(
            PublishIntent(
                prediction_id=prediction_id,
                deployment="demo-live",
                status="queued",
                attempts=0,
                max_attempts=3,
                available_at=now - timedelta(seconds=1),
                created_at=now,
            )
        )
    assert _pngs(settings, st) == []
    ResultsWorker(settings, db).run_once()
    rows = cols = image_for("philips-dx").Rows  # 496 x 496: both long sides cap at the image's own size
    assert cols == 496
    assert len(_pngs(settings, st)) == 1
    with db.session() as s:
        view = review_view(s, settings, st.study, identity=False)
    vp = page_viewport(rows, cols, 720)
    response = c.get(_url(st, f"window={view.window_param}&viewport={vp}"), headers=headers)
    assert response.status_code == 200
    entries = audit_entries(db, "dicomweb.rendered")
    assert [e["detail"]["cache"] for e in entries] == ["hit"]  # the first view: already rendered
    fresh = render_png(read_dataset(st.path), parse_window(view.window_param), viewport=vp)
    assert response.content == fresh


def test_page_viewport_rounds_up_to_the_page_step() -> None:
    assert str(page_viewport(2048, 2048, 720)) == "768,768"
    assert str(page_viewport(2048, 2048, 768)) == "768,768"
    assert str(page_viewport(2048, 2048, 769)) == "1024,1024"
    assert str(page_viewport(2500, 2048, 900)) == "1024,1024"
    assert str(page_viewport(512, 512, 400)) == "512,512"  # never more than the image's own long side


def test_viewer_cookie_gives_the_viewport_the_page_asks_for() -> None:
    # reviewLongSide in review.html: ceil(ceil(long side x fitted scale x devicePixelRatio) / 256) x 256
    assert str(viewer_viewport(2048, 2048, "900,720,1")) == "768,768"  # a 1400 x 900 window
    assert str(viewer_viewport(1536, 1536, "420,400,1")) == "512,512"
    assert str(viewer_viewport(2048, 2048, "900,720,2")) == "1536,1536"
    assert str(viewer_viewport(2500, 2048, "900,864,1")) == "1024,1024"  # height-limited: 864 -> 1024
    for bad in (None, "", "900,720", "a,b,c", "0,720,1", "900,720,-1", "1e9,1,1", "nan,720,1"):
        assert viewer_viewport(2048, 2048, bad) is None, bad
