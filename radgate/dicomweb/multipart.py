"""multipart/related parsing for STOW-RS request bodies (RFC 2387, PS3.18 8.6.1.2).

Written here rather than with ``email.parser`` because that parser decodes bodies as text and copies every
part several times; a STOW-RS body is binary DICOM that we only need to slice at the boundaries. The body
may be ``bytes`` or a memory map of the spooled request (:mod:`radgate.dicomweb.upload`): parts are
located with ``find`` and each part's content is copied out only when asked for (:attr:`Part.body`), so a
large request never sits in memory whole.
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass, field

__all__ = ["MultipartError", "Part", "parse_content_type", "parse_multipart_related"]


class MultipartError(ValueError):
    """The request body is not the multipart/related message its Content-Type announces."""


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    source: bytes | mmap.mmap = field(repr=False)
    start: int = 0
    end: int = 0

    @property
    def body(self) -> bytes:
        """The part's content (a copy: the source may be a memory map closed after the request)."""
        return bytes(self.source[self.start : self.end])

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    media = value.split(";")[0].strip().lower()
    params = {}
    for name, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1]
        params[name.lower()] = raw
    return media, params


def parse_multipart_related(content_type: str, body: bytes | mmap.mmap) -> tuple[str | None, list[Part]]:
    """Split ``body`` into parts; returns the ``type`` parameter and the parts in order."""
    media, params = parse_content_type(content_type)
    if media != "multipart/related":
        raise MultipartError(f"Content-Type is {media!r}; STOW-RS expects multipart/related.")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("Content-Type multipart/related has no boundary parameter.")
    delimiter = b"--" + boundary.encode("latin-1")
    first = body.find(delimiter)
    if first < 0 or body.find(delimiter, first + len(delimiter)) < 0:
        raise MultipartError(f"The body holds no part delimited by boundary {boundary!r}.")
    parts: list[Part] = []
    pos = first + len(delimiter)
    while True:
        if body[pos : pos + 2] == b"--":
            break  # close delimiter
        nxt = body.find(delimiter, pos)
        if nxt < 0:
            break  # no closing delimiter: what came after the last delimiter is not a part
        start = pos + 2 if body[pos : pos + 2] == b"\r\n" else pos
        head_end = body.find(b"\r\n\r\n", start, nxt)
        if head_end < 0:
            raise MultipartError("A part has no blank line between its headers and its content.")
        end = nxt - 2 if body[nxt - 2 : nxt] == b"\r\n" else nxt
        headers: dict[str, str] = {}
        for line in bytes(body[start:head_end]).decode("latin-1").split("\r\n"):
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, body, head_end + 4, max(end, head_end + 4)))
        pos = nxt + len(delimiter)
    return params.get("type"), parts
