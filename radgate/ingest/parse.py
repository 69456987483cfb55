"""Checking what arrives: Part-10 parsing, UID checks, the storage SOP classes, header features.

Everything here is tolerant of minor deviations (pydicom reads with ``force`` where the preamble is missing)
and strict about what radgate relies on: the three instance UIDs, a SOP Class, a size limit. A refusal is an
:class:`IngestRejection` carrying the PS3.4 Annex B status code and a reason a human understands - never
patient data.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import pydicom
import pydicom.config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag, Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian
from pynetdicom.sop_class import _STORAGE_CLASSES

from radgate.dicom.age import age_in_years
from radgate.imaging.decode import describe_exception
from radgate.ingest.header import LONG_VRS, HeaderScan, keyword_tag, scan

__all__ = [
    "STORAGE_SOP_CLASSES",
    "Status",
    "IngestRejection",
    "ParsedInstance",
    "parse_part10",
    "header_features",
    "get_value",
    "header_text",
]

# pydicom's reading validation only warns, and its warnings quote the offending value ("Invalid value for VR
# UI: '...'"): with a corrupt length, that value holds the next elements' bytes, names and dates included.
# radgate checks what it relies on itself and says what is wrong without quoting values; nothing else
# changes (validation on reading never raises).
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

#: Every storage SOP class pynetdicom knows (PS3.4 Annex B.5), by UID.
STORAGE_SOP_CLASSES: frozenset[str] = frozenset(str(uid) for uid in _STORAGE_CLASSES.values())

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# Tolerate the leading zeros some old modalities emit in UID components; radgate only needs path-safe UIDs.
UID_LOOSE_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian (PS3.5 A.5)
#: Native (uncompressed) little endian syntaxes: their header is read without Pixel Data (PS3.5 A.1, A.2).
NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_INSTANCE_UIDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
PIXEL_DATA_TAG = (0x7FE0, 0x0010)

#: Image Pixel module attributes radgate computes with (PS3.3 C.7.6.3): each must be one readable value.
IMAGE_INTEGERS = ("Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel")


class Status:
    """C-STORE status codes (PS3.4 Annex B.2.3 and PS3.7 Annex C) used by radgate."""

    SUCCESS = 0x0000
    REFUSED_SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    PROCESSING_FAILURE = 0x0110


class IngestRejection(Exception):  # noqa: N818 - a rejection, not an error of radgate
    """An instance radgate refuses, with the status to return and a human-readable reason."""

    def __init__(self, status: int, reason: str, SOPInstanceUID: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.SOPInstanceUID = SOPInstanceUID


@dataclass
class ParsedInstance:
    """The header of one received instance and its canonical Part-10 bytes."""

    data: bytes  # Part-10 file (preamble, file meta, dataset)
    body_offset: int  # where the dataset starts in ``data``
    dataset: Header  # as read (Pixel Data present but not decoded), or as scanned (radgate.ingest.header)
    SOPInstanceUID: str
    SOPClassUID: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    TransferSyntaxUID: str
    features: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def sha256(self) -> str:
        """Hash of the dataset as encoded, excluding the file meta (which differs by sender); computed once
        (the journal's record and the duplicate check both need it)."""
        return hashlib.sha256(memoryview(self.data)[self.body_offset :]).hexdigest()


@functools.cache
def _tag(keyword: str) -> BaseTag:
    return Tag(keyword_tag(keyword))


#: A header as read: pydicom's dataset, or the scanned one of a native explicit VR little endian file.
Header = Dataset | HeaderScan


def _value(ds: Header, keyword: str) -> Any:
    """``ds.get(keyword)``, looked up by tag: the same value, without pydicom's keyword lookup each time
    (a tenth of the cost, and the header features read some forty attributes per instance)."""
    if isinstance(ds, HeaderScan):
        return ds.value(keyword)
    elem = ds.get(_tag(keyword))
    return None if elem is None else elem.value


def get_value(ds: Header, keyword: str) -> Any:
    """``ds.get(keyword)`` that never raises: None when absent or not decodable as its VR.

    pydicom converts elements lazily, so a value whose bytes do not fit its VR (odd length for US, a UID
    encoded as FD) raises on first access, wherever that is.
    """
    try:
        return _value(ds, keyword)
    except Exception:
        return None


def _sop_uid(ds: Header) -> str | None:
    """The SOP Instance UID for a rejection record: only a well-formed UID, else None (never junk)."""
    value = get_value(ds, "SOPInstanceUID")
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00")
    return text if len(text) <= 64 and UID_LOOSE_RE.match(text) else None


def _check_uid(ds: Header, keyword: str) -> str:
    try:
        value = _value(ds, keyword)
    except Exception as exc:
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            f"{keyword} cannot be read: its bytes do not fit its value representation "
            f"({describe_exception(exc, 80)}); a UID must be encoded as UI.",
            _sop_uid(ds) if keyword != "SOPInstanceUID" else None,
        ) from exc
    if value is None or str(value).strip() == "":
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            f"{keyword} is missing; every instance needs Study, Series and SOP Instance UIDs.",
            _sop_uid(ds) if keyword != "SOPInstanceUID" else None,
        )
    text = str(value).strip().rstrip("\x00")
    if not isinstance(value, str) or len(text) > 64 or not UID_LOOSE_RE.match(text):
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            f"{keyword} {_quote_uid(text)} is not a valid UID (digits and dots, at most 64 characters).",
            None,
        )
    return text


