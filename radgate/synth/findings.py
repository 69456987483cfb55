"""Findings and look-alikes drawn into the phantom's path-length layers.

**Pneumothorax** (SNOMED CT 36118008): air in the pleural space lets the lung fall away from the chest wall.
On a radiograph this shows as the *visceral pleural line* — a thin white line parallel to the chest wall —
with no lung markings beyond it and a slightly more lucent (darker) rim of pleural air (Raoof et al., Chest
2012; O'Connor & Morgan, "Radiological review of pneumothorax", BMJ 2005;330:1493-7). An upright patient's
air collects at the apex first (apical pneumothorax); larger ones extend down the lateral chest wall.

Size follows the British Thoracic Society convention of the interpleural distance (MacDuff, Arnold &
Harvey, "Management of spontaneous pneumothorax: BTS pleural disease guideline 2010", Thorax 2010;65 Suppl
2:ii18-31, where 2 cm at the hilum separates small from large); here the maximal rim depth is drawn from
``SIZE_RANGES_MM`` (small < 15 mm, moderate 15-30 mm, large > 30 mm). How conspicuous the pleural line is
varies from case to case (``conspicuity``: how tangentially the beam meets the pleura, and how much lung
still overlaps the pleural air along the ray), so some are subtle.

**Distractors** that a model can mistake for a pleural line: a *skin fold* (an edge, not a line, which
continues beyond the lung and has markings on both sides) and a *medical line* (a central venous catheter,
a thin radio-opaque tube from the subclavian vein to the superior vena cava, with ECG electrodes on
portable films).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radgate.synth.anatomy import Anatomy, Canvas, Layers, LungGeometry

__all__ = [
    "DISTRACTORS",
    "LOCATIONS",
    "SIDES",
    "SIZE_RANGES_MM",
    "Pneumothorax",
    "add_distractor",
    "add_pneumothorax",
    "sample_pneumothorax",
]

SIDES = ("right", "left")
LOCATIONS = ("apical", "lateral")
SIZE_RANGES_MM: dict[str, tuple[float, float]] = {
    "small": (5.0, 15.0),
    "moderate": (15.0, 30.0),
    "large": (30.0, 55.0),
}
SIZE_WEIGHTS = {"small": 0.4, "moderate": 0.35, "large": 0.25}
DISTRACTORS = ("skin_fold", "line")
PLEURAL_LINE_MM = 14.0  # peak water-equivalent path of the visceral pleura seen tangentially
PLEURAL_LINE_SIGMA_MM = 0.7
COMPRESSED_BAND_MM = 15.0  # the collapsing lung's compressed rim
COMPRESSION = 0.6


@dataclass(frozen=True)
class Pneumothorax:
    """A pneumothorax of the patient's ``side`` lung, apical or lateral, with a rim ``depth_mm`` deep."""

    side: str
    location: str
    size: str
    depth_mm: float
    conspicuity: float = 1.0  # 0..1: strength of the pleural line, the lucent rim and the lung's compression

    def __post_init__(self) -> None:
        if not 0.0 < self.conspicuity <= 1.0:
            raise ValueError(f"Pneumothorax conspicuity {self.conspicuity} is outside (0, 1].")
        if self.side not in SIDES:
            raise ValueError(f"Pneumothorax side {self.side!r} is not one of {SIDES}.")
        if self.location not in LOCATIONS:
            raise ValueError(f"Pneumothorax location {self.location!r} is not one of {LOCATIONS}.")
        lo, hi = SIZE_RANGES_MM.get(self.size, (None, None))
        if lo is None or hi is None:
            raise ValueError(f"Pneumothorax size {self.size!r} is not one of {tuple(SIZE_RANGES_MM)}.")
        if not lo <= self.depth_mm <= hi:
            raise ValueError(f"Pneumothorax depth {self.depth_mm} mm is outside {self.size} ({lo}-{hi} mm).")


def sample_pneumothorax(rng: np.random.Generator) -> Pneumothorax:
    """Draw side, location, size (small 40 %, moderate 35 %, large 25 %) and conspicuity (0.15-1)."""
    side = SIDES[int(rng.integers(2))]
    location = LOCATIONS[int(rng.integers(2))]
    names = list(SIZE_WEIGHTS)
    size = names[int(rng.choice(len(names), p=list(SIZE_WEIGHTS.values())))]
    lo, hi = SIZE_RANGES_MM[size]
    depth = round(float(rng.uniform(lo, hi)), 1)
    return Pneumothorax(side, location, size, depth, round(float(rng.uniform(0.15, 1.0)), 2))


