"""Hostile instances that broke radgate once, rebuilt deterministically from pydicom's test files.

Each function names the defect it reproduces (issue 17, "Found by fuzzing").
"""

from __future__ import annotations

import io
import struct
import zlib

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid


def _fresh_uids(ds: Dataset) -> Dataset:
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def rle_panic() -> Dataset:
    """MR_small_RLE.dcm with one bit flipped in its RLE header: pylibjpeg-rle panics (a BaseException)."""
    ds = _fresh_uids(pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm")))
    data = bytearray(ds.PixelData)
    data[28] ^= 0x01  # third segment offset of frame 1: 0 -> 1, the Rust decoder indexes past its buffer
    ds.PixelData = bytes(data)
    return ds


def frames_beyond_fragments() -> Dataset:
    """An RLE image declaring more frames than it has fragments: pydicom raises a bare StopIteration."""
    ds = _fresh_uids(pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm")))
    ds.NumberOfFrames = 3
    return ds


def huge_rle() -> Dataset:
    """An RLE image declaring 65535 x 65535 x 16 bits (8 GiB decoded) over a few kilobytes of data."""
    ds = _fresh_uids(pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm")))
    ds.Rows = ds.Columns = 65535
    return ds


def deflate_bomb(inflated_bytes: int) -> bytes:
    """A Deflated Explicit VR Little Endian file whose dataset inflates to about ``inflated_bytes``.

    The dataset is a valid header followed by a private OB element of zeros, which deflates ~1000:1.
    """
    ds = _fresh_uids(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
    del ds.PixelData
    header = io.BytesIO()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    pydicom.dcmwrite(header, ds, enforce_file_format=True)
    raw = header.getvalue()
    meta_end = 144 + struct.unpack_from("<I", raw, 140)[0]
    body = raw[meta_end:]
    pad = inflated_bytes - len(body)
    element = struct.pack("<HH2sHI", 0x0011, 0x1010, b"OB", 0, pad)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(body + element)]
    chunk = bytes(1 << 20)
    for _ in range(pad // len(chunk)):
        out.append(comp.compress(chunk))
    out.append(comp.compress(bytes(pad % len(chunk))))
    out.append(comp.flush())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    meta = io.BytesIO()
    from pydicom.filewriter import write_file_meta_info

    meta.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    return meta.getvalue() + b"".join(out)


def with_value_length(data: bytes, tag: tuple[int, int], extra: bytes) -> bytes:
    """Part-10 Explicit VR LE ``data`` with ``extra`` bytes appended to one short-form element's value."""
    i = _find_element(data, tag)
    (length,) = struct.unpack_from("<H", data, i + 6)
    value_end = i + 8 + length
    return (
        data[: i + 6]
        + struct.pack("<H", length + len(extra))
        + data[i + 8 : value_end]
        + extra
        + data[value_end:]
    )


def with_vr(data: bytes, tag: tuple[int, int], vr: bytes) -> bytes:
    """Part-10 Explicit VR LE ``data`` with the two VR bytes of one element replaced."""
    i = _find_element(data, tag)
    return data[: i + 4] + vr + data[i + 6 :]


def _find_element(data: bytes, tag: tuple[int, int]) -> int:
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    return data.index(struct.pack("<HH", *tag), meta_end)
