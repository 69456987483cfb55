"""WADO-RS rendered (PS3.18 10.4.1.1.3, ``window=CENTER,WIDTH,FUNCTION``): a stored image as an 8-bit PNG.

The display values come from :func:`radgate.imaging.to_display`, the one rendering pipeline that the model
input and the presentation states share (Modality LUT, VOI, MONOCHROME1 inversion). A ``window`` parameter
replaces the image's own VOI (its VOI LUT Sequence as well as its Window Center/Width), as PS3.18 says;
only the ``LINEAR`` function is supported (``SIGMOID`` and ``LINEAR_EXACT`` are refused with a reason).
A ``viewport=VW,VH`` parameter (PS3.18 Table 8.3.5-1) scales the rendered image to fit within VW x VH
keeping its aspect ratio, by area averaging (:func:`radgate.imaging.resize_area`), before it is encoded:
the review page asks for the size it displays, so a 2048² radiograph shown at 900 CSS pixels is not
rendered, compressed and sent at full size. The image is never enlarged (a viewport larger than the image
returns it at its own size; the client scales). Only the two-value form is supported; the six-value form
with a source region (``VW,VH,SX,SY,SW,SH``) is refused with a reason.
The PNG is written here (zlib, 8-bit greyscale) rather than through an image library.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from radgate.errors import Invalid
from radgate.imaging import resize_area, to_display
from radgate.imaging.decode import DEFAULT_MAX_DECODED_BYTES

__all__ = [
    "MAX_VIEWPORT",
    "Viewport",
    "Window",
    "encode_png",
    "fit_viewport",
    "header_window",
    "parse_viewport",
    "parse_window",
    "render_png",
    "rendered_pixels",
]

MAX_VIEWPORT = 65535  # PNG and DICOM Rows/Columns are at most 2**16 - 1


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"


def parse_window(text: str | None) -> Window | None:
    """``"CENTER,WIDTH,LINEAR"`` (PS3.18 Table 8.3.5-1) -> :class:`Window`; None when absent."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise Invalid(f"window {text!r} must be CENTER,WIDTH,FUNCTION (e.g. 40,400,LINEAR).")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise Invalid(f"window {text!r}: center and width must be numbers (e.g. 40,400,LINEAR).") from None
    function = parts[2].upper() if len(parts) == 3 else "LINEAR"
    if function != "LINEAR":
        raise Invalid(f"window function {parts[2]!r} is not supported; use LINEAR.")
    if not np.isfinite(center) or not np.isfinite(width) or width < 1:
        raise Invalid(f"window {text!r}: width must be at least 1 (PS3.3 C.11.2.1.2).")
    return Window(center, width, function)


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int


def parse_viewport(text: str | None) -> Viewport | None:
    """``"VW,VH"`` (PS3.18 Table 8.3.5-1, pixels) -> :class:`Viewport`; None when absent."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 6:
        raise Invalid(f"viewport {text!r}: a source region (VW,VH,SX,SY,SW,SH) is not supported; use VW,VH.")
    if len(parts) != 2:
        raise Invalid(f"viewport {text!r} must be WIDTH,HEIGHT in pixels (e.g. 1024,1024).")
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise Invalid(
            f"viewport {text!r}: width and height must be whole numbers (e.g. 1024,1024)."
        ) from None
    if not (1 <= width <= MAX_VIEWPORT and 1 <= height <= MAX_VIEWPORT):
        raise Invalid(f"viewport {text!r}: width and height must be between 1 and {MAX_VIEWPORT}.")
    return Viewport(width, height)


def fit_viewport(rows: int, columns: int, viewport: Viewport | None) -> tuple[int, int]:
    """(rows, columns) of an image of ``rows`` x ``columns`` scaled to fit within ``viewport``, keeping its
    aspect ratio and never enlarged; the image's own size when there is no viewport."""
    if viewport is None:
        return rows, columns
    scale = min(viewport.width / columns, viewport.height / rows, 1.0)
    if scale >= 1.0:
        return rows, columns
    out_rows = min(max(1, round(rows * scale)), viewport.height)
    out_cols = min(max(1, round(columns * scale)), viewport.width)
    return out_rows, out_cols


def rendered_pixels(
    ds: Dataset, window: Window | None = None, frame: int = 0, max_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> np.ndarray:
    """Display values in [0, 1] (float32) with ``window`` in place of the image's own VOI."""
    if window is not None:
        copy = Dataset()
        copy.update(ds)
        if hasattr(ds, "file_meta"):
            copy.file_meta = ds.file_meta
        if "VOILUTSequence" in copy:
            del copy.VOILUTSequence
        copy.WindowCenter = window.center
        copy.WindowWidth = window.width
        ds = copy
    return to_display(ds, frame, max_bytes=max_bytes).pixels


def header_window(ds: Dataset) -> tuple[float, float] | None:
    """The (center, width) :func:`radgate.imaging.to_display` uses, from the header alone; None when it
    depends on the pixels (no VOI LUT and no window: the min-max of the image) or the image is not grey.

    The review page needs the model's window before the image is fetched; decoding a 2048² image just for
    two numbers doubled its load time.
    """
    if str(ds.get("PhotometricInterpretation", "")).strip() not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        hi = float(2**bits - 1)
        return hi / 2.0, hi + 1
    if "WindowCenter" in ds and "WindowWidth" in ds:
        from radgate.imaging.display import _first  # the first pair is the default, as to_display reads it

        return float(_first(ds.WindowCenter)), float(_first(ds.WindowWidth))
    return None


def encode_png(gray8: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array (PNG spec: IHDR, one IDAT, IEND).

    Each row uses filter type 1 (Sub: the difference to the pixel on its left) and deflate with the RLE
    strategy at level 1: a 2048² radiograph encodes in about a third of the time of zlib's default strategy,
    and smaller than without the filter.
    """
    if gray8.ndim != 2 or gray8.dtype != np.uint8:
        raise ValueError(f"encode_png expects a 2-D uint8 array, got {gray8.dtype} {gray8.shape}.")
    h, w = gray8.shape
    raw = np.empty((h, w + 1), dtype=np.uint8)
    raw[:, 0] = 1  # Sub
    raw[:, 1] = gray8[:, 0]
    np.subtract(gray8[:, 1:], gray8[:, :-1], out=raw[:, 2:])  # modulo 256, as PNG's Sub filter
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = compressor.compress(raw.tobytes()) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def render_png(
    ds: Dataset,
    window: Window | None = None,
    frame: int = 0,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    viewport: Viewport | None = None,
) -> bytes:
    """The PNG of WADO-RS rendered: display values at ``window``, scaled to fit ``viewport``."""
    pixels = rendered_pixels(ds, window, frame, max_bytes)
    if pixels.ndim == 2:
        rows, cols = fit_viewport(pixels.shape[0], pixels.shape[1], viewport)
        if (rows, cols) != pixels.shape:
            pixels = np.clip(resize_area(pixels, rows, cols), 0.0, 1.0)
    return encode_png(np.rint(pixels * 255.0).astype(np.uint8))
