"""multipart/related parsing for STOW-RS request bodies (RFC 2387, PS3.18 8.6.1.2).

Written here rather than with ``email.parser`` because that parser decodes bodies as text and copies every
part several times; a STOW-RS body is binary DICOM that we only need to slice at the boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MultipartError", "Part", "parse_content_type", "parse_multipart_related"]


class MultipartError(ValueError):
    """The request body is not the multipart/related message its Content-Type announces."""


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes

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


def parse_multipart_related(content_type: str, body: bytes) -> tuple[str | None, list[Part]]:
    """Split ``body`` into parts; returns the ``type`` parameter and the parts in order."""
    media, params = parse_content_type(content_type)
    if media != "multipart/related":
        raise MultipartError(f"Content-Type is {media!r}; STOW-RS expects multipart/related.")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("Content-Type multipart/related has no boundary parameter.")
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = body.split(delimiter)
    if len(pieces) < 3:
        raise MultipartError(f"The body holds no part delimited by boundary {boundary!r}.")
    parts: list[Part] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break  # close delimiter
        if piece.startswith(b"\r\n"):
            piece = piece[2:]
        head, sep, content = piece.partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("A part has no blank line between its headers and its content.")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return params.get("type"), parts
