"""WADO-RS retrieve (PS3.18 10.4): the stored instances of a study, series or single instance.

Answers ``multipart/related; type="application/dicom"`` with each instance's Part-10 file as stored (the
newest revision), so the RetrieveURLs that STOW-RS and QIDO-RS hand out resolve. Transcoding on request
(``transfer-syntax=`` in Accept) is not offered: instances go out in the syntax they arrived in, which
PS3.18 allows when the client accepts ``*`` or that syntax.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.db import Instance, Series
from radgate.db.queries import newest_instances
from radgate.storage import BlobStore

__all__ = [
    "FrameAnswer",
    "RetrieveError",
    "bulk_value",
    "instance_frames",
    "instance_metadata",
    "instance_paths",
    "multipart_body",
    "negotiate_frames",
    "octet_parts",
    "parse_accept",
    "parse_frame_numbers",
]


def instance_paths(
    s: Session, blobs: BlobStore, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[Path]:
    """Local files (cached copies, with an object store) of the newest revision of each matching instance,
    in series then instance order."""
    if series_uid is not None:
        series_uids = [series_uid]
    else:
        series_uids = list(
            s.scalars(
                select(Series.SeriesInstanceUID)
                .where(Series.StudyInstanceUID == study_uid)
                .order_by(Series.SeriesNumber, Series.SeriesInstanceUID)
            )
        )
    paths: list[Path] = []
    for uid in series_uids:
        query = newest_instances(uid).where(Instance.StudyInstanceUID == study_uid)
        if sop_uid is not None:
            query = query.where(Instance.SOPInstanceUID == sop_uid)
        query = query.order_by(Instance.InstanceNumber, Instance.SOPInstanceUID)
        paths += [blobs.local_path(row.path) for row in s.scalars(query)]
    return paths


def multipart_body(paths: list[Path], boundary: str | None = None) -> tuple[str, Iterator[bytes]]:
    """The Content-Type and a generator of the body: one ``application/dicom`` part per file."""
    boundary = boundary or uuid.uuid4().hex

    def parts() -> Iterator[bytes]:
        for path in paths:
            yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            yield path.read_bytes()
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return f'multipart/related; type="application/dicom"; boundary={boundary}', parts()


# --- metadata, frames and bulk data (PS3.18 10.4.1.1.2-10.4.1.1.5): what a viewer such as OHIF asks for ---

NATIVE = "1.2.840.10008.1.2.1"  # Explicit VR Little Endian: how frames go out unless asked otherwise
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}  # pixel bytes identical (little endian)
PIXEL_DATA = "7FE00010"
BULK_THRESHOLD = 1024  # binary values above this many bytes become BulkDataURIs in metadata
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


class RetrieveError(ValueError):
    """A retrieve radgate cannot answer as asked; ``status`` is the HTTP status (404, 406, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` with its ``type=`` and ``transfer-syntax=``."""

    media_type: str
    part_type: str | None
    transfer_syntax: str | None


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of ``header`` (PS3.18 8.7.3), quality factors ignored; empty header → ``*/*``."""
    ranges: list[MediaRange] = []
    for item in _split_outside_quotes(header or "*/*", ","):
        fields = _split_outside_quotes(item, ";")
        if not fields or not fields[0].strip():
            continue
        params: dict[str, str] = {}
        for field in fields[1:]:
            key, _, value = field.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(
            MediaRange(
                fields[0].strip().lower(),
                params.get("type", "").lower() or None,
                params.get("transfer-syntax"),
            )
        )
    return ranges or [MediaRange("*/*", None, None)]


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


@dataclass(frozen=True)
class FrameAnswer:
    """How frames go out: multipart or one single part, and in which transfer syntax."""

    multipart: bool
    transfer_syntax: str  # the syntax the bytes are in; NATIVE unless the client asked for the stored one


def negotiate_frames(accept: str | None, stored_syntax: str) -> FrameAnswer:
    """Pick the answer to an Accept header for frames or bulk data, or raise a 406 :class:`RetrieveError`.

    Accepted: ``multipart/related; type="application/octet-stream"`` with ``transfer-syntax=*``, the
    native syntax (the default when the parameter is absent, PS3.18 Table 8.7.3-5) or the syntax the
    instance is stored in; ``application/octet-stream`` as one single part; ``*/*``. Compressed frames are
    decoded to native unless the client names the stored compressed syntax.
    """
    for r in parse_accept(accept):
        ts = r.transfer_syntax or NATIVE
        if r.media_type in ("*/*", "multipart/*") and r.part_type in (
            None,
            "*/*",
            "application/octet-stream",
        ):
            return FrameAnswer(True, NATIVE)
        if r.media_type == "multipart/related" and r.part_type in (None, "application/octet-stream", "*/*"):
            if ts == "*" or ts in _UNCOMPRESSED:
                return FrameAnswer(True, NATIVE)
            if ts == stored_syntax:
                return FrameAnswer(True, stored_syntax)
        if r.media_type in ("application/octet-stream", "application/*") and (
            ts == "*" or ts in _UNCOMPRESSED
        ):
            return FrameAnswer(False, NATIVE)
    raise RetrieveError(
        406,
        f"Accept {accept!r} asks for a representation radgate does not produce; frames and bulk data go "
        f'out as multipart/related; type="application/octet-stream" with transfer-syntax={NATIVE} '
        f"(or *), or in the stored syntax {stored_syntax}.",
    )


def _stored_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", NATIVE)) if meta is not None else NATIVE


def frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _native_frames(ds: Dataset, max_bytes: int) -> list[bytes]:
    """Every frame as stored values in Explicit VR Little Endian (decoded when the file is compressed)."""
    from radgate.imaging.decode import DecodeError, decode_pixels

    if "PixelData" not in ds:
        raise RetrieveError(404, "The instance has no Pixel Data: it has no frames.")
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits == 1:
        raise RetrieveError(
            422, "Frames of 1-bit images (BitsAllocated 1) are not offered; retrieve the instance."
        )
    n = frame_count(ds)
    syntax = _stored_syntax(ds)
    if syntax in _UNCOMPRESSED:
        raw = bytes(ds.PixelData)
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * (bits // 8)
        if size <= 0 or len(raw) < size * n:
            raise RetrieveError(422, f"Pixel Data holds {len(raw)} bytes, fewer than {n} frames of {size}.")
        return [raw[i * size : (i + 1) * size] for i in range(n)]
    try:
        arr = decode_pixels(ds, max_bytes=max_bytes)
    except DecodeError as exc:
        raise RetrieveError(422, f"The stored frames cannot be decoded: {exc}") from exc
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    if n == 1:
        return [arr.tobytes()]
    return [arr[i].tobytes() for i in range(n)]


def _stored_frames(ds: Dataset) -> list[bytes]:
    from pydicom.encaps import generate_frames

    return list(generate_frames(ds.PixelData, number_of_frames=frame_count(ds)))


def instance_frames(
    ds: Dataset, numbers: list[int] | None, answer: FrameAnswer, *, max_bytes: int
) -> list[bytes]:
    """The frames ``numbers`` (1-based; all when None) of ``ds`` in ``answer.transfer_syntax``."""
    n = frame_count(ds)
    wanted = numbers if numbers is not None else list(range(1, n + 1))
    bad = [k for k in wanted if k < 1 or k > n]
    if bad:
        raise RetrieveError(
            404, f"Frame {bad[0]} does not exist: the instance has {n} frame(s), numbered from 1."
        )
    if answer.transfer_syntax == NATIVE:
        frames = _native_frames(ds, max_bytes)
    else:
        frames = _stored_frames(ds)
    return [frames[k - 1] for k in wanted]


def parse_frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise RetrieveError(
            400, f"Frame list {text!r} must be frame numbers separated by commas, e.g. 1,2."
        ) from None
    if not numbers:
        raise RetrieveError(400, "The frame list is empty; name at least one frame, e.g. frames/1.")
    return numbers


def octet_parts(chunks: list[bytes], transfer_syntax: str, boundary: str | None = None) -> tuple[str, bytes]:
    """``multipart/related; type="application/octet-stream"``: one part per chunk, its syntax named."""
    boundary = boundary or uuid.uuid4().hex
    out = bytearray()
    for chunk in chunks:
        head = f"--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax={transfer_syntax}"
        out += (head + "\r\n\r\n").encode()
        out += chunk
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/octet-stream"; boundary={boundary}', bytes(out)


def instance_url(base_url: str, ds: Dataset) -> str:
    series = f"{base_url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return f"{series}/instances/{ds.SOPInstanceUID}"


def _element_paths(ds: Dataset, prefix: str = "") -> dict[int, str]:
    """``id(element)`` → its bulk data path (``TAG`` or ``TAG/ITEM/TAG``) for every element under ``ds``."""
    paths: dict[int, str] = {}
    for elem in ds:
        tag = f"{int(elem.tag):08X}"
        path = f"{prefix}{tag}"
        paths[id(elem)] = path
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                paths.update(_element_paths(item, f"{path}/{i}/"))
    return paths


def instance_metadata(path: Path, base_url: str) -> dict[str, Any]:
    """PS3.18 F.2 DICOM JSON of one instance: binary values over 1 KiB and Pixel Data as BulkDataURIs.

    The file is read without its Pixel Data; the BulkDataURI of Pixel Data resolves to the frames in the
    native syntax (see :func:`negotiate_frames`); a decompressed colour image is described as it is sent
    (RGB, PlanarConfiguration 0).
    """
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    url = instance_url(base_url, ds)
    paths = _element_paths(ds)

    def bulk(elem: Any) -> str:
        return f"{url}/bulkdata/{paths.get(id(elem), f'{int(elem.tag):08X}')}"

    meta = ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk)
    syntax = _stored_syntax(ds)
    if "Rows" in ds:  # an image: its pixel data by reference
        bits = int(ds.get("BitsAllocated", 16) or 16)
        meta[PIXEL_DATA] = {"vr": "OB" if bits <= 8 else "OW", "BulkDataURI": f"{url}/bulkdata/{PIXEL_DATA}"}
        if syntax not in _UNCOMPRESSED and str(ds.get("PhotometricInterpretation", "")).startswith("YBR"):
            meta["00280004"] = {"vr": "CS", "Value": ["RGB"]}
            meta["00280006"] = {"vr": "US", "Value": [0]}
        meta["00083002"] = {"vr": "UI", "Value": [NATIVE]}  # Available Transfer Syntax UID
    return meta


def bulk_value(ds: Dataset, path: str, answer: FrameAnswer, *, max_bytes: int) -> list[bytes]:
    """The value behind a BulkDataURI path (``TAG`` or ``TAG/ITEM/TAG``); Pixel Data is every frame."""
    parts = [p for p in path.strip("/").split("/") if p]
    if [p.upper() for p in parts] == [PIXEL_DATA]:
        return instance_frames(ds, None, answer, max_bytes=max_bytes)
    node: Any = ds
    try:
        for i, part in enumerate(parts):
            if i % 2 == 0:
                elem = node[int(part, 16)]
                node = elem
            else:
                node = node.value[int(part)]
    except (KeyError, IndexError, ValueError):
        raise RetrieveError(404, f"No bulk data at {path!r} in this instance.") from None
    if i % 2 != 0 or getattr(node, "VR", None) not in _BINARY_VRS:
        raise RetrieveError(404, f"{path!r} does not name a binary element of this instance.")
    value = node.value
    return [bytes(value) if value is not None else b""]
