"""radgate.storage.bounded.BoundedDirectory: the size bound under the S3 read cache and the rendered cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from radgate.storage.bounded import BoundedDirectory


def _file(root: Path, rel: str, size: int, mtime: float) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_the_least_recently_used_files_go_first_down_to_the_low_water_mark(tmp_path: Path) -> None:
    now = 1_000_000.0
    files = [_file(tmp_path, f"s{i % 3}/series/{i}.dcm", 100, now - 1000 + i) for i in range(10)]  # 1,000 bytes
    box = BoundedDirectory(tmp_path, 900, suffix=".dcm", clock=lambda: now)
    box.added(0)  # the first call counts the directory: 1,000 > 900, so evict to 720
    assert [p.exists() for p in files] == [False] * 3 + [True] * 7
    assert box.size() == 700


def test_a_touched_file_is_kept_and_an_untouched_older_one_goes(tmp_path: Path) -> None:
    now = 1_000_000.0
    old = _file(tmp_path, "a.dcm", 100, now - 500)
    newer = _file(tmp_path, "b.dcm", 100, now - 400)
    box = BoundedDirectory(tmp_path, 150, suffix=".dcm", grace_s=0.0, clock=lambda: now + 10_000)
    box.touch(old)  # read just now (real wall clock, later than `newer`)
    box.added(0)
    assert old.exists() and not newer.exists()


def test_files_used_within_the_grace_period_are_never_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = 1_000_000.0
    held = [_file(tmp_path, f"{i}.dcm", 100, now - 5) for i in range(3)]  # a reader may hold these paths
    box = BoundedDirectory(tmp_path, 150, suffix=".dcm", grace_s=60.0, clock=lambda: now)
    box.added(0)
    assert all(p.exists() for p in held)
    assert "over its" in caplog.text  # said, not silently over the limit


def test_dot_names_other_suffixes_and_counting_after_the_first_scan(tmp_path: Path) -> None:
    now = 1_000_000.0
    _file(tmp_path, ".incoming/part.dcm", 10_000, now - 900)  # being written: neither counted nor deleted
    _file(tmp_path, "notes.txt", 10_000, now - 900)
    kept = _file(tmp_path, "a.dcm", 100, now - 800)
    box = BoundedDirectory(tmp_path, 250, suffix=".dcm", clock=lambda: now)
    box.added(0)
    assert box.size() == 100 and kept.exists()
    second = _file(tmp_path, "b.dcm", 100, now - 700)
    box.added(100)  # 200: under the limit, nothing goes and nothing is scanned
    assert kept.exists() and second.exists()
    _file(tmp_path, "c.dcm", 100, now - 600)
    box.added(100)  # 300 > 250: down to 200, the oldest first
    assert not kept.exists() and second.exists()
    assert (tmp_path / ".incoming/part.dcm").exists() and (tmp_path / "notes.txt").exists()


def test_a_missing_root_is_empty_and_a_zero_limit_is_refused(tmp_path: Path) -> None:
    assert BoundedDirectory(tmp_path / "absent", 10).size() == 0
    with pytest.raises(ValueError, match="max_bytes >= 1, got 0"):
        BoundedDirectory(tmp_path, 0)
