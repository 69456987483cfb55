"""Blobs as files under one directory (``DATA_DIR/instances``): radgate's store since the first release.

:class:`radgate.ingest.store.InstanceStore` writes new instances through its own, faster path on this
backend (the ingest journal and group commit, see :mod:`radgate.ingest.store`); :meth:`FilesystemBlobs.put`
is the plain durable write (temporary file, ``fdatasync``, rename, directory ``fsync``) that the journal's
replay and other writers use.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO

from radgate.storage.base import check_key

__all__ = ["FilesystemBlobs"]


class FilesystemBlobs:
    """Files under ``root``; ``fsync=False`` (``ingest.fsync = false``) skips every flush."""

    def __init__(self, root: Path, fsync: bool = True) -> None:
        self.root = Path(root)
        self.tmp = self.root / ".incoming"
        self.fsync = fsync
        self.location = f"filesystem {self.root}"

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | memoryview) -> None:
        target = self.local_path(key)
        self._ensure_dir(target.parent)
        self.tmp.mkdir(parents=True, exist_ok=True)
        part = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            os.replace(part, target)
            self.fsync_dir(target.parent)
        finally:
            part.unlink(missing_ok=True)

    def read(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self.local_path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def delete(self, key: str) -> None:
        path = self.local_path(key)
        path.unlink(missing_ok=True)
        self.fsync_dir(path.parent)

    def check(self) -> None:
        """Nothing to reach: ``radgate init`` made the directory (the database check finds it missing)."""

    def fsync_dir(self, path: Path) -> None:
        if path.is_dir():
            fsync_dir(path, self.fsync)

    def _ensure_dir(self, path: Path) -> None:
        make_dirs_durably(path, self.fsync)


def fsync_dir(path: Path, enabled: bool = True) -> None:
    """fsync a directory, making the entries created in it durable (a missing directory raises)."""
    if not enabled:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durably(path: Path, enabled: bool = True) -> None:
    """``mkdir -p path``, with each directory it creates made durable in its parent."""
    created: list[Path] = []
    p = path
    while not p.exists():
        created.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for d in reversed(created):
        fsync_dir(d.parent, enabled)
