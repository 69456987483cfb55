"""Rendered PNGs kept on disk, so that the review page's image is not decoded, windowed, resized and encoded
on every view; and the pre-render of a released result's review image, so that its first view is cached.

Files: ``DATA_DIR/rendered/<SOPInstanceUID>/<sha256[:16]>-<key>.png``. ``sha256`` is the content hash of the
instance's newest revision (``instances.sha256``): a new revision gets new names, so a stale PNG is never
served, and the next render of the instance removes its predecessor's files. ``key`` hashes the window, the
viewport (source rectangle included) and :data:`RENDER_VERSION`. The directory is bounded
(:data:`MAX_BYTES`): when a write takes it over, the least recently used files (by modification time, which
a hit refreshes) are removed down to 80 % of it. Writes are atomic (temporary file, then rename).

A cached PNG is still a view: the rendered route audits every request, hit or miss (``cache`` in the entry).

The review page asks for ``viewport=B,B`` where B is the long side it shows, in device pixels, rounded up to
a multiple of :data:`PAGE_STEP` (at most the image's own long side). :func:`prerender_prediction` (called by
the results worker after it has published a released result) renders the study's review image at the
model's window for the long sides in :data:`PRERENDER_LONG_SIDES`, which cover the review page on the usual
screens at a device-pixel ratio of 1 (a 1400 x 900 window shows a 2048² image 720 px high: 768).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import threading
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from radgate.config import Settings
from radgate.db import Database
from radgate.db.queries import newest_instances
from radgate.db.schema import Instance
from radgate.worklist.render import Viewport, Window

__all__ = [
    "MAX_BYTES",
    "PAGE_STEP",
    "PRERENDER_LONG_SIDES",
    "RENDER_VERSION",
    "RenderCache",
    "newest_sha256",
    "page_viewport",
    "viewer_viewport",
    "prerender_prediction",
    "render_cache",
]

log = logging.getLogger(__name__)

#: Bump when radgate.imaging's display rendering or the PNG encoding changes the pixels served.
RENDER_VERSION = 1
#: The bound of ``DATA_DIR/rendered`` (a 1024 px review PNG of a radiograph is about 0.7 MB).
MAX_BYTES = 1 << 30
#: The review page rounds the long side it asks for up to a multiple of this (templates/review.html).
PAGE_STEP = 256
PRERENDER_LONG_SIDES = (768, 1024)
_UID = re.compile(r"^[0-9][0-9.]{0,63}$")


def page_viewport(rows: int, columns: int, long_side: int) -> Viewport:
    """The ``viewport`` the review page asks for when it shows the image's long side at ``long_side`` device
    pixels (its ``wanted()``): rounded up to a multiple of :data:`PAGE_STEP`, at most the image's."""
    longest = max(rows, columns)
    b = max(1, min(longest, -(-long_side // PAGE_STEP) * PAGE_STEP))
    return Viewport(b, b)


def viewer_viewport(rows: int, columns: int, viewer: str | None) -> Viewport | None:
    """The viewport the review page will ask for, from the ``radgate_viewer`` cookie its script leaves
    (``CSS width,CSS height,devicePixelRatio`` of its image box), so that the server can write the image's
    URL into the page and the browser fetch it while the page is still arriving; None without a usable
    cookie (the page's script then asks). The same arithmetic as ``reviewLongSide`` in review.html."""
    try:
        width, height, dpr = (float(v) for v in (viewer or "").split(","))
    except ValueError:
        return None
    if not all(0 < v < 100_000 for v in (width, height, dpr)) or rows <= 0 or columns <= 0:
        return None
    scale = min(width / columns, height / rows)
    return page_viewport(rows, columns, math.ceil(max(rows, columns) * scale * dpr))


def newest_sha256(session: Session, study_uid: str, series_uid: str, sop_uid: str) -> str | None:
    """The content hash of the newest revision of one instance (what the rendered route serves)."""
    row = session.scalars(
        newest_instances(series_uid).where(
            Instance.StudyInstanceUID == study_uid, Instance.SOPInstanceUID == sop_uid
        )
    ).first()
    return row.sha256 if row is not None else None


class RenderCache:
    """PNG files by (instance content, window, viewport); see the module docstring."""

    def __init__(self, data_dir: Path, max_bytes: int = MAX_BYTES) -> None:
        self.root = Path(data_dir) / "rendered"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None  # what this process believes the directory holds (None: not counted)

    @staticmethod
    def key(window: Window | None, viewport: Viewport | None, frame: int = 0) -> str:
        text = f"v{RENDER_VERSION}|{window!r}|{viewport!r}|{frame}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def path(self, sop_uid: str, sha256: str, key: str) -> Path:
        folder = sop_uid if _UID.match(sop_uid) else hashlib.sha256(sop_uid.encode()).hexdigest()[:32]
        return self.root / folder / f"{sha256[:16]}-{key}.png"

    def get(self, sop_uid: str, sha256: str, key: str) -> bytes | None:
        path = self.path(sop_uid, sha256, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # a read-only directory: still served, evicted as if unread
            os.utime(path)  # recently used: evicted last
        return data

    def put(self, sop_uid: str, sha256: str, key: str, png: bytes) -> None:
        """Write atomically; remove the instance's files of other revisions; keep the directory bounded.
        A failure to write (disk full, read-only) is logged: the PNG was served anyway."""
        path = self.path(sop_uid, sha256, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.iterdir():  # a new revision: its predecessor's renders are stale
                if not old.name.startswith(sha256[:16]) and old.suffix == ".png":
                    old.unlink(missing_ok=True)
            tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(png)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("rendered cache: %s could not be written: %s", path.name, type(exc).__name__)
            return
        with self._lock:
            if self._bytes is None:
                self._bytes = self._scan_size()
            else:
                self._bytes += len(png)
            if self._bytes > self.max_bytes:
                self._bytes = self._evict(int(self.max_bytes * 0.8))

    def _files(self) -> list[tuple[float, int, Path]]:
        found: list[tuple[float, int, Path]] = []
        try:
            folders = list(os.scandir(self.root))
        except OSError:
            return found
        for folder in folders:
            try:
                for entry in os.scandir(folder.path):
                    if entry.name.endswith(".png"):
                        st = entry.stat()
                        found.append((st.st_mtime, st.st_size, Path(entry.path)))
            except OSError:
                continue
        return found

    def _scan_size(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _evict(self, target: int) -> int:
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= target:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                continue
        return total


_CACHES: dict[Path, RenderCache] = {}
_CACHES_LOCK = threading.Lock()


def render_cache(settings: Settings) -> RenderCache:
    """The process's cache of ``settings.data_dir`` (one size count per directory)."""
    root = Path(settings.data_dir).resolve()
    with _CACHES_LOCK:
        cache = _CACHES.get(root)
        if cache is None:
            cache = _CACHES[root] = RenderCache(root)
        return cache


def prerender_prediction(settings: Settings, db: Database, prediction_id: int) -> int:
    """Render the review page's image of the study of a released prediction at the model's window, at the
    page's viewports for :data:`PRERENDER_LONG_SIDES`, into the cache; how many PNGs were written.

    Best effort, after the result's commit: a failure is logged and the page renders on its first view.
    """
    from radgate.dicomweb.wado import instance_paths
    from radgate.engine.tables import Prediction
    from radgate.imaging.decode import read_dataset
    from radgate.storage import blobs_for
    from radgate.worklist.render import parse_window, png_from_pixels, rendered_pixels
    from radgate.worklist.review import review_view

    try:
        with db.session() as s:
            prediction = s.get(Prediction, prediction_id)
            if prediction is None:
                return 0
            view = review_view(s, settings, prediction.StudyInstanceUID, identity=False)
            row = view.row
            if view.window_param is None or not view.rows or not view.columns or row.SOPInstanceUID is None:
                return 0
            series, sop = str(row.SeriesInstanceUID), str(row.SOPInstanceUID)
            sha = newest_sha256(s, row.StudyInstanceUID, series, sop)
            paths = instance_paths(s, blobs_for(settings), row.StudyInstanceUID, series, sop)
        if sha is None or not paths:
            return 0
        cache = render_cache(settings)
        window = parse_window(view.window_param)
        wanted = {page_viewport(view.rows, view.columns, side) for side in PRERENDER_LONG_SIDES}
        todo = [vp for vp in sorted(wanted, key=str) if cache.get(sop, sha, cache.key(window, vp)) is None]
        if not todo:
            return 0
        pixels = rendered_pixels(read_dataset(paths[0]), window, max_bytes=settings.ingest.max_decoded_bytes)
        for vp in todo:
            cache.put(sop, sha, cache.key(window, vp), png_from_pixels(pixels, vp))
        return len(todo)
    except Exception as exc:  # noqa: BLE001 - best effort: never in the way of the results worker
        log.warning("prediction %d: review image not pre-rendered: %s", prediction_id, type(exc).__name__)
        return 0
