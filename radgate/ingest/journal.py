"""The ingest journal: an instance is durable after one fsync, of an append-only log that holds its bytes.

At default durability an instance is acknowledged only once it survives a power loss. Making its file, its
directory entry and its database row durable one by one costs two or three synchronous disk flushes per
instance. With the journal it costs one: the instance's bytes and where they go are appended to
``DATA_DIR/journal/<n>.jnl`` and that file is ``fdatasync``'d (once for all the instances of a group
commit); the file under ``instances/`` and the row are then written without waiting for the disk (SQLite
``synchronous=NORMAL`` for those transactions). They become durable
at the next *checkpoint*: when ingest has been idle for a moment, or a segment is full, every file the
segment names is fsync'd with its directory, the database is flushed, and only then is the segment deleted.
(PostgreSQL commits stay synchronous: its server may crash and come back while radgate runs on, and the
journal is replayed only when radgate starts; only the instance files wait for the checkpoint there.)

After a crash the store replays what is left (:meth:`radgate.ingest.store.InstanceStore` on start): a record
whose row is missing is stored again, a record whose file is missing or differs is written again from the
journal. A record is recognised by a checksum of its header and the SHA-256 of its dataset: a torn record at
the end of a segment (a flush that never completed, so never acknowledged) ends the replay of that segment.

One process owns the journal (an exclusive ``flock`` on ``journal/lock``); another process opening the same
data directory (``radgate import`` beside a running ``radgate serve``) finds it taken and syncs each instance
on its own, as without a journal.

Record layout: ``RGJ1`` | header length (u32) | payload length (u64) | CRC-32 of the header (u32) | header
(JSON: ``sha256`` of the dataset, ``body`` its offset, ``source``, ``calling_ae``; records of earlier versions
also name a ``path``, which replay never needed) | payload (the Part-10 bytes). The records are appended
before the transaction decides where each instance goes (and whether it is a duplicate): replay looks the
instance up by SOPInstanceUID and digest, as the store does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "IngestJournal",
    "JournalBusyError",
    "JournalMark",
    "JournalRecord",
    "Segment",
    "sync_files",
    "write_all",
]

log = logging.getLogger(__name__)

MAGIC = b"RGJ1"
_HEAD = struct.Struct("<4sIQI")
#: A segment is closed (and checkpointed in the background) once it holds this much.
SEGMENT_BYTES = 256 * 1024**2
#: Larger instances bypass the journal: their file is fsync'd in place (writing them twice costs more).
MAX_RECORD_BYTES = 64 * 1024**2


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written (it may write fewer than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JournalBusyError(Exception):
    """Another process holds the journal of this data directory."""


@dataclass(frozen=True)
class JournalRecord:
    header: dict[str, Any]
    payload: bytes


@dataclass
class Segment:
    """One journal file and the instance files its records wrote (fsync'd at its checkpoint)."""

    path: Path
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class JournalMark:
    """Where the journal stood before an append, to take that append back."""

    segment: Path
    size: int
    files: int


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_files(paths: Iterable[Path]) -> None:
    """``fdatasync`` each file, then ``fsync`` each of their directories once: what a journal record vouched
    for is durable in place. A file that is gone is skipped (a copy found to be a duplicate and removed, or
    a revision 1 replaced)."""
    directories: dict[Path, None] = {}
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        directories[path.parent] = None
    for directory in directories:
        _fsync_path(directory, directory=True)


class IngestJournal:
    """The append-only log of one data directory; not thread-safe (the store calls it under its lock)."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.segment_bytes = segment_bytes
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise JournalBusyError(str(directory)) from exc
        self._fd: int | None = None
        self._current: Segment | None = None
        self._closed: list[Segment] = []  # closed early (a failed cut), waiting for the next rotate
        self._size = 0
        self._next = max((_number(p) for p in self.segments()), default=0) + 1

    # ---------------------------------------------------------------- reading
    def segments(self) -> list[Path]:
        """Segment files on disk, oldest first."""
        return sorted(self.dir.glob("*.jnl"), key=_number)

    @staticmethod
    def read(path: Path) -> Iterator[JournalRecord]:
        """The complete records of a segment, in order; stops at the first torn or foreign one."""
        with path.open("rb") as f:
            while True:
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    return
                magic, header_len, payload_len, crc = _HEAD.unpack(head)
                if magic != MAGIC or header_len > 1 << 20:
                    return
                header_bytes = f.read(header_len)
                if len(header_bytes) < header_len or zlib.crc32(header_bytes) != crc:
                    return
                try:
                    header = json.loads(header_bytes)
                except ValueError:
                    return
                payload = f.read(payload_len)
                body = header.get("body", 0) if isinstance(header, dict) else -1
                if (
                    len(payload) < payload_len
                    or not isinstance(body, int)
                    or hashlib.sha256(memoryview(payload)[body:]).hexdigest() != header.get("sha256")
                ):
                    log.warning("Ingest journal %s ends with a torn record (never acknowledged)", path.name)
                    return
                yield JournalRecord(header, payload)

    # ---------------------------------------------------------------- writing
    @property
    def has_records(self) -> bool:
        return bool(self._closed) or (self._current is not None and self._size > 0)

    @property
    def full(self) -> bool:
        return self._size >= self.segment_bytes

    def append(self, records: Sequence[tuple[dict[str, Any], bytes]]) -> JournalMark:
        """Append ``(header, payload)`` records and make them durable with one ``fdatasync``.

        On any failure (disk full) the segment is cut back to where it was and the error raised: nothing
        half-written stays. The returned mark takes the append back (:meth:`undo`) if the transaction that
        indexes these instances fails.
        """
        if self._fd is None or self._current is None:
            path = self.dir / f"{self._next:08d}.jnl"
            self._next += 1
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
            self._current = Segment(path)
            self._size = 0
            try:
                _fsync_path(self.dir, directory=True)  # the new segment's name is durable
            except BaseException:
                self._discard_current()
                raise
        mark = JournalMark(self._current.path, self._size, len(self._current.files))
        try:
            for header, payload in records:
                header_bytes = json.dumps(header, separators=(",", ":")).encode()
                head = _HEAD.pack(MAGIC, len(header_bytes), len(payload), zlib.crc32(header_bytes))
                self._write(head + header_bytes)
                self._write(payload)
            os.fdatasync(self._fd)
        except BaseException:
            self._cut(mark)
            raise
        return mark

    def track(self, files: Sequence[Path]) -> None:
        """Instance files written (not fsync'd) for the records appended last: the current segment's
        checkpoint makes them durable before the segment is dropped. :meth:`undo` forgets them again."""
        if self._current is not None:
            self._current.files.extend(files)

    def undo(self, mark: JournalMark) -> None:
        """Take back an append whose instances were not indexed after all (never acknowledged)."""
        if self._current is not None and self._current.path == mark.segment:
            self._cut(mark)

    def rotate(self) -> list[Segment]:
        """Close the current segment (if it holds records); return the closed ones, for the caller to
        checkpoint once it has flushed the database."""
        closed, self._closed = self._closed, []
        if self._current is not None and self._size > 0:
            assert self._fd is not None
            os.close(self._fd)
            closed.append(self._current)
            self._fd, self._current, self._size = None, None, 0
        return closed

    def checkpoint(self, segment: Segment) -> None:
        """Make every file of a closed segment durable (the caller has flushed the database), then drop it."""
        sync_files(segment.files)
        self.drop(segment.path)

    def drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_path(self.dir, directory=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    # ---------------------------------------------------------------- helpers
    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        write_all(self._fd, data)
        self._size += len(data)

    def _cut(self, mark: JournalMark) -> None:
        assert self._fd is not None and self._current is not None
        try:
            os.ftruncate(self._fd, mark.size)
        except OSError:
            log.exception("Could not cut the ingest journal back after a failed append")
            self._discard_current()  # start a new segment; recovery stops at the torn record anyway
            return
        self._size = mark.size
        del self._current.files[mark.files :]

    def _discard_current(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        if self._current is not None:
            if self._size == 0:
                self._current.path.unlink(missing_ok=True)
            else:
                self._closed.append(self._current)
        self._fd, self._current, self._size = None, None, 0


def _number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0
