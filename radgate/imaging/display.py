"""Render a grayscale DICOM image the way a viewer presents it by default.

The pipeline is PS3.3 C.11 / PS3.4 N.2: stored values -> Modality LUT (Rescale Slope/Intercept or a Modality
LUT Sequence) -> VOI LUT (the first VOI LUT Sequence item, else the first Window Center/Width pair, else the
full range of the image) -> Presentation LUT: MONOCHROME1 is inverted so that the result always reads
"higher = brighter". pydicom's ``apply_modality_lut`` / ``apply_voi_lut`` implement the LUT arithmetic
(PS3.3 C.11.2.1.2 windowing, including the LINEAR function's ``-0.5`` / ``-1`` terms), so that the model
input, the presentation state and DCMTK's ``dcmj2pnm +Wm`` / ``+Wi 1`` agree.

Both training (``scripts/train_demo_model.py``) and inference (``radgate.inference``) use this module, so
the model sees at run time exactly what it saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from radgate.imaging.decode import DEFAULT_MAX_DECODED_BYTES, decode_pixels

__all__ = ["DisplayImage", "resize_area", "to_display"]


@dataclass(frozen=True)
class DisplayImage:
    """Display values in [0, 1] (higher = brighter) and the VOI window that produced them."""

    pixels: np.ndarray  # float32, shape (Rows, Columns)
    window_center: float
    window_width: float
    voi_source: str  # "voi_lut_sequence" | "window" | "minmax"
    inverted: bool  # True for MONOCHROME1


def to_display(ds: Dataset, frame: int = 0, *, max_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> DisplayImage:
    """Apply Modality LUT, VOI and MONOCHROME1 inversion to ``ds`` and scale to [0, 1].

    Raises ``ValueError`` naming the attribute when the image is not single-sample grayscale, and
    :class:`~radgate.imaging.decode.DecodeError` (a ``ValueError``) when its pixel data does not decode
    within ``max_bytes`` (:func:`~radgate.imaging.decode.decode_pixels`; an array already decoded on ``ds``
    is reused).
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(
            f"PhotometricInterpretation {photometric!r} is not supported; "
            "expected MONOCHROME1 or MONOCHROME2."
        )
    arr = decode_pixels(ds, max_bytes=max_bytes)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[frame]
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        identity = (
            "ModalityLUTSequence" not in ds
            and float(ds.get("RescaleSlope", 1) or 1) == 1.0
            and float(ds.get("RescaleIntercept", 0) or 0) == 0.0
        )
        # The VOI LUT is indexed by stored values when the Modality LUT is the identity: hand pydicom the
        # integers then (a float array makes it warn, though the result is the same).
        stored = arr if identity else np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
        voi = np.asarray(apply_voi_lut(stored, ds, index=0, prefer_lut=True), dtype=np.float64)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        lo, hi = 0.0, float(2**bits - 1)
        center, width = (lo + hi) / 2.0, hi - lo + 1
        source = "voi_lut_sequence"
        out = ((voi - lo) / (hi - lo)).astype(np.float32)
    else:
        # float32 with in-place operations: a 2048x2048 radiograph is 16 MB per temporary, and this runs
        # once per image on the inference path (float32 keeps 1e-7 relative precision, far below 1/255).
        modality = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
        if "WindowCenter" in ds and "WindowWidth" in ds:
            center = float(_first(ds.WindowCenter))
            width = float(_first(ds.WindowWidth))
            if width < 1:
                raise ValueError(f"WindowWidth {width} is below 1 (PS3.3 C.11.2.1.2 requires >= 1).")
            # PS3.3 C.11.2.1.2.1 LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1].
            if width == 1:
                out = (modality > center - 0.5).astype(np.float32)
            else:
                out = modality - np.float32(center - 0.5)
                out *= np.float32(1.0 / (width - 1))
                out += np.float32(0.5)
            source = "window"
        else:
            lo, hi = float(modality.min()), float(modality.max())
            center, width = (lo + hi) / 2.0, max(hi - lo, 1.0)
            if hi > lo:
                out = modality - np.float32(lo)
                out *= np.float32(1.0 / (hi - lo))
            else:
                out = np.zeros_like(modality)
            source = "minmax"

    np.clip(out, 0.0, 1.0, out=out)
    inverted = photometric == "MONOCHROME1"
    if inverted:
        np.subtract(np.float32(1.0), out, out=out)
    return DisplayImage(out, center, width, source, inverted)


def _first(value: Any) -> float:
    """WindowCenter/WindowWidth may be multi-valued; the first pair is the default (PS3.3 C.11.2.1.2)."""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__getitem__"):
        return float(value[0])
    return float(value)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D image by area averaging (anti-aliased down-sampling, bilinear when up-sampling).

    Written here rather than pulling in an image library: it is a few lines of numpy, deterministic across
    platforms (training and inference must match bit for bit), and fast enough at radiograph sizes.
    """
    if image.ndim != 2:
        raise ValueError(f"resize_area expects a 2-D image, got shape {image.shape}.")
    src_h, src_w = image.shape
    img = image.astype(np.float32, copy=False)
    if src_h >= height and src_w >= width:
        # Area averaging via cumulative sums over fractional bin edges.
        return _area_axis(_area_axis(img, height, axis=0), width, axis=1)
    from scipy.ndimage import zoom

    return zoom(img, (height / src_h, width / src_w), order=1).astype(np.float32)


def _area_axis(img: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Average along ``axis`` into ``n_out`` bins, each input cell weighted by its overlap with the bin.

    Applied as a band: each output row needs at most ``ceil(n_in / n_out) + 1`` input rows, so the work is
    O(n_in) per column instead of the O(n_in * n_out) of a dense weight matrix.
    """
    n_in = img.shape[axis]
    if n_in == n_out:
        return img
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo = np.floor(edges[:-1]).astype(np.int64)
    hi = np.minimum(np.ceil(edges[1:]).astype(np.int64), n_in)
    span = int((hi - lo).max())
    src = np.moveaxis(img, axis, 0)
    out = np.zeros((n_out, *src.shape[1:]), dtype=np.float32)
    bin_width = edges[1:] - edges[:-1]
    for k in range(span):
        idx = np.minimum(lo + k, n_in - 1)
        overlap = np.clip(np.minimum(edges[1:], idx + 1.0) - np.maximum(edges[:-1], idx), 0.0, None)
        overlap[lo + k >= hi] = 0.0
        weight = (overlap / bin_width).astype(np.float32)
        out += weight.reshape((-1,) + (1,) * (src.ndim - 1)) * src[idx]
    return np.moveaxis(out, 0, axis)