def _quote_uid(text: str) -> str:
    """The value of a bad UID for a reason: quoted only when it holds nothing but UID characters.

    A corrupted length makes a UID's value swallow the elements after it (patient name, dates); those
    bytes must not reach the reason, the rejection row or the log.
    """
    if re.fullmatch(r"[0-9. ]*", text[:80]):
        return repr(text[:80])
    bad = next(i for i, ch in enumerate(text) if ch not in "0123456789. ")
    return f"({len(text)} characters, not a UID from character {bad + 1} on)"


def _check_image_integers(ds: Header) -> None:
    """Rows, Columns, Bits Allocated/Stored, Samples per Pixel: absent, or one readable integer each."""
    for keyword in IMAGE_INTEGERS:
        try:
            value = _value(ds, keyword)
        except Exception as exc:
            raise IngestRejection(
                Status.CANNOT_UNDERSTAND,
                f"{keyword} cannot be read ({describe_exception(exc, 100)}); it must be one unsigned "
                "16-bit value (US, 2 bytes).",
                _sop_uid(ds),
            ) from exc
        if value is None or value == "":
            continue
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            raise IngestRejection(
                Status.CANNOT_UNDERSTAND,
                f"{keyword} has {len(value)} values; it must have exactly one (PS3.3 C.7.6.3).",
                _sop_uid(ds),
            )
        if not isinstance(value, int):
            raise IngestRejection(
                Status.CANNOT_UNDERSTAND,
                f"{keyword} is not an integer ({type(value).__name__}); it must be one US value.",
                _sop_uid(ds),
            )


def _check_inflated_size(data: bytes, body_offset: int, limit: int) -> None:
    """Inflate a deflated dataset in bounded steps, only to measure it; refuse above ``limit`` bytes.

    pydicom inflates the whole stream at once (and copies it), so a few megabytes that inflate to
    gigabytes would be held in memory several times before anything could say no.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = memoryview(data)[body_offset:]
    total = 0
    try:
        while pending and not inflater.eof:
            total += len(inflater.decompress(pending, 1 << 20))
            if total > limit:
                raise IngestRejection(
                    Status.OUT_OF_RESOURCES,
                    f"The deflated dataset inflates to more than {limit:,} bytes, the configured limit "
                    "(ingest.max_inflated_bytes).",
                )
            pending = memoryview(inflater.unconsumed_tail)
        total += len(inflater.flush())
    except zlib.error as exc:
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND, f"The deflated dataset is not a valid deflate stream: {exc}."
        ) from exc
    if total > limit:
        raise IngestRejection(
            Status.OUT_OF_RESOURCES,
            f"The deflated dataset inflates to {total:,} bytes; the limit (ingest.max_inflated_bytes) is "
            f"{limit:,}.",
        )


def _declared_transfer_syntax(data: bytes, body_offset: int) -> str | None:
    """The Transfer Syntax UID (0002,0010) from raw file meta bytes, without parsing the dataset."""
    meta = data[144:body_offset]
    i = meta.find(b"\x02\x00\x10\x00UI")
    if i < 0 or i + 8 > len(meta):
        return None
    (length,) = struct.unpack_from("<H", meta, i + 6)
    return meta[i + 8 : i + 8 + length].decode("ascii", "replace").strip("\x00 ")


def _meta_length(data: bytes) -> int | None:
    """Offset of the dataset in a Part-10 file, from (0002,0000) FileMetaInformationGroupLength."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    tag_group, tag_elem = struct.unpack_from("<HH", data, 132)
    vr = data[136:138]
    if (tag_group, tag_elem) != (0x0002, 0x0000) or vr != b"UL":
        return None
    (length,) = struct.unpack_from("<I", data, 140)
    offset = 144 + length
    return offset if offset <= len(data) else None


