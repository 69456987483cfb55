"""WADO-RS rendered (PS3.18 10.4.1.1.3, ``window=CENTER,WIDTH,FUNCTION``): a stored image as an 8-bit PNG.

The display values come from :func:`radgate.imaging.to_display`, the one rendering pipeline that the model
input and the presentation states share (Modality LUT, VOI, MONOCHROME1 inversion). A ``window`` parameter
replaces the image's own VOI (its VOI LUT Sequence as well as its Window Center/Width), as PS3.18 says;
only the ``LINEAR`` function is supported (``SIGMOID`` and ``LINEAR_EXACT`` are refused with a reason).
A ``viewport=VW,VH`` parameter (PS3.18 Table 8.3.5-1) scales the rendered image to fit within VW x VH
keeping its aspect ratio, by area averaging (:func:`radgate.imaging.resize_area`), before it is encoded:
the review page asks for the size it displays, so a 2048² radiograph shown at 900 CSS pixels is not
rendered, compressed and sent at full size. The image is never enlarged (a viewport larger than the image
returns it at its own size; the client scales). The six-value form ``VW,VH,SX,SY,SW,SH`` renders the
source rectangle of SW x SH image pixels from column SX, row SY (clipped to the image) and scales it the
same way; a negative SW or SH flips the rectangle horizontally or vertically (as Orthanc's DICOMweb plugin
reads PS3.18). The window and the image's own VOI apply to the whole image before the rectangle is cut,
so a crop is exactly the same crop of the full-size render.
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
    "SourceRegion",
    "Viewport",
    "Window",
    "encode_png",
    "fit_viewport",
    "header_window",
    "parse_viewport",
    "parse_window",
    "png_from_pixels",
    "render_png",
    "rendered_pixels",
    "source_region",
    "window_param",
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


def window_param(center: float, width: float) -> str:
    """The ``window`` parameter for (center, width) as the review page writes it (``%g``: six significant
    digits); the results worker pre-renders at the same string, so both name the same cached PNG."""
    return f"{center:g},{width:g},LINEAR"


@dataclass(frozen=True)
class SourceRegion:
    """The source rectangle of the six-value viewport (PS3.18 Table 8.3.5-1: ``sx,sy,sw,sh``), in image
    pixels: ``width`` columns from column ``x``, ``height`` rows from row ``y``; negative ``width`` or
    ``height``: flipped horizontally or vertically."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    region: SourceRegion | None = None

    def __str__(self) -> str:
        return f"{self.width},{self.height}" + ("" if self.region is None else f",{self.region}")


def _whole(text: str, part: str, what: str) -> int:
    try:
        value = float(part)
    except ValueError:
        raise Invalid(f"viewport {text!r}: {what} {part!r} is not a number.") from None
    if not np.isfinite(value) or abs(value) > MAX_VIEWPORT:
        raise Invalid(
            f"viewport {text!r}: {what} {part!r} must be between -{MAX_VIEWPORT} and {MAX_VIEWPORT}."
        )
    return int(round(value))


def parse_viewport(text: str | None) -> Viewport | None:
    """``"VW,VH"`` or ``"VW,VH,SX,SY,SW,SH"`` (PS3.18 Table 8.3.5-1, pixels) -> :class:`Viewport`; None when
    absent. VW and VH are whole numbers from 1 to 65535; SX and SY at least 0, SW and SH not 0 (negative:
    flipped); the source values may have decimals (rounded to the nearest pixel)."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 6):
        raise Invalid(
            f"viewport {text!r} must be WIDTH,HEIGHT in pixels (e.g. 1024,1024), or WIDTH,HEIGHT,SX,SY,SW,SH "
            "with a source rectangle (e.g. 512,512,0,0,1024,1024)."
        )
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise Invalid(
            f"viewport {text!r}: width and height must be whole numbers (e.g. 1024,1024)."
        ) from None
    if not (1 <= width <= MAX_VIEWPORT and 1 <= height <= MAX_VIEWPORT):
        raise Invalid(f"viewport {text!r}: width and height must be between 1 and {MAX_VIEWPORT}.")
    if len(parts) == 2:
        return Viewport(width, height)
    sx, sy = _whole(text, parts[2], "SX"), _whole(text, parts[3], "SY")
    sw, sh = _whole(text, parts[4], "SW"), _whole(text, parts[5], "SH")
    if sx < 0 or sy < 0:
        raise Invalid(f"viewport {text!r}: SX and SY (the source rectangle's top left) must be 0 or more.")
    if sw == 0 or sh == 0:
        raise Invalid(f"viewport {text!r}: SW and SH (the source rectangle's size) must not be 0.")
    return Viewport(width, height, SourceRegion(sx, sy, sw, sh))


def source_region(pixels: np.ndarray, region: SourceRegion, viewport: Viewport | None = None) -> np.ndarray:
    """The rectangle ``region`` of a 2-D image, clipped to it, flipped where its width or height is negative.

    Raises :class:`~radgate.errors.Invalid` (400) when the rectangle starts outside the image."""
    rows, cols = pixels.shape[:2]
    if region.x >= cols or region.y >= rows:
        raise Invalid(
            f"viewport {str(viewport or region)!r}: the source rectangle starts at column {region.x}, "
            f"row {region.y}, outside the image of {cols} x {rows} pixels; SX must be below {cols} and SY "
            f"below {rows}."
        )
    bottom, right = min(rows, region.y + abs(region.height)), min(cols, region.x + abs(region.width))
    out = pixels[region.y : bottom, region.x : right]
    if region.width < 0:
        out = out[:, ::-1]
    if region.height < 0:
        out = out[::-1]
    return out


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


def png_from_pixels(pixels: np.ndarray, viewport: Viewport | None = None) -> bytes:
    """The PNG of display values in [0, 1] (:func:`rendered_pixels`): the viewport's source rectangle when it
    has one, scaled to fit the viewport, rounded to 8 bits."""
    if pixels.ndim == 2:
        if viewport is not None and viewport.region is not None:
            pixels = source_region(pixels, viewport.region, viewport)
        rows, cols = fit_viewport(pixels.shape[0], pixels.shape[1], viewport)
        if (rows, cols) != pixels.shape:
            pixels = np.clip(resize_area(pixels, rows, cols), 0.0, 1.0)
    return encode_png(np.rint(pixels * 255.0).astype(np.uint8))


def render_png(
    ds: Dataset,
    window: Window | None = None,
    frame: int = 0,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    viewport: Viewport | None = None,
) -> bytes:
    """The PNG of WADO-RS rendered: display values at ``window``, the viewport's source rectangle, scaled to
    fit ``viewport``."""
    return png_from_pixels(rendered_pixels(ds, window, frame, max_bytes), viewport)
