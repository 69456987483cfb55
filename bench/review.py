"""Benchmark: the radiologist's worklist and review page in a signed-in Chromium (issue 11).

    .venv/bin/python bench/review.py [--reps 20] [--size 2048] [--ohif-reps 3] [--screenshots DIR] [--no-resort]

radgate's web app runs in this process as ``radgate serve`` runs it (uvicorn, SQLite, the real store), with
``--studies`` stored DX images of ``--size``² (12-bit, explicit VR little endian). Debian's Chromium
(Playwright, ``/usr/bin/chromium``, HTTP cache disabled) signs in as a radiologist. Measured, each against a
peer in the same run:

1. **result stored → worklist row re-sorted** (target p95 ≤ 1 s): a released, flagged result is committed
   (the row the engine writes) for the study at the bottom of the open worklist; the clock stops when that
   study is the first row of the DOM (server-sent event → rows re-fetched). Peer: a full reload of
   ``/worklist`` (what a worklist without live updates costs at best, once someone presses F5).
2. **review page, 2048² DX rendered and overlay drawn** (target p95 ≤ 300 ms): navigation to
   ``/review/{uid}`` until the WADO-RS rendered PNG is decoded (``img.complete``, at the ``viewport`` size
   the page asks for: what the 1400x900 window shows, rounded up to 768) and the SVG region is in the page.
   Timed twice: from Python (with Playwright's round trips) and on the page's own clock (navigation start to
   the first animation frame after the image's load event that has the image complete and the region), with
   the page's timeline (HTML, image request, DOM) printed beside it. That frame is reported by the page
   itself (an init script's console line, :data:`DRAWN_SIGNAL`), not polled with Playwright's
   ``wait_for_function``, whose injected script would be compiled and run on the measured page's main
   thread at every navigation (50-70 ms of it in a Chromium trace on this machine).
   The result is released as the results worker releases it: ``prerender_prediction`` (what the worker
   runs after publishing) has rendered the review image into the rendered cache, so the page's image is a
   cache hit (counted from the audit log and printed). Peers, loads alternated with the page's: the same
   page with the rendered cache emptied before each load (a first view without the pre-render: decode,
   window, resize and encode on the request); the same page with the ``viewport`` parameter taken off its
   image request and the cache emptied (the full 2048² PNG rendered on the request, as the page was before
   it asked for its displayed size; a Playwright request route takes the parameter off, so this peer alone
   also bears the route's cost, and the page is timed as a browser sees it, with no route). And OHIF Viewer (served by radgate at ``/viewer``) opening the same study until its viewport
   canvas is drawn (``--ohif-reps`` times; OHIF boots a large app, so few repeats).
3. **rendered PNG against DCMTK ``dcmj2pnm``** at the same window (target correlation ≥ 0.999), and the
   time of one ``GET …/rendered`` (rendered on the request: the cache emptied before it; and at the
   page's viewport, rendered, then cached) against one ``dcmj2pnm +Ww C W +on`` process on the stored file.

The machine's load average is printed at the start and the end: the figures are only as quiet as it was.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
from sqlalchemy import update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import synthetic_dx  # noqa: E402
from radgate.auth import Role  # noqa: E402
from radgate.clock import utcnow  # noqa: E402
from radgate.config import load_settings  # noqa: E402
from radgate.db import database_for  # noqa: E402
from radgate.db.schema import Study  # noqa: E402
from radgate.ingest.store import InstanceStore  # noqa: E402
from radgate.web.app import create_app  # noqa: E402
from radgate.web.viewer import ohif_installed  # noqa: E402
from radgate.worklist.render_cache import prerender_prediction  # noqa: E402
from tests.helpers.auth import PASSWORD, bearer, make_token, make_user  # noqa: E402
from tests.helpers.worklist import Stored, add_result  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def store_dx(store: InstanceStore, db: Any, ds: pydicom.Dataset, minutes_ago: float, description: str) -> Stored:
    ds.StudyDescription = description
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    outcome = store.store_bytes(buf.getvalue(), source="import")
    if not outcome.ok:
        raise SystemExit(f"store failed: {outcome}")
    received = utcnow() - timedelta(minutes=minutes_ago)
    with db.session() as s:
        s.execute(
            update(Study)
            .where(Study.StudyInstanceUID == ds.StudyInstanceUID)
            .values(status="complete", first_received=received, completed_at=received)
        )
    path = next(store.root.rglob(f"{ds.SOPInstanceUID}*.dcm"))
    return Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, path)


def rendered_hits(db: Any) -> int:
    """How many WADO-RS rendered requests the cache answered (from the audit log: every view is there)."""
    from radgate.audit.export import iter_entries

    with db.session() as s:
        return sum(1 for e in iter_entries(s, action="dicomweb.rendered") if e["detail"].get("cache") == "hit")


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}", srv, thread


#: Where a review page load's time goes, on the page's own clock (ms from the navigation's start).
TIMELINE = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const img = performance.getEntriesByType('resource').find(e => e.name.includes('/rendered'));
  return {html_request: n.requestStart, html_first_byte: n.responseStart, html_done: n.responseEnd,
          dom_interactive: n.domInteractive, dom_content_loaded: n.domContentLoadedEventEnd,
          image_request: img ? img.requestStart : -1, image_done: img ? img.responseEnd : -1,
          drawn: window.__drawnAt};
}"""


