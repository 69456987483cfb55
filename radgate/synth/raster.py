"""Raster operations the phantom needs many times per image, written for speed on one core.

``scipy.ndimage.zoom`` and large-kernel Gaussian filters dominate a naive phantom's run time, so smooth fields
are made at low resolution and brought to full size by bilinear interpolation written as two small matrix
products (``M_rows @ small @ M_cols.T``), which BLAS does in about a millisecond at 512 x 512.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = ["lowpass", "smooth_field", "upsample"]


@lru_cache(maxsize=64)
def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights, pixel centres aligned (``align_corners=False``)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += (1.0 - frac).astype(np.float32)
    m[np.arange(n_out), hi] += frac.astype(np.float32)
    m.setflags(write=False)
    return m


def upsample(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a small 2-D array to ``shape``."""
    rows = _interp_matrix(shape[0], small.shape[0])
    cols = _interp_matrix(shape[1], small.shape[1])
    return (rows @ small.astype(np.float32, copy=False) @ cols.T).astype(np.float32, copy=False)


def lowpass(img: np.ndarray, sigma_px: float, factor: int = 8) -> np.ndarray:
    """Gaussian low-pass for large kernels: block-average by ``factor``, blur, interpolate back."""
    h, w = img.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.pad(img, ((0, hp - h), (0, wp - w)), mode="edge") if (hp, wp) != (h, w) else img
    small = padded.reshape(hp // factor, factor, wp // factor, factor).mean(axis=(1, 3), dtype=np.float32)
    small = ndimage.gaussian_filter(small, max(sigma_px / factor, 0.5), mode="nearest")
    return upsample(small, (hp, wp))[:h, :w]


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-variance random field varying over about ``shape / cells`` pixels (lung texture)."""
    coarse = rng.standard_normal((cells, cells), dtype=np.float32)
    coarse = ndimage.gaussian_filter(coarse, 1.0)
    coarse /= max(float(coarse.std()), 1e-6)
    return upsample(coarse, shape)