def add_pneumothorax(layers: Layers, canvas: Canvas, anatomy: Anatomy, ptx: Pneumothorax) -> np.ndarray:
    """Collapse part of one lung in ``layers`` (in place); return the pleural-air region (bool, full size).

    In polar coordinates about the lung's centre, the lung border is at ``R(theta)`` (found by marching rays
    through the aerated lung); the visceral pleura is drawn at ``R(theta) - depth(theta)``, where
    ``depth`` is ``ptx.depth_mm`` times a smooth window around the apical or lateral direction (wider for
    larger pneumothoraces). Beyond that line, vessels and lung parenchyma are removed.
    """
    geom = _lung_for(layers, ptx.side, anatomy)
    rs, cs = geom.box
    aerated = layers.lung[rs, cs] > 6.0 * anatomy.scale
    cr, cc = geom.center[0] - rs.start, geom.center[1] - cs.start
    h, w = aerated.shape
    n_theta = 360
    thetas = np.linspace(-np.pi, np.pi, n_theta, endpoint=False)
    r_max = float(np.hypot(h, w))
    steps = np.arange(0.0, r_max, 0.5)
    rr = cr + np.sin(thetas)[:, None] * steps[None, :]
    ccol = cc + np.cos(thetas)[:, None] * steps[None, :]
    inside = (rr >= 0) & (rr < h) & (ccol >= 0) & (ccol < w)
    hit = np.zeros(rr.shape, bool)
    hit[inside] = aerated[rr[inside].astype(np.int64), ccol[inside].astype(np.int64)]
    # Border: last sample still inside the lung before the first exit.
    exited = np.cumsum(~hit, axis=1) > 0
    border = steps[np.argmax(exited, axis=1) - 1].clip(min=0.0)
    border = ndimage.uniform_filter1d(border, 5, mode="wrap")

    # Direction of the pneumothorax in image coordinates (rows grow downwards).
    lateral = -1.0 if geom.side == "right" else 1.0  # right lung lies on the image's left
    if anatomy.view == "LL":
        lateral = -1.0  # anterior, towards the image's left
    if ptx.location == "apical":
        theta0 = np.arctan2(-1.0, 0.35 * lateral)
    else:
        theta0 = np.arctan2(-0.25, lateral)
    size_frac = (ptx.depth_mm - 5.0) / 50.0
    half_width = np.deg2rad(55.0 + 45.0 * size_frac)
    dtheta = np.angle(np.exp(1j * (thetas - theta0)))
    window = np.cos(np.clip(dtheta / half_width, -1.0, 1.0) * np.pi / 2.0) ** 0.6
    window = np.where(np.abs(dtheta) < half_width, window, 0.0)
    # The lung does not fall away from the mediastinum: no rim within 60 degrees of it, full from 95.
    medial = np.angle(np.exp(1j * (thetas - (0.0 if lateral < 0 else np.pi))))
    window *= np.clip((np.abs(medial) - np.deg2rad(60.0)) / np.deg2rad(35.0), 0.0, 1.0)
    depth_px = np.minimum(ptx.depth_mm / canvas.pitch * window, 0.6 * border)
    pleura = border - depth_px

    # Only pixels near or beyond the innermost pleural position need the polar look-up.
    dy = (np.arange(h, dtype=np.float32) - np.float32(cr))[:, None]
    dx = (np.arange(w, dtype=np.float32) - np.float32(cc))[None, :]
    r = np.sqrt(dy * dy + dx * dx)
    band = COMPRESSED_BAND_MM / canvas.pitch
    near = np.nonzero(aerated & (r > float(pleura[depth_px > 0.8].min(initial=r_max)) - band - 4.0))
    rn = r[near]
    theta = np.arctan2(dy[near[0], 0], dx[0, near[1]])
    pleura_px = np.interp(theta, thetas, pleura, period=2 * np.pi)
    depth_at = np.interp(theta, thetas, depth_px, period=2 * np.pi)
    active = depth_at > 0.8
    region = np.zeros((h, w), bool)
    region[near] = active & (rn > pleura_px)
    # Beyond the line: pleural air; lung that still overlaps along the ray keeps some markings when the
    # pneumothorax is inconspicuous.
    soft_region = ndimage.gaussian_filter(region.astype(np.float32), 0.7) * (0.4 + 0.6 * ptx.conspicuity)
    layers.vessels[rs, cs] *= 1.0 - soft_region
    layers.tissue[rs, cs] *= 1.0 - soft_region
    fade = np.clip(depth_at / 3.0, 0.0, 1.0)
    # The collapsing lung is compressed: denser in a band inside the visceral pleura.
    inside = np.clip(1.0 - (pleura_px - rn) / band, 0.0, 1.0) * (rn <= pleura_px) * active * fade
    tissue = layers.tissue[rs, cs]
    squeeze = COMPRESSION * ptx.conspicuity * (0.4 + size_frac)
    tissue[near] *= (1.0 + squeeze * inside).astype(np.float32)
    # Visceral pleural line: ~1-2 mm wide, seen tangentially over a long path (~10-15 mm of tissue).
    line_sigma = max(PLEURAL_LINE_SIGMA_MM / canvas.pitch, 0.5)
    line = np.exp(-0.5 * ((rn - pleura_px) / line_sigma) ** 2) * active * fade
    line *= layers.lung[rs, cs][near] > 2.0
    soft = layers.soft[rs, cs]
    soft[near] += (PLEURAL_LINE_MM * ptx.conspicuity * line).astype(np.float32)
    full = np.zeros(layers.soft.shape, bool)
    full[rs, cs] = region
    return full


