"""Image formation: attenuation -> detector exposure with scatter and quantum noise -> vendor processing.

Beer-Lambert gives the primary transmission ``I = exp(-sum(mu_i * t_i))`` from the path lengths of
:mod:`radgate.synth.anatomy` (effective linear attenuation at a ~60 keV mean energy: water 0.020 /mm,
cortical bone 0.050 /mm, metal 0.5 /mm). Scatter adds a smooth fraction of the primary (scatter-to-primary
ratio, higher without a grid). Quantum noise is Poisson, approximated as Gaussian with variance proportional
to the signal, so it is relatively larger where less radiation arrives (mediastinum, abdomen). The detector
blurs (its MTF), then takes the logarithm, as CR readers and flat panels do.

Vendor processing then acts on the log signal, as in the classic pipelines (Prokop, Neitzel & Schaefer-Prokop,
"Principles of image processing in digital chest radiography", J Thorac Imaging 2003;18:148-64):
dynamic-range equalisation (subtract a fraction of a large-kernel low-pass), unsharp-mask detail
enhancement, then a sigmoid gradation curve fitted to the histogram of the collimated anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radgate.synth.anatomy import Canvas, Layers
from radgate.synth.profiles import ImageCharacter
from radgate.synth.raster import lowpass

__all__ = ["MU_BONE", "MU_METAL", "MU_WATER", "Developed", "develop", "tone_curve"]

MU_WATER = 0.020  # /mm
MU_BONE = 0.050  # /mm
MU_METAL = 0.5  # /mm
Z_SPAN = 1.25  # the normalised log signal z covers about [-Z_SPAN, Z_SPAN]
BRIGHTNESS = 0.16  # the gradation curve centre sits above the middle of the anatomy histogram


@dataclass(frozen=True)
class Developed:
    """Processed log signal ``z`` (anatomy roughly in [-1, 1]: lungs low, bone and abdomen high) and the
    collimated field (True inside). ``tone_curve(z, contrast)`` turns ``z`` into display brightness."""

    z: np.ndarray
    field: np.ndarray
    exposure_index: float  # IEC 62494-1 style exposure index for the header (relative, ~target 400)


def develop(
    layers: Layers,
    canvas: Canvas,
    character: ImageCharacter,
    rng: np.random.Generator,
    *,
    rotation_deg: float,
    grid: bool,
    dose_factor: float,
    collimation_mm: tuple[float, float, float, float],
) -> Developed:
    """Expose, detect and process ``layers``; ``collimation_mm`` = (top, bottom, left, right) margins."""
    att = layers.soft - layers.lung
    att += layers.tissue
    att += layers.vessels
    att *= MU_WATER
    att += MU_BONE * layers.bone
    if layers.metal.any():
        att += MU_METAL * layers.metal
    np.maximum(att, 0.0, out=att)
    if abs(rotation_deg) >= 1.0:  # below a degree the projection is indistinguishable; skip the resampling
        att = ndimage.rotate(att, rotation_deg, reshape=False, order=1, mode="nearest")

    body = att > 1.0
    np.negative(att, out=att)
    primary = np.exp(att, out=att)
    # Scatter arises in the patient: a smooth fraction of the primary behind the body (not the open beam).
    spr = character.scatter * (1.0 if grid else 2.0)
    signal = lowpass(primary * body, 60.0 / canvas.pitch)
    signal *= spr
    signal += primary

    # Quantum noise: sigma(log I) = ``noise`` at the reference transmission, which automatic exposure
    # control holds steady: the lung-field level (70th percentile of the transmission behind the body).
    body_sample = signal[::4, ::4][body[::4, ::4]]
    i_ref = float(np.percentile(body_sample, 70.0)) if body_sample.size else 0.1
    sigma_ref = character.noise / np.sqrt(max(dose_factor, 1e-3))
    k = np.float32(sigma_ref * sigma_ref * i_ref)
    noise = rng.standard_normal(signal.shape, dtype=np.float32)
    quantum = np.sqrt(signal * k)
    quantum *= noise
    signal += quantum

    rows, cols = signal.shape
    top, bottom, left, right = (int(round(m / canvas.pitch)) for m in collimation_mm)
    field = np.zeros(signal.shape, bool)
    field[top : rows - bottom, left : cols - right] = True
    unexposed = np.float32(0.002)
    for strip in (np.s_[:top, :], np.s_[rows - bottom :, :], np.s_[:, :left], np.s_[:, cols - right :]):
        signal[strip] = unexposed * (1.0 + 0.05 * noise[strip])
    if character.mtf_sigma_px > 0:
        signal = ndimage.gaussian_filter(signal, character.mtf_sigma_px, truncate=3.0)
    np.maximum(signal, 1e-4, out=signal)
    log = np.log(signal, out=signal)
    np.negative(log, out=log)

    # Dynamic-range equalisation and detail enhancement on the log signal.
    out = log.copy()
    if character.equalisation > 0:
        low = lowpass(log, character.equalisation_sigma_mm / canvas.pitch)
        low -= np.float32(low[top : rows - bottom, left : cols - right].mean())
        low *= np.float32(character.equalisation)
        out -= low
    if character.edge_gain > 0:
        size = max(3, int(round(3.0 * character.edge_sigma_mm / canvas.pitch)) | 1)
        detail = log - ndimage.uniform_filter(log, size)
        detail *= np.float32(character.edge_gain)
        out += detail

    # Histogram analysis inside the field, excluding direct exposure (air outside the body).
    sample = out[top : out.shape[0] - bottom : 3, left : out.shape[1] - right : 3]
    air = float(np.percentile(sample, 1.0))
    anatomy = sample[sample > air + 0.6]
    if anatomy.size < 100:
        anatomy = sample.ravel()
    lo, hi = (float(v) for v in np.percentile(anatomy, [2.0, 98.0]))
    mid = lo + (0.5 + BRIGHTNESS + character.brightness) * (hi - lo)
    z = out - np.float32(mid)
    z *= np.float32(2.0 / max(hi - lo, 1e-3))
    exposure_index = float(400.0 * dose_factor * np.exp(-(float(np.median(anatomy)) - 2.5)))
    return Developed(z=z, field=field, exposure_index=exposure_index)


def tone_curve(z: np.ndarray, contrast: float) -> np.ndarray:
    """Sigmoid gradation curve mapping ``z`` in [-Z_SPAN, Z_SPAN] onto display brightness [0, 1]."""
    c = contrast / 2.0
    lo = 1.0 / (1.0 + np.exp(c * Z_SPAN))
    hi = 1.0 / (1.0 + np.exp(-c * Z_SPAN))
    p = np.asarray(z, np.float32) * np.float32(-c)
    np.exp(p, out=p)
    p += np.float32(1.0)
    np.reciprocal(p, out=p)
    p -= np.float32(lo)
    p *= np.float32(1.0 / (hi - lo))
    return np.clip(p, 0.0, 1.0, out=p)
