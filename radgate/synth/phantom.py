"""One phantom radiograph: anatomy + findings + detector + the profile's stored-value encoding.

The stored values follow the profile's header: for a ``window`` profile they are the processed image
(display brightness mapped linearly onto the profile's stored range, inverted for MONOCHROME1) and the
Window Center/Width pairs restore it; for a ``lut`` profile they are the unprocessed normalised log signal and
a per-image VOI LUT Sequence item (PS3.3 C.11.2.1.1) carries the gradation curve, as vendors that ship their
processing as a LUT do. Either way :func:`radgate.imaging.to_display` recovers the display image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from radgate.synth.anatomy import Anatomy, Canvas, render, sample_anatomy
from radgate.synth.detector import Z_SPAN, develop, tone_curve
from radgate.synth.findings import Pneumothorax, add_distractor, add_pneumothorax
from radgate.synth.profiles import Profile

__all__ = ["LUT_BITS", "ImageSpec", "RenderedImage", "render_image"]

LUT_BITS = 12  # VOI LUT output depth (LUT Descriptor third value)


@dataclass(frozen=True)
class ImageSpec:
    """What to draw: a patient of ``age``/``sex`` in ``view`` on ``profile``, with or without findings."""

    profile: Profile
    view: str  # PA | AP | LL
    age: int
    sex: str
    pneumothorax: Pneumothorax | None = None
    distractors: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedImage:
    """Stored pixel values (uint16, Rows x Columns) and the acquisition values the header reports."""

    pixels: np.ndarray
    voi_lut: np.ndarray | None  # LUT Data (uint16), first stored value mapped = 0, LUT_BITS output bits
    kvp: float
    exposure_mas: float
    tube_current_ma: int
    exposure_time_ms: int
    source_detector_mm: float
    exposure_index: float
    rotation_deg: float
    anatomy: Anatomy


def render_image(spec: ImageSpec, rng: np.random.Generator) -> RenderedImage:
    """Draw ``spec`` with the random stream ``rng`` (one stream per image keeps files order-independent).

    BLAS is held to one thread: the phantom's matrix products are small, and a multi-threaded BLAS on a
    busy machine spins for longer than the work takes (13 ms instead of 0.6 ms for one 512 x 512 upsample).
    """
    with threadpool_limits(1, user_api="blas"):
        return _render(spec, rng)


def _render(spec: ImageSpec, rng: np.random.Generator) -> RenderedImage:
    profile = spec.profile
    ch = profile.character
    anatomy = sample_anatomy(rng, spec.age, spec.sex, spec.view)
    field_h, field_w = profile.field_mm
    if spec.view == "LL":
        midline = field_w / 2.0 + float(rng.normal(0.0, 10.0))
    else:
        midline = field_w / 2.0 + anatomy.offset_x
    canvas = Canvas(profile.rows, profile.columns, profile.pitch_mm, midline, anatomy.apex_from_top)
    layers = render(anatomy, canvas, rng)
    if spec.pneumothorax is not None:
        add_pneumothorax(layers, canvas, anatomy, spec.pneumothorax)
    for kind in spec.distractors:
        add_distractor(layers, canvas, anatomy, kind, rng)

    portable = spec.view == "AP"
    if ch.shutter == "none":
        margins = (0.0, 0.0, 0.0, 0.0)
    else:
        tight = max(0.0, 1.0 - anatomy.scale) * 0.35
        top = float(rng.uniform(4.0, 30.0 if portable else 18.0))
        bottom = float(rng.uniform(4.0, 30.0)) + tight * field_h * 0.8
        side = float(rng.uniform(6.0, 30.0 if portable else 20.0)) + tight * field_w
        margins = (top, bottom, side + float(rng.uniform(0, 8)), side + float(rng.uniform(0, 8)))
    dose = 1.0 / ch.ap_noise_factor**2 if portable else 1.0
    dev = develop(
        layers,
        canvas,
        ch,
        rng,
        rotation_deg=anatomy.rotation_deg,
        grid=profile.grid != "NONE" and not portable,
        dose_factor=dose,
        collimation_mm=margins,
    )
    outside = ~dev.field
    top_value = 1.0 if ch.shutter == "white" else 0.0
    maxv = profile.max_stored
    if profile.voi == "window":
        p = tone_curve(dev.z, ch.contrast)
        if ch.shutter != "none":
            p[outside] = top_value
        lo, hi = profile.stored_range[0] * maxv, profile.stored_range[1] * maxv
        q = p if profile.photometric == "MONOCHROME2" else 1.0 - p
        pixels = np.rint(lo + q * (hi - lo))
        lut = None
    else:
        q = np.clip(0.5 + dev.z / (2.0 * Z_SPAN), 0.0, 1.0)
        if ch.shutter != "none":
            q[outside] = top_value
        if profile.photometric == "MONOCHROME1":
            q = 1.0 - q
        pixels = np.rint(q * maxv)
        lut = _voi_lut(profile, ch.contrast)
    pixels = np.clip(pixels, 0, maxv).astype(np.uint16)
    # Modality LUT: stored values are what the detector reports before Rescale Slope / Intercept.
    kvp = float(np.round(rng.uniform(*profile.kvp) - (15.0 if portable and not profile.portable else 0.0)))
    mas = float(np.round(rng.uniform(*profile.mas) * (0.8 if portable else 1.0) * anatomy.scale**2, 1))
    mas = max(mas, 0.5)
    ma = int(rng.choice([100, 160, 200])) if portable else int(rng.choice([250, 320, 400, 500]))
    time_ms = max(1, int(round(mas / ma * 1000.0)))
    sid = float(rng.uniform(1000.0, 1100.0)) if portable else 1800.0
    return RenderedImage(
        pixels=pixels,
        voi_lut=lut,
        kvp=kvp,
        exposure_mas=mas,
        tube_current_ma=ma,
        exposure_time_ms=time_ms,
        source_detector_mm=round(sid),
        exposure_index=round(dev.exposure_index, 1),
        rotation_deg=anatomy.rotation_deg,
        anatomy=anatomy,
    )


def _voi_lut(profile: Profile, contrast: float) -> np.ndarray:
    """LUT Data mapping every stored value to the gradation curve (inverted for MONOCHROME1 so that, after
    the Presentation LUT's inversion, brightness follows the curve)."""
    maxv = profile.max_stored
    v = np.arange(maxv + 1, dtype=np.float64)
    q = v / maxv
    if profile.photometric == "MONOCHROME1":
        q = 1.0 - q
    p = tone_curve((q - 0.5) * 2.0 * Z_SPAN, contrast).astype(np.float64)
    out = p if profile.photometric == "MONOCHROME2" else 1.0 - p
    return np.rint(out * (2**LUT_BITS - 1)).astype(np.uint16)