def parse_part10(
    data: bytes, max_bytes: int | None = None, max_inflated_bytes: int | None = None
) -> ParsedInstance:
    """Parse received bytes (a Part-10 file, or a bare dataset) into a :class:`ParsedInstance`.

    Raises :class:`IngestRejection` for empty, oversized, non-DICOM or truncated input, for missing or
    malformed UIDs and Image Pixel attributes, and for a deflated dataset that inflates beyond
    ``max_inflated_bytes``; never another exception.
    """
    try:
        return _parse(data, max_bytes, max_inflated_bytes)
    except IngestRejection:
        raise
    except Exception as exc:  # pydicom converts lazily: anything may raise on first access
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND, f"Not readable as DICOM: {describe_exception(exc)}."
        ) from exc


def _parse(data: bytes, max_bytes: int | None, max_inflated_bytes: int | None) -> ParsedInstance:
    if len(data) == 0:
        raise IngestRejection(Status.CANNOT_UNDERSTAND, "The file is empty (zero bytes).")
    if max_bytes is not None and len(data) > max_bytes:
        raise IngestRejection(
            Status.OUT_OF_RESOURCES,
            f"The instance is {len(data):,} bytes; the configured limit (ingest.max_instance_bytes) "
            f"is {max_bytes:,}.",
        )
    offset = _meta_length(data)
    declared = _declared_transfer_syntax(data, offset) if offset is not None else None
    if max_inflated_bytes is not None and offset and declared == DEFLATED:
        _check_inflated_size(data, offset, max_inflated_bytes)
    if offset is not None and declared == EXPLICIT_LITTLE_ENDIAN:
        try:
            scanned = _parse_scanned(data, offset)
        except Exception:  # a value pydicom cannot convert: the full parse names it
            scanned = None
        if scanned is not None:
            return scanned
    ds: Dataset | None = None
    pixel_length: int | None = None
    try:
        if offset is not None and declared in NATIVE_LITTLE_ENDIAN:
            ds, pixel_length = _read_header(data)
        if ds is None:
            ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError:
        ds = _read_forced(data)
    except Exception as exc:  # pydicom raises many kinds on malformed input
        raise IngestRejection(Status.CANNOT_UNDERSTAND, f"Not readable as DICOM: {_short(exc)}.") from exc

    SOPInstanceUID = _check_uid(ds, "SOPInstanceUID")
    SOPClassUID = _check_uid(ds, "SOPClassUID")
    StudyInstanceUID = _check_uid(ds, "StudyInstanceUID")
    SeriesInstanceUID = _check_uid(ds, "SeriesInstanceUID")

    meta = getattr(ds, "file_meta", None)
    body_offset = _meta_length(data)
    if body_offset is None or meta is None or "TransferSyntaxUID" not in meta:
        # A bare dataset (no preamble/meta): wrap it in a proper Part-10 file, keeping the dataset as read.
        data, body_offset, ds = _wrap_bare(data, ds)
        meta = ds.file_meta
        pixel_length = None
    TransferSyntaxUID = str(meta.TransferSyntaxUID)

    _check_image_integers(ds)
    _check_complete(ds, TransferSyntaxUID, pixel_length)
    parsed = ParsedInstance(
        data=data,
        body_offset=body_offset,
        dataset=ds,
        SOPInstanceUID=SOPInstanceUID,
        SOPClassUID=SOPClassUID,
        StudyInstanceUID=StudyInstanceUID,
        SeriesInstanceUID=SeriesInstanceUID,
        TransferSyntaxUID=TransferSyntaxUID,
    )
    parsed.features = header_features(ds)
    return parsed


