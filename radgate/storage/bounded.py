"""A directory of disposable files kept under a size: least recently used files go first.

Both local caches use it: the S3 read-through cache (``DATA_DIR/s3-cache``: copies of immutable objects) and
the rendered-PNG cache (``DATA_DIR/rendered``). Their files can be deleted at any time at the cost of
recomputing or downloading them, so eviction needs no coordination beyond one rule: a file used within the
last ``grace_s`` seconds is never deleted, because a reader may hold its path without having opened it yet
(``BlobStore.local_path`` hands out paths; once a file is open, POSIX keeps it readable after an unlink).

"Used" is the file's mtime: writers create files, readers call :meth:`touch`. A process counts the directory's
size once (a scan), then adds what it writes; when the count passes ``max_bytes`` it scans again and deletes
the oldest files down to ``low_water`` of the limit, so a scan happens once per
``(1 - low_water) * max_bytes`` written, not per file. Several processes sharing a directory each keep
their own count; each scan corrects it.

Written here rather than taken from a library: the candidates (``diskcache``, ``cachetools``) keep their own
index (SQLite, or memory) beside the files, and the files themselves are what pydicom and the HTTP responses
read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["BoundedDirectory"]

log = logging.getLogger(__name__)


class BoundedDirectory:
    """Files under ``root`` whose names end in ``suffix`` (any depth), kept under ``max_bytes``.

    Names starting with ``.`` (temporary files being written, the S3 cache's ``.incoming``) are never
    counted or deleted.
    """

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        suffix: str = "",
        low_water: float = 0.8,
        grace_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"a bounded directory needs max_bytes >= 1, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.suffix = suffix
        self.low_water = low_water
        self.grace_s = grace_s
        self._clock = clock  # the files' mtimes are wall-clock seconds, so the grace period is too
        self._lock = threading.Lock()
        self._bytes: int | None = None  # what this process believes the directory holds (None: not counted)

    @staticmethod
    def touch(path: Path) -> None:
        """Mark ``path`` used now (evicted last). A read-only directory is served anyway."""
        with contextlib.suppress(OSError):
            os.utime(path)

    def added(self, nbytes: int) -> None:
        """``nbytes`` were just written under the root; evict if that takes the directory over its limit."""
        with self._lock:
            self._bytes = self.size() if self._bytes is None else self._bytes + nbytes
            if self._bytes > self.max_bytes:
                self._bytes = self._evict(int(self.max_bytes * self.low_water))

    def size(self) -> int:
        """The bytes the directory's files hold now (a scan)."""
        return sum(size for _, size, _ in self._files())

    def _files(self) -> Iterator[tuple[float, int, str]]:
        stack = [str(self.root)]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:  # not there yet, or removed while scanning
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.name.endswith(self.suffix):
                        st = entry.stat(follow_symlinks=False)
                        yield st.st_mtime, st.st_size, entry.path
                except OSError:
                    continue

    def _evict(self, target: int) -> int:
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        recent = self._clock() - self.grace_s
        removed = 0
        for mtime, size, path in files:
            if total <= target or mtime > recent:
                break  # sorted oldest first: everything after is newer still
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size
            removed += 1
        if total > self.max_bytes:
            log.warning(
                "%s holds %d MiB, over its %d MiB limit: everything left was used in the last %.0f s",
                self.root, total >> 20, self.max_bytes >> 20, self.grace_s,
            )
        elif removed:
            log.info("%s: %d least recently used files removed, %d MiB left", self.root, removed, total >> 20)
        return total
