"""What the review page shows, read once per instance file: its geometry and the model's window come from
the file's header, which is parsed on the first view only (the file is never rewritten: a revision is a
new file). The values are the header's own, and a file with another modification time is read again."""

from __future__ import annotations

import os

import pydicom
import pytest

from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.worklist import review
from radgate.worklist.render import header_window
from radgate.worklist.review import review_view
from tests.helpers.worklist import add_result, store_study


def test_header_parsed_once_per_file(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = store_study(InstanceStore(settings, db), db, "siemens-dx", received_minutes_ago=2)
    add_result(db, st, score=0.93)
    review._geometry.cache_clear()
    reads: list[str] = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(review.pydicom, "dcmread", counting)
    views = []
    for _ in range(3):
        with db.session() as s:
            views.append(review_view(s, settings, st.study, identity=False, with_neighbours=True))
    assert len(reads) == 1, reads  # the first view parsed the header; the next two did not
    header = real(st.path, stop_before_pixels=True)
    center, width = header_window(header) or (None, None)
    for v in views:
        assert (v.rows, v.columns) == (int(header.Rows), int(header.Columns))
        assert (v.window_center, v.window_width) == (center, width)
    stat = os.stat(st.path)
    os.utime(st.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # the file changed: read again
    with db.session() as s:
        review_view(s, settings, st.study, identity=False)
    assert len(reads) == 2, reads