def _parse_scanned(data: bytes, offset: int) -> ParsedInstance | None:
    """The common case without pydicom's ``Dataset`` (:mod:`radgate.ingest.header`): a native explicit VR
    little endian file whose structure and checked values are plainly fine. None for anything else,
    which the full parse then reads and judges (its rejections and their reasons stay the only ones)."""
    meta = scan(data[:offset], 132)  # the File Meta Information group, as elements like any other
    header = scan(data, offset)
    if meta is None or header is None or meta.pixel_length is not None:
        return None
    if meta.value("TransferSyntaxUID") != EXPLICIT_LITTLE_ENDIAN:
        return None
    uids = [header.value(keyword) for keyword in _INSTANCE_UIDS]
    if not all(isinstance(uid, str) and len(uid) <= 64 and UID_LOOSE_RE.match(uid) for uid in uids):
        return None
    sop_instance, sop_class, study, series = uids
    for keyword in IMAGE_INTEGERS:
        if keyword in header and not isinstance(header.value(keyword), int):
            return None
    if header.pixel_length is not None and header.pixel_length < _expected_pixel_bytes(header):
        return None  # truncated: the full parse says so
    ts = EXPLICIT_LITTLE_ENDIAN
    parsed = ParsedInstance(data, offset, header, sop_instance, sop_class, study, series, ts)
    parsed.features = header_features(header)
    return parsed


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _read_header(data: bytes) -> tuple[Dataset | None, int | None]:
    """Read a native little endian Part-10 file up to its Pixel Data; the dataset and the number of Pixel
    Data bytes present, or ``(None, None)`` where only a full read says everything (the caller does one).

    Reading the header alone spares parsing and copying the pixel data on the network path. The Pixel
    Data element's header is read from the bytes: its declared length, cut to the bytes that are there
    (which is what a full read would hold). Anything unusual -- another pixel data element, an undefined
    length, elements after the pixel data, a header cut short -- takes the full read, with its checks.
    """
    fp = io.BytesIO(data)
    ds = pydicom.dcmread(fp, force=False, stop_before_pixels=True)
    at = fp.tell()
    if at >= len(data):
        return ds, None  # no pixel data: the whole file was read
    implicit = bool(ds.original_encoding[0])
    if len(data) < at + 12 or struct.unpack_from("<HH", data, at) != PIXEL_DATA_TAG:
        return None, None
    if implicit:
        (length,), start = struct.unpack_from("<I", data, at + 4), at + 8
    elif data[at + 4 : at + 6] in LONG_VRS:
        (length,), start = struct.unpack_from("<I", data, at + 8), at + 12
    else:
        return None, None  # a short-length VR for Pixel Data: let the full read judge it
    if length == 0xFFFFFFFF or start + length < len(data):
        return None, None
    return ds, min(length, len(data) - start)


def _read_forced(data: bytes) -> Dataset:
    """Read a dataset without preamble; refuse input that merely happens not to crash the parser."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise IngestRejection(Status.CANNOT_UNDERSTAND, f"Not readable as DICOM: {_short(exc)}.") from exc
    if "SOPInstanceUID" not in ds and "SOPClassUID" not in ds:
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            "Not a DICOM file: no 'DICM' prefix and no SOP Class/Instance UID could be read.",
        )
    return ds


def _wrap_bare(data: bytes, ds: Dataset) -> tuple[bytes, int, Dataset]:
    """Give a bare dataset (no preamble or file meta) a Part-10 header, keeping its encoding."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if not ds.is_little_endian:
        ts = UID("1.2.840.10008.1.2.2")  # Explicit VR Big Endian (retired, still readable)
    elif ds.is_implicit_VR:
        ts = UID("1.2.840.10008.1.2")
    else:
        ts = ExplicitVRLittleEndian
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    buf = io.BytesIO()
    try:
        ds.save_as(buf, enforce_file_format=True)
    except Exception as exc:
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            f"A dataset without file meta could not be given one: {_short(exc)}.",
            _sop_uid(ds),
        ) from exc
    out = buf.getvalue()
    offset = _meta_length(out)
    if offset is None:
        raise IngestRejection(Status.CANNOT_UNDERSTAND, "The rewritten file has no file meta group length.")
    return out, offset, pydicom.dcmread(io.BytesIO(out))


def _int(ds: Header, keyword: str, default: int) -> int:
    try:
        return int(get_value(ds, keyword) or default)
    except (TypeError, ValueError):
        return default


