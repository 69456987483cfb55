"""parse_part10 reads native little endian headers without their Pixel Data: same answers as a full read."""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from radgate.ingest.parse import IngestRejection, _read_header, header_features, parse_part10
from tests.dicomgen import make_dx, to_bytes


def _implicit(ds: pydicom.Dataset) -> bytes:
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("encoding", ["explicit", "implicit"])
def test_header_read_gives_the_full_reads_features_and_pixel_length(encoding: str) -> None:
    ds = make_dx(size=32, seed=3)
    data = to_bytes(ds) if encoding == "explicit" else _implicit(ds)
    header, pixel_length = _read_header(data)
    assert header is not None and "PixelData" not in header  # the fast path was taken
    full = pydicom.dcmread(io.BytesIO(data))
    assert pixel_length == len(full.PixelData) == 32 * 32 * 2
    parsed = parse_part10(data)
    assert parsed.features == header_features(full)
    assert parsed.SOPInstanceUID == full.SOPInstanceUID
    assert parsed.data == data and parsed.body_offset > 132


@pytest.mark.parametrize("encoding", ["explicit", "implicit"])
def test_pixel_data_cut_short_is_still_refused(encoding: str) -> None:
    ds = make_dx(size=32)
    data = to_bytes(ds) if encoding == "explicit" else _implicit(ds)
    with pytest.raises(IngestRejection, match="Pixel Data is truncated: 2,008 bytes present, 2,048"):
        parse_part10(data[:-40])


def test_a_declared_pixel_length_shorter_than_the_image_is_refused() -> None:
    data = bytearray(to_bytes(make_dx(size=32)))
    at = data.rfind(b"\xe0\x7f\x10\x00OW")
    struct.pack_into("<I", data, at + 8, 1000)  # Pixel Data claims 1,000 bytes; 2,048 follow
    with pytest.raises(IngestRejection, match="truncated"):
        parse_part10(bytes(data[: at + 12 + 1000]))


def test_elements_after_pixel_data_take_the_full_read_and_its_checks() -> None:
    ds = make_dx(size=32)
    good = to_bytes(ds)
    padded = good + b"\xfc\xff\xfc\xff" + b"OB\x00\x00" + struct.pack("<I", 4) + b"\x00" * 4
    assert _read_header(padded) == (None, None)  # the full read judges what follows the pixels
    assert parse_part10(padded).features == parse_part10(good).features
