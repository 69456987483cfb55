"""The header of a native explicit VR little endian Part-10 file, read from its bytes without pydicom.

Every received instance is parsed for its UIDs, its Image Pixel attributes and some twenty acquisition
features. pydicom's ``dcmread`` builds a ``Dataset`` of every element and converts each value on first
access through its hooks and ``DataElement``: about 0.8 ms of Python per instance, a tenth of what one
instance costs the gateway. Almost everything arrives in explicit VR little endian (PS3.5 A.2; storescu,
PACS and modalities send it, radgate asks for it first), where each element's VR and length are in the
bytes (PS3.5 7.1.2), so :class:`HeaderScan` walks the top-level elements once with ``struct`` and converts
only the values asked for, the way pydicom does for the value representations it handles here (text of
plain ASCII in one value; US, UL; IS and DS numbers).

Anything else is pydicom's: a value of another VR, a multi-valued or non-ASCII text, an empty number, an
escape sequence (PS3.5 6.1.2.5) -- :meth:`HeaderScan.value` then reads the file with pydicom (once) and
answers from that dataset. A file whose structure :func:`scan` does not vouch for (a length past the end,
elements out of order, an undefined length outside a sequence, elements after Pixel Data, encapsulated
pixel data) is not scanned at all: the caller parses it with pydicom, with all its checks.
``tests/test_ingest_header.py`` compares every value with pydicom's, over every vendor profile of the
synthetic site.
"""

from __future__ import annotations

import functools
import io
import re
import struct
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

__all__ = ["LONG_VRS", "HeaderScan", "keyword_tag", "scan"]