def _lung_for(layers: Layers, side: str, anatomy: Anatomy) -> LungGeometry:
    for g in layers.lungs:
        if g.side == side:
            return g
    raise ValueError(f"No {side} lung in the phantom layers (view {anatomy.view}).")


def add_distractor(
    layers: Layers, canvas: Canvas, anatomy: Anatomy, kind: str, rng: np.random.Generator
) -> None:
    """Draw a ``skin_fold`` or a ``line`` (central venous catheter, plus ECG electrodes on AP views)."""
    if kind == "skin_fold":
        _skin_fold(layers, canvas, anatomy, rng)
    elif kind == "line":
        _central_line(layers, canvas, anatomy, rng)
    else:
        raise ValueError(f"Distractor {kind!r} is not one of {DISTRACTORS}.")


def _skin_fold(layers: Layers, cv: Canvas, a: Anatomy, rng: np.random.Generator) -> None:
    """A gently curved edge across the lateral lung, denser on its lateral side and fading laterally."""
    s = a.scale
    sgn = -1.0 if rng.random() < 0.5 else 1.0
    hw = a.thorax_half_width
    x, y = cv.x, cv.y
    x_c = sgn * float(rng.uniform(0.6, 0.85)) * hw
    y_c = float(rng.uniform(0.45, 0.75)) * a.lung_height
    bend = float(rng.uniform(-0.0015, 0.0015))
    tilt = float(rng.uniform(-0.25, 0.25))
    edge_x = x_c + tilt * (y - y_c) + bend * (y - y_c) ** 2
    d = sgn * (x[None, :] - edge_x[:, None])  # > 0 on the lateral side
    span = np.exp(-(((y - y_c) / (0.35 * a.lung_height)) ** 4))
    fold = np.where(d > 0, np.exp(-d / (18.0 * s)), 0.0) * span[:, None]
    # The fold's crest: a thin ridge along the edge, which is what makes folds look like a pleural line.
    crest = np.exp(-0.5 * (d / 0.9) ** 2) * span[:, None]
    amplitude = float(rng.uniform(6.0, 12.0))
    layers.soft += (amplitude * fold + 0.9 * amplitude * crest).astype(np.float32)


def _central_line(layers: Layers, cv: Canvas, a: Anatomy, rng: np.random.Generator) -> None:
    """A catheter from a subclavian/jugular entry to the cavo-atrial junction (quadratic Bezier)."""
    s = a.scale
    hw = a.thorax_half_width
    L = a.lung_height
    sgn = -1.0 if rng.random() < 0.7 else 1.0  # right-sided lines are more common
    p0 = np.array([sgn * float(rng.uniform(0.7, 1.0)) * hw, float(rng.uniform(-10.0, 15.0)) * s])
    p1 = np.array([sgn * 0.25 * hw, float(rng.uniform(0.05, 0.15)) * L])
    p2 = np.array([-0.06 * hw + float(rng.normal(0, 4.0)), float(rng.uniform(0.42, 0.55)) * L])
    t = np.linspace(0.0, 1.0, 600)[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    canvas_line = _splat(cv, pts, 1.6)
    if a.view == "AP":
        for _ in range(int(rng.integers(3, 6))):
            ex = float(rng.uniform(-1.1, 1.1)) * hw
            ey = float(rng.uniform(-0.1, 0.9)) * L
            ring = np.linspace(0, 2 * np.pi, 80)[:, None]
            disc = np.concatenate([np.cos(ring), np.sin(ring)], axis=1) * 5.0 + [ex, ey]
            canvas_line += _splat(cv, disc, 0.8)
            canvas_line += _splat(cv, np.array([[ex, ey]]), 6.0)
            lead_end = np.array([ex + float(rng.normal(0, 60)), -80.0])
            tt = np.linspace(0, 1, 300)[:, None]
            mid = np.array([(ex + lead_end[0]) / 2 + float(rng.normal(0, 40)), ey / 2])
            lead = (1 - tt) ** 2 * np.array([ex, ey]) + 2 * (1 - tt) * tt * mid + tt**2 * lead_end
            canvas_line += _splat(cv, lead, 0.6)
    layers.metal += ndimage.gaussian_filter(canvas_line, 0.6)


def _splat(cv: Canvas, pts: np.ndarray, weight: float) -> np.ndarray:
    rr = np.rint((pts[:, 1] + cv.apex_mm) / cv.pitch - 0.5).astype(np.int64)
    cc = np.rint((pts[:, 0] + cv.midline_mm) / cv.pitch - 0.5).astype(np.int64)
    ok = (rr >= 0) & (rr < cv.rows) & (cc >= 0) & (cc < cv.columns)
    idx = np.unique(rr[ok] * cv.columns + cc[ok])
    out = np.zeros(cv.rows * cv.columns, np.float32)
    out[idx] = weight
    return out.reshape(cv.rows, cv.columns)
