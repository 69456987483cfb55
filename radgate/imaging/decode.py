"""Decoding untrusted pixel data: bounded in memory, guarded against any failure of a decoder.

Every stage that turns stored Pixel Data into an array (the pixel checker, the tensor prewarmer, the engine)
goes through :func:`decode_pixels`, so a hostile or broken image fails the same way everywhere: a
:class:`DecodeError` with a reason a human understands, for that one instance, never a dead thread.

Two things make this necessary:

* decoders are native code. pylibjpeg-rle is Rust; on corrupt RLE segments it panics, which pyo3 surfaces
  as ``pyo3_runtime.PanicException``, a :class:`BaseException` that ``except Exception`` does not catch. The
  guard catches everything except :class:`KeyboardInterrupt` and :class:`SystemExit` (and
  :class:`GeneratorExit`), so a panic or a ``StopIteration`` leaking out of pydicom's fragment parser is a
  failure of one image;
* the header says how big the image is, and decoders trust it: an RLE image declaring 65535 x 65535 pixels
  makes the decoder allocate gigabytes before noticing its input is short. The decoded size is computed
  from Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated (PS3.3 C.7.6.3) *before*
  decoding and refused above ``max_bytes``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "FATAL_EXCEPTIONS",
    "DecodeError",
    "decode_pixels",
    "decoded_size",
    "describe_exception",
    "read_dataset",
]

#: What the guard lets through: the process is being interrupted or asked to stop.
FATAL_EXCEPTIONS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, GeneratorExit)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class _OneLine(logging.Filter):
    """pydicom logs each failing decoder plugin with its traceback; the reason is in the message and in our
    DecodeError, so the record keeps its message and loses the traceback (hostile input fills no log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


logging.getLogger("pydicom.pixels.decoders.base").addFilter(_OneLine())


#: The default of ``ingest.max_decoded_bytes``: 1 GiB, a 512 x 512 x 16-bit series of 2,000 frames.
DEFAULT_MAX_DECODED_BYTES = 1024**3


class DecodeError(ValueError):
    """Pixel data that cannot (or may not) be decoded; ``reason`` is one line, without patient data.

    A :class:`ValueError`, as :func:`radgate.imaging.to_display` documents for images it cannot render.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_exception(exc: BaseException, limit: int = 200) -> str:
    """One line for any exception: its text with lines joined, else its type name.

    ``str(exc)`` is empty for many exceptions (``StopIteration``, ``IndexError()``) and may span lines:
    pydicom lists each plugin's failure on a line of its own under "... all available plugins:", and those
    lines are the reason, so they are kept, joined by "; ".
    """
    name = type(exc).__name__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return name[:limit]
    text = (
        lines[0] if len(lines) == 1 or not lines[0].endswith(":") else lines[0] + " " + "; ".join(lines[1:])
    )
    return f"{name}: {text}"[:limit]


def _header_int(ds: Dataset, keyword: str, default: int | None) -> int:
    """An integer attribute of the image pixel module, or a DecodeError naming it."""
    try:
        value: Any = ds.get(keyword, None)
    except BaseException as exc:
        if isinstance(exc, FATAL_EXCEPTIONS):
            raise
        raise DecodeError(f"{keyword} is unreadable ({describe_exception(exc, 80)}).") from exc
    if value is None or value == "":
        if default is None:
            raise DecodeError(f"{keyword} is missing; the image size cannot be known.")
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        raise DecodeError(f"{keyword} has {len(value)} values where one is expected.")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{keyword} {str(value)[:40]!r} is not an integer.") from exc
    if number < 0:
        raise DecodeError(f"{keyword} {number} is negative.")
    return number


def decoded_size(ds: Dataset) -> int:
    """Bytes the decoded pixel array takes, from the header alone (PS3.3 C.7.6.3.1).

    pydicom returns one array element per sample, of ``ceil(BitsAllocated / 8)`` bytes (1-bit images are
    unpacked to one byte per pixel). Raises :class:`DecodeError` when the header does not say.
    """
    rows = _header_int(ds, "Rows", None)
    columns = _header_int(ds, "Columns", None)
    samples = _header_int(ds, "SamplesPerPixel", 1)
    frames = _header_int(ds, "NumberOfFrames", 1) or 1
    bits = _header_int(ds, "BitsAllocated", None)
    if rows == 0 or columns == 0:
        raise DecodeError(f"Rows x Columns is {rows} x {columns}: the image is empty.")
    if bits not in (1, 8, 16, 32, 64):
        raise DecodeError(f"BitsAllocated {bits} is not 1, 8, 16, 32 or 64 (PS3.5 8.1.1).")
    return rows * columns * max(samples, 1) * frames * max(bits // 8, 1)


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """``pydicom.dcmread(path)`` for a stored file, any failure a :class:`DecodeError` (never a panic)."""
    try:
        return pydicom.dcmread(path)
    except BaseException as exc:
        if isinstance(exc, FATAL_EXCEPTIONS):
            raise
        raise DecodeError(f"The stored file could not be read as DICOM: {describe_exception(exc)}") from exc


def decode_pixels(ds: Dataset, *, max_bytes: int) -> np.ndarray:
    """Decode ``ds``'s pixel data (``ds.pixel_array``, cached on ``ds``) or raise :class:`DecodeError`.

    The size declared by the header is checked against ``max_bytes`` before any decoder runs; any failure
    of a decoder, native panics included, becomes a :class:`DecodeError` naming the transfer syntax.
    """
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise DecodeError("The dataset has no pixel data.")
    size = decoded_size(ds)
    if size > max_bytes:
        raise DecodeError(
            f"The image would decode to {size:,} bytes (Rows x Columns x Samples x Frames x Bits "
            f"Allocated); the limit (ingest.max_decoded_bytes) is {max_bytes:,}."
        )
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "unknown")) if meta is not None else "unknown"
    try:
        arr = ds.pixel_array
    except BaseException as exc:  # decoders are native code: a panic is a BaseException
        if isinstance(exc, FATAL_EXCEPTIONS):
            raise
        arr = _fallback(ds, ts, exc)
    if not isinstance(arr, np.ndarray) or arr.size == 0:
        raise DecodeError("Pixel Data decoded to an empty array.")
    if arr.nbytes > max_bytes:  # a decoder that ignored the header
        raise DecodeError(f"Pixel Data decoded to {arr.nbytes:,} bytes, over the limit of {max_bytes:,}.")
    return arr


JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"  # JPEG Extended (Process 2 & 4): 8 or 12 bits, lossy


def _fallback(ds: Dataset, ts: str, exc: BaseException) -> np.ndarray:
    """JPEG Extended 12-bit that pydicom's plugins refuse: decode with GDCM itself when it is installed.

    pylibjpeg-libjpeg decodes conforming 12-bit JPEG Extended, but some CR systems write scans that it
    (strictly) refuses ("scan start must be zero and scan stop must be 63 for the sequential operating
    modes"); Pillow has no 12-bit JPEG, and pydicom's GDCM plugin declines 12-bit precision although GDCM's
    own reader (IJG 12-bit) decodes these files. So for this one transfer syntax radgate asks GDCM
    directly (``python-gdcm``, the optional extra ``radgate[jpeg12]``).
    """
    reason = f"Pixel Data could not be decoded (transfer syntax {ts}): {describe_exception(exc, 300)}"
    bits = ds.get("BitsStored")
    if ts != JPEG_EXTENDED or bits is None or int(bits) <= 8:
        raise DecodeError(reason) from exc
    try:
        import gdcm  # noqa: F401 - optional: python-gdcm
    except ImportError:
        raise DecodeError(
            f"{reason}. 12-bit JPEG Extended that libjpeg refuses decodes with GDCM: "
            "pip install 'radgate[jpeg12]' (python-gdcm)."
        ) from exc
    try:
        return _decode_with_gdcm(ds)
    except BaseException as gdcm_exc:
        if isinstance(gdcm_exc, FATAL_EXCEPTIONS):
            raise
        raise DecodeError(f"{reason}; GDCM: {describe_exception(gdcm_exc, 100)}") from gdcm_exc


def _decode_with_gdcm(ds: Dataset) -> np.ndarray:
    import io
    import tempfile

    import gdcm

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    fd, name = tempfile.mkstemp(suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        reader = gdcm.ImageReader()
        reader.SetFileName(name)
        if not reader.Read():
            raise ValueError("GDCM could not read the file")
        image = reader.GetImage()
        raw = image.GetBuffer()
    finally:
        os.unlink(name)
    if raw is None:
        raise ValueError("GDCM could not decode the pixel data")
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    dtype = np.dtype("<i2" if int(ds.get("PixelRepresentation", 0) or 0) == 1 else "<u2")
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    arr = np.frombuffer(data, dtype=dtype)
    shape: tuple[int, ...] = (frames, rows, columns, samples)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"GDCM returned {arr.size} values for {frames} x {rows} x {columns} x {samples}")
    arr = arr.reshape(shape).squeeze(axis=3) if samples == 1 else arr.reshape(shape)
    from pydicom.pixels.utils import get_image_pixel_ids

    out = (arr[0] if frames == 1 else arr).copy()
    # Cached as pydicom caches its own result, so that ``ds.pixel_array`` in the next stage reuses it.
    ds._pixel_array = out
    ds._pixel_id = get_image_pixel_ids(ds)
    return out