_TAG = struct.Struct("<HH")
_SHORT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_LONG_LENGTH = struct.Struct("<L")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
#: Explicit VR value representations with a reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
#: The other value representations of PS3.5 6.2 (a 2-byte length); any other VR is pydicom's to judge.
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL"}
    | {b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
#: pydicom's ``convert_string``: the whole value's trailing spaces and NULs go, then it is split.
_STRING_VRS = frozenset({"AS", "CS", "DA", "TM"})
#: pydicom's ``convert_text``: split first, each value's trailing NULs and spaces go.
_TEXT_VRS = frozenset({"SH", "LO"})
_IS = re.compile(r" *[+-]?[0-9]+ *")
_DS = re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *")
_MISSING = object()

#: One element: its VR, and where its value starts and ends in the file's bytes.
Element = tuple[str, int, int]


@functools.cache
def keyword_tag(keyword: str) -> int:
    """The tag of a DICOM keyword (pydicom's data dictionary); ValueError for a word that is none."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword (pydicom's data dictionary).")
    return tag


def _skip_sequence(data: bytes, at: int) -> int | None:
    """Past an undefined-length sequence's items and its delimiter (PS3.5 7.5); None if malformed."""
    end = len(data)
    while at + 8 <= end:
        group, element = _TAG.unpack_from(data, at)
        tag = group << 16 | element
        (length,) = _LONG_LENGTH.unpack_from(data, at + 4)
        at += 8
        if tag == _SEQUENCE_END:
            return at
        if tag != _ITEM:
            return None
        if length == _UNDEFINED:
            skipped = _walk(data, at, None, until_item_end=True)
            if skipped is None:
                return None
            at = skipped
        elif at + length > end:
            return None
        else:
            at += length
    return None


def _walk(data: bytes, at: int, out: dict[int, Element] | None, until_item_end: bool = False) -> int | None:
    """Walk explicit VR little endian elements from ``at``: to Pixel Data (top level: ``out`` collects the
    elements), or past an item's delimiter (nested). Returns where it stopped; None if malformed."""
    end = len(data)
    previous = -1
    while at < end:
        if at + 8 > end:
            return None
        group, element, vr, length = _SHORT.unpack_from(data, at)
        tag = group << 16 | element
        if until_item_end and tag == _ITEM_END:
            return at + 8
        if tag <= previous or group == 0xFFFE:
            return None  # out of order, or a delimiter where an element belongs
        previous = tag
        if out is not None and tag == PIXEL_DATA:
            return at
        if vr in LONG_VRS:
            if at + 12 > end:
                return None
            (length,) = _LONG_LENGTH.unpack_from(data, at + 8)
            start = at + 12
        elif vr in _SHORT_VRS:
            start = at + 8
        else:
            return None
        if length == _UNDEFINED:
            if vr != b"SQ":
                return None
            skipped = _skip_sequence(data, start)
            if skipped is None:
                return None
            at = skipped
            continue
        if start + length > end:
            return None
        if out is not None:
            out[tag] = (vr.decode("ascii"), start, start + length)
        at = start + length
    return None if until_item_end else at


def scan(data: bytes, body_offset: int) -> HeaderScan | None:
    """The top-level header of an explicit VR little endian dataset starting at ``body_offset``, with the
    number of Pixel Data bytes present; None where only pydicom can say (see the module docstring)."""
    elements: dict[int, Element] = {}
    at = _walk(data, body_offset, elements)
    if at is None:
        return None
    pixel_length: int | None = None
    if at < len(data):  # stopped at Pixel Data: it must be native, defined, and the last element
        if at + 12 > len(data) or data[at + 4 : at + 6] not in (b"OB", b"OW"):
            return None
        (length,) = _LONG_LENGTH.unpack_from(data, at + 8)
        start = at + 12
        if length == _UNDEFINED or start + length < len(data):
            return None
        pixel_length = min(length, len(data) - start)
    return HeaderScan(data, elements, pixel_length)


class HeaderScan:
    """The scanned header: ``value(keyword)`` and ``get(keyword)`` answer as pydicom's ``Dataset`` would."""

    __slots__ = ("_data", "_dataset", "_elements", "pixel_length")

    def __init__(self, data: bytes, elements: dict[int, Element], pixel_length: int | None) -> None:
        self._data = data
        self._elements = elements
        self._dataset: Dataset | None = None
        self.pixel_length = pixel_length  # Pixel Data bytes present; None without Pixel Data

    @property
    def dataset(self) -> Dataset:
        """The header as pydicom reads it (read once, on first use, without Pixel Data)."""
        if self._dataset is None:
            self._dataset = pydicom.dcmread(io.BytesIO(self._data), stop_before_pixels=True)
        return self._dataset

    def __contains__(self, keyword: str) -> bool:
        return keyword_tag(keyword) in self._elements

    def get(self, keyword: str, default: Any = None) -> Any:
        """``Dataset.get(keyword)``: the value, or ``default`` when the element is absent."""
        value = self._converted(keyword)
        if value is _MISSING:
            return default
        return value

    def value(self, keyword: str) -> Any:
        """``ds.get(keyword).value``, None when absent (may raise where pydicom's conversion raises)."""
        value = self._converted(keyword)
        return None if value is _MISSING else value

    def _converted(self, keyword: str) -> Any:
        tag = keyword_tag(keyword)
        element = self._elements.get(tag)
        if element is None:
            return _MISSING
        vr, start, end = element
        raw = self._data[start:end]
        value = _convert(vr, raw)
        if value is _MISSING:  # pydicom's to convert
            elem = self.dataset.get(tag)
            return _MISSING if elem is None else elem.value
        return value


def _convert(vr: str, raw: bytes) -> Any:
    """The value pydicom gives ``raw`` of ``vr``, for the cases it is certain of; else ``_MISSING``.

    Several values (``\\``-separated) come back as a list where pydicom gives a ``MultiValue``."""
    if vr == "US":
        return _US.unpack(raw)[0] if len(raw) == 2 else _MISSING
    if vr == "UL":
        return _UL.unpack(raw)[0] if len(raw) == 4 else _MISSING
    if not raw.isascii() or b"\x1b" in raw:
        return _MISSING  # another character set, or an escape sequence into one: pydicom's
    text = raw.decode("ascii")
    items: list[Any]
    if vr == "UI" or vr in _STRING_VRS:  # convert_UI, convert_string: strip the whole, then split
        items = text.rstrip(" \x00").split("\\")
    elif vr in _TEXT_VRS:  # convert_text: split, then strip each
        items = [item.rstrip("\0 ") for item in text.split("\\")]
    elif vr == "IS" or vr == "DS":
        items = text.strip(" \x00").split("\\")
        pattern = _IS if vr == "IS" else _DS
        if not all(pattern.fullmatch(item) for item in items):
            return _MISSING  # empty, or not a number pydicom reads the same way
        items = [int(item) if vr == "IS" else float(item) for item in items]
    else:
        return _MISSING
    return items[0] if len(items) == 1 else items