def _check_complete(ds: Dataset, ts: str, pixel_length: int | None = None) -> None:
    """Detect truncation: for native (uncompressed) pixel data, the declared size must be present.

    pydicom reads a file cut inside its pixel data without complaint, so compare the length of Pixel Data
    with Rows x Columns x SamplesPerPixel x BitsAllocated x frames (PS3.5 8.1.1). Compressed pixel data
    is checked by decoding later, off the network path. ``pixel_length``: the Pixel Data bytes present,
    when the header was read without them (:func:`_read_header`).
    """
    if pixel_length is None:
        try:
            pixel = ds["PixelData"].value if "PixelData" in ds else None
        except Exception as exc:
            raise IngestRejection(
                Status.CANNOT_UNDERSTAND,
                f"The file is truncated or malformed after the header: {_short(exc)}.",
                _sop_uid(ds),
            ) from exc
        if pixel is None:
            return
        pixel_length = len(pixel)
    if UID(ts).is_compressed:
        return
    expected = _expected_pixel_bytes(ds)
    if pixel_length < expected:
        rows, cols, bits = _int(ds, "Rows", 0), _int(ds, "Columns", 0), _int(ds, "BitsAllocated", 0)
        frames = _int(ds, "NumberOfFrames", 1)
        raise IngestRejection(
            Status.CANNOT_UNDERSTAND,
            f"Pixel Data is truncated: {pixel_length:,} bytes present, {expected:,} expected from "
            f"Rows {rows} x Columns {cols} x {bits} bits x {frames} frame(s).",
            _sop_uid(ds),
        )


def _expected_pixel_bytes(ds: Header) -> int:
    """Native Pixel Data's size from Rows x Columns x SamplesPerPixel x BitsAllocated x frames (PS3.5
    8.1.1); 0 when the header does not say."""
    rows, cols, bits = _int(ds, "Rows", 0), _int(ds, "Columns", 0), _int(ds, "BitsAllocated", 0)
    if not (rows and cols and bits):
        return 0
    spp, frames = _int(ds, "SamplesPerPixel", 1), _int(ds, "NumberOfFrames", 1)
    expected = rows * cols * spp * frames * bits // 8
    if str(get_value(ds, "PhotometricInterpretation") or "") == "YBR_FULL_422":
        expected = expected * 2 // 3  # two samples per pixel after 4:2:2 subsampling (PS3.3 C.7.6.3.1.2)
    return expected


def header_text(ds: Header, keyword: str, limit: int) -> str | None:
    """An attribute as text for the index (multi-values joined by ``\\``), cut to ``limit``; None if empty
    or unreadable."""
    value = get_value(ds, keyword)
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit] or None


def _number(ds: Header, keyword: str) -> float | None:
    value = get_value(ds, keyword)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def header_features(ds: Header) -> dict[str, Any]:
    """The acquisition features kept per instance for subgroups and drift monitoring."""
    spacing = _number(ds, "PixelSpacing")
    if spacing is None or spacing <= 0:
        spacing = _number(ds, "ImagerPixelSpacing")
    if spacing is not None and spacing <= 0:
        spacing = None  # "0\0" is seen in the wild and means nothing
    frames = _number(ds, "NumberOfFrames")
    return {
        "Manufacturer": header_text(ds, "Manufacturer", 64),
        "ManufacturerModelName": header_text(ds, "ManufacturerModelName", 64),
        "SoftwareVersions": header_text(ds, "SoftwareVersions", 128),
        "StationName": header_text(ds, "StationName", 16),
        "InstitutionName": header_text(ds, "InstitutionName", 64),
        "Modality": header_text(ds, "Modality", 16),
        "BodyPartExamined": header_text(ds, "BodyPartExamined", 16),
        "ViewPosition": header_text(ds, "ViewPosition", 16),
        "PhotometricInterpretation": header_text(ds, "PhotometricInterpretation", 16),
        "BitsStored": _single_int(ds, "BitsStored"),
        "Rows": _single_int(ds, "Rows"),
        "Columns": _single_int(ds, "Columns"),
        "NumberOfFrames": int(frames) if frames is not None and abs(frames) < 2**31 else None,
        "PixelSpacing": spacing,
        "KVP": _number(ds, "KVP"),
        "Exposure": _number(ds, "Exposure"),
        "ConvolutionKernel": header_text(ds, "ConvolutionKernel", 64),
        "SliceThickness": _number(ds, "SliceThickness"),
        "PatientAge": _age(ds),  # years: AS value, else birth and study date
        "PatientSex": header_text(ds, "PatientSex", 4),
    }


def _single_int(ds: Header, keyword: str) -> int | None:
    """One integer value, else None (absent, multi-valued or unreadable: the feature is unknown)."""
    value = get_value(ds, keyword)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _age(ds: Header) -> float | None:
    try:
        return age_in_years(ds)
    except Exception:  # a malformed date or age string: unknown, not a reason to refuse the image
        return None
