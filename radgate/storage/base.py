"""The blob interface every instance store backend implements, and its one error."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = ["BlobStore", "BlobStoreError", "check_key"]


class BlobStoreError(OSError):
    """The store could not be reached or refused the request; ``reason`` says why in words for a sender or
    an operator (never a key: keys carry UIDs, and UIDs are all they carry)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@runtime_checkable
class BlobStore(Protocol):
    """Immutable files by key (a relative POSIX path such as ``<Study>/<Series>/<SOP>.dcm``).

    ``put`` returns only once the bytes would survive a power loss (or the loss of this machine, for an
    object store); a key is written once and never changed afterwards (revisions get their own keys).
    """

    #: where the blobs are, for messages: ``filesystem /srv/radgate/instances`` or ``s3://bucket/prefix``
    location: str

    def put(self, key: str, data: bytes | memoryview) -> None: ...

    def read(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def local_path(self, key: str) -> Path:
        """A file with the blob's bytes for path-based readers (pydicom): itself, or a cached copy.

        A missing blob is a FileNotFoundError, from here or when the file is opened."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def check(self) -> None:
        """Raise a one-line :class:`BlobStoreError` when the store cannot be used (start-up check)."""
        ...


def check_key(key: str) -> str:
    """``key`` when it is a relative POSIX path inside the store, else a ValueError naming it."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or "\\" in key or any(p in ("..", ".") for p in parts):
        raise ValueError(f"blob key {key!r} must be a relative path without '.' or '..' parts")
    return key