#: The console line the page's init script writes once the review page is drawn (see DRAWN_SIGNAL).
DRAWN = "radgate-bench: review drawn"
#: Added to every page before its own scripts: at the first animation frame after the review image's load
#: event where the image is complete (naturalWidth > 0) and the SVG region is in the page (else at the next
#: frame that has them), ``window.__drawnAt`` (ms from navigation start) and the console line DRAWN.
DRAWN_SIGNAL = """document.addEventListener('load', function (e) {
  if (!e.target || e.target.id !== 'image' || window.__drawnAt !== undefined) { return; }
  requestAnimationFrame(function frame() {
    var img = document.getElementById('image');
    if (window.__drawnAt !== undefined) { return; }
    if (img && img.complete && img.naturalWidth > 0 && document.getElementById('region')) {
      window.__drawnAt = performance.now();
      console.debug('""" + DRAWN + """');
    } else { requestAnimationFrame(frame); }
  });
}, true);"""


def dcmj2pnm(path: Path, center: float, width: float, out: Path) -> tuple[np.ndarray, float]:
    from PIL import Image

    exe = shutil.which("dcmj2pnm")
    if exe is None:
        raise SystemExit("dcmj2pnm is missing: apt-get install dcmtk (scripts/install-peers.sh)")
    start = time.perf_counter()
    subprocess.run(
        [exe, "+Ww", f"{center:g}", f"{width:g}", "+on", "--no-overlays", str(path), str(out)],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    return np.asarray(Image.open(out)).astype(np.float64), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20, help="re-sorts and review page loads measured")
    parser.add_argument("--size", type=int, default=2048, help="image rows = columns")
    parser.add_argument("--ohif-reps", type=int, default=3, help="OHIF opens (the review page's peer); 0: skip")
    parser.add_argument("--screenshots", type=Path, default=None, help="write worklist.png and review.png here")
    parser.add_argument("--no-resort", action="store_true", help="skip part 1 (the worklist re-sort)")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("the playwright Python package is missing (pip install -e '.[dev]')") from None
    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's chromium is missing (scripts/install-peers.sh)")
    load_start = os.getloadavg()

    workdir = Path(tempfile.mkdtemp(prefix="bench-review-"))
    settings = load_settings(data_dir=workdir / "data", environ={}, server__dicom_port=0, server__http_port=0)
    from radgate.db.datadir import init_data_dir

    init_data_dir(settings)  # as `radgate init` does
    db = database_for(settings)
    store = InstanceStore(settings, db)
    rng = np.random.default_rng(0)
    # The studies that get a result during the run wait longer each (5 min apart): each new flagged result
    # outranks the previous ones, so "its row is first" is the re-sort to wait for.
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[10:18, 6:14] = 1.0
    review = store_dx(store, db, synthetic_dx(rng, args.size), 1, "CHEST PA REVIEW")
    review_prediction = add_result(db, review, score=0.97, settings=settings, explanation=hot)
    cache_dir = Path(settings.data_dir) / "rendered"

    def prerender() -> int:  # what the results worker does after it has published a released result
        return prerender_prediction(settings, db, review_prediction)

    def empty_cache() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    prerendered = prerender()
    background = [store_dx(store, db, synthetic_dx(rng, 256), 2 + k, "CHEST PA") for k in range(10)]
    pending = [store_dx(store, db, synthetic_dx(rng, 256), 20 + 5 * i, "CHEST PA ER") for i in range(args.reps)]
    make_user(db, "rita", Role.RADIOLOGIST)
    token = bearer(make_token(db, Role.RADIOLOGIST))
    server, srv, thread = serve(create_app(settings, db, store))
    url_review = f"{server}/review/{review.study}"

    resort: list[float] = []
    reload: list[float] = []
    page_ms: list[float] = []
    cold_ms: list[float] = []
    full_ms: list[float] = []
    in_browser: dict[str, list[float]] = {"page": [], "cold": [], "full": []}
    timeline: list[dict[str, float]] = []
    shown: list[int] = []
    ohif_ms: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader"]
            )
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            # The page's own clock, and the signal that stops Python's: the first animation frame after the
            # review image's load event at which the image is complete (decoded size known) and the SVG region
            # is in the page, in ms from the navigation's start. The page itself reports it (a console line):
            # waiting with Playwright's wait_for_function would compile and run Playwright's injected script
            # (some hundred kB) on the page's main thread at every navigation, 50-70 ms on this machine in a
            # Chromium trace, in the middle of the load being measured; a radiologist's browser runs no such
            # thing. What is waited for is the same as before (image complete, naturalWidth > 0, #region).
            page.add_init_script(DRAWN_SIGNAL)
            cdp = context.new_cdp_session(page)
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            page.goto(f"{server}/worklist")
            page.fill("input[name=username]", "rita")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server}/worklist")
            page.wait_for_function("() => document.getElementById('live').textContent === 'live'")

            # 1. result stored -> row re-sorted, against a full reload
            for i, st in enumerate([] if args.no_resort else pending):
                start = time.perf_counter()
                add_result(db, st, score=0.95)
                page.wait_for_function(
                    f"() => document.querySelector('#rows tr').dataset.studyUid === '{st.study}'",
                    polling="raf",
                    timeout=30_000,
                )
                resort.append(time.perf_counter() - start)
                start = time.perf_counter()
                page.reload(wait_until="load")
                page.wait_for_function("() => document.getElementById('live').textContent === 'live'")
                reload.append(time.perf_counter() - start)
                if i == 0 and args.screenshots:
                    page.keyboard.press("j")
                    page.screenshot(path=str(args.screenshots / "worklist.png"), full_page=True)

            # 2. review page: 2048² rendered + overlay drawn
            full_size = {"on": False}

            def strip_viewport(route: Any) -> None:
                url = route.request.url
                if full_size["on"]:
                    url = re.sub(r"&viewport=[^&]*", "", url)
                route.continue_(url=url)

            hits_before = rendered_hits(db)
            for k in range(3 * (args.reps + 2)):
                kind = ("page", "cold", "full")[k % 3]
                full_size["on"] = kind == "full"
                if kind == "page":
                    prerender()  # put back what the previous loads' emptying took away (untimed)
                else:
                    empty_cache()
                if kind == "full":
                    page.route("**/rendered?*", strip_viewport)
                with page.expect_console_message(lambda m: m.text == DRAWN, timeout=30_000):
                    start = time.perf_counter()
                    page.goto(url_review, wait_until="commit")
                {"page": page_ms, "cold": cold_ms, "full": full_ms}[kind].append(time.perf_counter() - start)
                in_browser[kind].append(page.evaluate("() => window.__drawnAt") / 1000)
                if kind == "page":
                    timeline.append(page.evaluate(TIMELINE))
                width = page.evaluate("() => document.getElementById('image').naturalWidth")
                if full_size["on"] and width != args.size:
                    raise SystemExit(f"full-size review image {width} px wide, expected {args.size}")
                if kind == "page":
                    shown.append(width)
                if kind == "full":
                    page.unroute("**/rendered?*")
            page_hits = rendered_hits(db) - hits_before
            page_ms, cold_ms, full_ms = page_ms[2:], cold_ms[2:], full_ms[2:]  # two warm-up loads each
            in_browser = {kind: values[2:] for kind, values in in_browser.items()}
            if args.screenshots:
                page.check("#heat-toggle")
                page.screenshot(path=str(args.screenshots / "review.png"), full_page=True)

            # OHIF opening the same study (peer)
            if args.ohif_reps and ohif_installed():
                for _ in range(args.ohif_reps + 1):
                    start = time.perf_counter()
                    page.goto(f"{server}/viewer/viewer?StudyInstanceUIDs={review.study}", wait_until="commit")
                    page.wait_for_function(
                        "() => [...performance.getEntriesByType('resource')]"
                        ".some(e => e.name.includes('/frames/1') && e.responseEnd > 0)",
                        polling="raf",
                        timeout=120_000,
                    )
                    canvas = page.locator("canvas.cornerstone-canvas:visible").first
                    canvas.wait_for(state="visible", timeout=60_000)
                    page.wait_for_function(
                        "() => { const c = [...document.querySelectorAll('canvas.cornerstone-canvas')]"
                        ".find(c => c.offsetParent); if (!c) return false;"
                        " const g = c.getContext('2d') || null; return c.width > 0; }",
                        polling="raf",
                    )
                    ohif_ms.append(time.perf_counter() - start)
                ohif_ms = ohif_ms[1:]
            browser.close()

        # 3. rendered vs dcmj2pnm (same window), alternating
        ds = pydicom.dcmread(review.path)
        center, width = 2048.0, 3000.0
        rendered_url = (
            f"{server}/dicomweb/studies/{review.study}/series/{review.series}/instances/{review.sop}"
            f"/rendered?window={center:g},{width:g},LINEAR"
        )
        from PIL import Image

        ours_s: list[float] = []
        small_s: list[float] = []
        cached_s: list[float] = []
        peer_s: list[float] = []
        r = 0.0
        with httpx.Client(headers=token, timeout=60) as client:
            for k in range(7):
                empty_cache()
                start = time.perf_counter()
                resp = client.get(rendered_url)
                ours_s.append(time.perf_counter() - start)
                resp.raise_for_status()
                side = shown[-1] if shown else 768
                for into in (small_s, cached_s):  # rendered on the request, then from the cache
                    start = time.perf_counter()
                    client.get(f"{rendered_url}&viewport={side},{side}").raise_for_status()
                    into.append(time.perf_counter() - start)
                ours = np.asarray(Image.open(io.BytesIO(resp.content))).astype(np.float64)
                ref, elapsed = dcmj2pnm(review.path, center, width, workdir / f"ref{k}.png")
                peer_s.append(elapsed)
                r = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
                max_diff = float(np.abs(ours - ref).max())
        del ds
    finally:
        srv.should_exit = True
        thread.join(10)
        db.dispose()
    load_end = os.getloadavg()

    print(f"radgate review benchmark: {args.reps} repeats, review image {args.size}x{args.size} 12-bit DX, "
          f"{len(background) + len(pending) + 1} studies on the worklist; Chromium (Debian), SQLite")
    print(f"load average at start {load_start[0]:.2f} {load_start[1]:.2f}, at end {load_end[0]:.2f} "
          f"{load_end[1]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'measure':<58}{'p50 ms':>9}{'p95 ms':>9}")
    rows: dict[str, list[float]] = {}
    if resort:
        rows["result stored -> worklist row re-sorted (live, SSE)"] = resort
        rows["peer: full reload of /worklist"] = reload
    rows[f"review page, {args.size}² DX shown at {shown[-1] if shown else 0} px + overlay"] = page_ms
    rows["  the same, the page's own clock (navigation start -> drawn)"] = in_browser["page"]
    rows["peer: same page, cache emptied (first view, no pre-render)"] = cold_ms
    rows[f"peer: same page, full {args.size}² PNG (no viewport, no cache)"] = full_ms
    if ohif_ms:
        rows[f"peer: OHIF opens the same study, canvas drawn ({len(ohif_ms)}x)"] = ohif_ms
    rows["GET rendered (PNG, same window)"] = ours_s
    rows[f"GET rendered, viewport={shown[-1] if shown else 768} (rendered)"] = small_s
    rows[f"GET rendered, viewport={shown[-1] if shown else 768} (cached)"] = cached_s
    rows["peer: dcmj2pnm +Ww C W +on (one process)"] = peer_s
    for name, values in rows.items():
        print(f"{name:<58}{pct(values, 50) * 1000:>9.0f}{pct(values, 95) * 1000:>9.0f}")
    ok = True
    p95_resort, p95_page = (pct(resort, 95) if resort else 0.0), pct(page_ms, 95)
    if resort:
        print(f"re-sort p95 {p95_resort * 1000:.0f} ms (target <= 1000: "
              f"{'met' if p95_resort <= 1 else 'NOT met'}); "
              f"median ratio to a full reload {statistics.median(resort) / statistics.median(reload):.2f}")
    else:
        print("re-sort not measured (--no-resort)")
    print(f"pre-render at release: {prerendered} PNGs; page loads whose image came from the cache: "
          f"{page_hits} of {len(page_ms) + 2}")
    print(f"review page p95 {p95_page * 1000:.0f} ms (target <= 300: {'met' if p95_page <= 0.3 else 'NOT met'})"
          f"; median ratio to the page without a pre-render "
          f"{statistics.median(page_ms) / statistics.median(cold_ms):.2f}"
          f"; to the full-size page {statistics.median(page_ms) / statistics.median(full_ms):.2f}"
          + (f"; median ratio to OHIF {statistics.median(page_ms) / statistics.median(ohif_ms):.2f}"
             if ohif_ms else ""))
    if timeline:
        steps = timeline[2:] or timeline
        print("review page timeline, medians on the page's own clock (ms from navigation start): "
              + ", ".join(f"{k} {statistics.median(t[k] for t in steps):.0f}" for k in steps[0]))
    own = pct(in_browser["page"], 95)
    print(f"review page p95 on the page's own clock {own * 1000:.0f} ms (target <= 300: "
          f"{'met' if own <= 0.3 else 'NOT met'}); the figure above adds Playwright's round trips "
          f"(median {statistics.median(page_ms) * 1000 - statistics.median(in_browser['page']) * 1000:.0f} ms)")
    print(f"rendered vs dcmj2pnm: correlation {r:.5f} (target >= 0.999: {'met' if r >= 0.999 else 'NOT met'}), "
          f"max difference {max_diff:.0f} grey levels; median time ratio radgate/dcmj2pnm "
          f"{statistics.median(ours_s) / statistics.median(peer_s):.2f}")
    ok = p95_resort <= 1 and p95_page <= 0.3 and r >= 0.999
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
