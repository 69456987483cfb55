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

__all__ = ["DisplayImage", "resize_area", "to_display"]


@dataclass(frozen=True)
class DisplayImage:
    """Display values in [0, 1] (higher = brighter) and the VOI window that produced them."""

    pixels: np.ndarray  # float32, shape (Rows, Columns)
    window_center: float
    window_width: float
    voi_source: str  # "voi_lut_sequence" | "window" | "minmax"
    inverted: bool  # True for MONOCHROME1


def to_display(ds: Dataset, frame: int = 0) -> DisplayImage:
    """Apply Modality LUT, VOI and MONOCHROME1 inversion to ``ds`` and scale to [0, 1].

    Raises ``ValueError`` naming the attribute when the image is not single-sample grayscale.
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(
            f"PhotometricInterpretation {photometric!r} is not supported; "
            "expected MONOCHROME1 or MONOCHROME2."
        )
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[frame]
    modality = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)

    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        voi = np.asarray(apply_voi_lut(modality, ds, index=0, prefer_lut=True), dtype=np.float64)
        item = ds.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        lo, hi = 0.0, float(2**bits - 1)
        center, width = (lo + hi) / 2.0, hi - lo + 1
        source = "voi_lut_sequence"
        out = (voi - lo) / (hi - lo)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        center = float(_first(ds.WindowCenter))
        width = float(_first(ds.WindowWidth))
        if width < 1:
            raise ValueError(f"WindowWidth {width} is below 1 (PS3.3 C.11.2.1.2 requires >= 1).")
        # PS3.3 C.11.2.1.2.1 LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1].
        if width == 1:
            out = (modality > center - 0.5).astype(np.float64)
        else:
            out = np.clip((modality - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
        source = "window"
    else:
        lo, hi = float(modality.min()), float(modality.max())
        center, width = (lo + hi) / 2.0, max(hi - lo, 1.0)
        out = (modality - lo) / (hi - lo) if hi > lo else np.zeros_like(modality)
        source = "minmax"

    out = np.clip(out, 0.0, 1.0)
    inverted = photometric == "MONOCHROME1"
    if inverted:
        out = 1.0 - out
    return DisplayImage(out.astype(np.float32), center, width, source, inverted)


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


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix whose row i averages the input cells overlapping output bin i (by overlap)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _area_axis(img: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    n_in = img.shape[axis]
    if n_in == n_out:
        return img
    weights = _area_weights(n_in, n_out)
    return weights @ img if axis == 0 else img @ weights.T
