"""Receiving a STOW-RS request body: streamed to a file on disk, bounded in size and in time.

A STOW-RS body may hold a whole study; reading it into memory would let one request (or a few at once)
take gigabytes. :func:`spool_body` writes the chunks as they arrive to a file under
``DATA_DIR/instances/.incoming/`` (the store's own temporary directory, so on the same filesystem), and
the multipart parser then reads it through ``mmap``: only the part being stored is ever in memory.

Limits (``[server]`` in the configuration):

* ``max_request_bytes``: a declared ``Content-Length`` above it is refused (413) before a byte of the body
  is read; a body without one (chunked) is refused as soon as it grows past it;
* ``http_idle_timeout_s``: no byte for this long and the request is dropped (408);
* ``http_min_rate_bytes_s``: after the first ``http_idle_timeout_s``, a body arriving slower than this on
  average is dropped (408), so a client sending a byte a second cannot hold a connection and a file.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from radgate.config import Settings

__all__ = ["BodyRefused", "SpooledBody", "UploadLimits", "check_declared_length", "spool_body"]


class BodyRefused(Exception):  # noqa: N818 - a refusal with its HTTP status, not a fault of radgate
    """The request body is refused: ``status`` is the HTTP status (413 too large, 408 too slow, 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    idle_timeout_s: float
    min_rate_bytes_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        server = settings.server
        return cls(server.max_request_bytes, server.http_idle_timeout_s, server.http_min_rate_bytes_s)


class SpooledBody:
    """A received body on disk; ``buffer()`` maps it (read-only); closing removes the file."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._map: mmap.mmap | None = None

    def buffer(self) -> mmap.mmap | bytes:
        if self.size == 0:
            return b""
        if self._map is None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            finally:
                os.close(fd)
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SpooledBody:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_declared_length(content_length: str | None, limits: UploadLimits) -> None:
    """Refuse a body whose declared length is over the limit, before reading it."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError as exc:
        raise BodyRefused(400, f"Content-Length {content_length[:40]!r} is not a number.") from exc
    if declared > limits.max_bytes:
        raise BodyRefused(
            413,
            f"The request body is {declared:,} bytes; the limit (server.max_request_bytes) is "
            f"{limits.max_bytes:,}. Send the study in several requests.",
        )


async def spool_body(
    chunks: AsyncIterator[bytes], directory: Path, limits: UploadLimits, content_length: str | None = None
) -> SpooledBody:
    """Write ``chunks`` to a new file in ``directory``, enforcing ``limits``; raises :class:`BodyRefused`."""
    check_declared_length(content_length, limits)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stow-", suffix=".body", dir=directory)
    except OSError as exc:
        raise _unwritable(exc) from exc
    path = Path(name)
    size = 0
    start = time.monotonic()
    iterator = chunks.__aiter__()
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                try:
                    chunk = await asyncio.wait_for(iterator.__anext__(), timeout=limits.idle_timeout_s)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise BodyRefused(
                        408,
                        f"No data for {limits.idle_timeout_s:g} s after {size:,} bytes "
                        "(server.http_idle_timeout_s); the request was dropped.",
                    ) from exc
                size += len(chunk)
                if size > limits.max_bytes:
                    raise BodyRefused(
                        413,
                        f"The request body exceeds the limit (server.max_request_bytes) of "
                        f"{limits.max_bytes:,} bytes. Send the study in several requests.",
                    )
                try:
                    f.write(chunk)
                except OSError as exc:
                    raise _unwritable(exc) from exc
                elapsed = time.monotonic() - start
                if elapsed > limits.idle_timeout_s and size / elapsed < limits.min_rate_bytes_s:
                    raise BodyRefused(
                        408,
                        f"The body arrives at {size / elapsed:,.0f} bytes/s, below the minimum "
                        f"(server.http_min_rate_bytes_s) of {limits.min_rate_bytes_s:,.0f}; the request was "
                        "dropped.",
                    )
    except OSError as exc:  # the close of the file flushes: a full disk may show only here
        path.unlink(missing_ok=True)
        raise _unwritable(exc) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledBody(path, size)


def _unwritable(exc: OSError) -> BodyRefused:
    """503: the body could not be written (disk full); nothing was stored and the client may retry."""
    what = exc.strerror or type(exc).__name__
    return BodyRefused(
        503, f"radgate could not receive the request body ({what}); nothing was stored, retry later."
    )
