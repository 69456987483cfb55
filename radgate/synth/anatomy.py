"""Phantom chest anatomy as projected path lengths: soft tissue, lung, bone and vessels, in millimetres.

The phantom is a projection model, not a voxel model: each structure contributes the length of the ray that
crosses it, computed in closed form on the detector grid. An ellipse-section torso gives the soft-tissue path
``T = D * sqrt(1 - (x/w)^2)``; a lung whose wall has radius of curvature ``R`` gives an air path that grows as
``sqrt(2 R d)`` with the distance ``d`` inside its border (a ray tangent to a curved surface), capped by the
lung's antero-posterior depth, which is why lung edges look sharp on a radiograph. Ribs and clavicles are
hollow tubes (cortex brighter than marrow); pulmonary vessels are a random binary tree from each hilum whose
calibre shrinks with every generation, so markings fade towards the periphery and stop short of the pleura.

Geometry follows the usual proportions of an adult PA chest radiograph (cardiothoracic ratio ~0.45, right
hemidiaphragm ~1.5-2 cm higher than the left, ten posterior ribs above the diaphragm in full inspiration); an
AP portable projection magnifies the heart, raises the diaphragm (shallower inspiration) and projects the
scapulae over the lungs (Raoof et al., "Interpretation of plain chest roentgenogram", Chest 2012;141:545-58).

Coordinates: ``x`` in mm from the body midline, positive towards the image's right (the patient's left on a
frontal view, PS3.3 C.7.6.1.1.1 Patient Orientation ``L\\F``); ``y`` in mm below the lung apex. A lateral view
uses ``x`` towards the patient's posterior (``P\\F``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from radgate.synth.raster import smooth_field

__all__ = ["Anatomy", "Canvas", "Layers", "LungGeometry", "render", "sample_anatomy"]

LUNG_TISSUE_FRACTION = 0.22  # water-equivalent fraction of aerated lung (density ~0.22 g/cm3)
VESSEL_GAIN = 5.0  # vessels plus their interstitial sheath, as seen along the ray


@dataclass(frozen=True)
class Canvas:
    """The detector grid: ``rows`` x ``columns`` pixels of ``pitch`` mm; the patient placed on it."""

    rows: int
    columns: int
    pitch: float
    midline_mm: float  # x of the body midline, from the left edge of the image
    apex_mm: float  # y of the lung apex, from the top edge of the image

    @property
    def x(self) -> np.ndarray:
        return ((np.arange(self.columns, dtype=np.float32) + 0.5) * self.pitch - self.midline_mm).astype(
            np.float32
        )

    @property
    def y(self) -> np.ndarray:
        return ((np.arange(self.rows, dtype=np.float32) + 0.5) * self.pitch - self.apex_mm).astype(np.float32)

    def col(self, x_mm: float) -> float:
        return (x_mm + self.midline_mm) / self.pitch - 0.5

    def row(self, y_mm: float) -> float:
        return (y_mm + self.apex_mm) / self.pitch - 0.5


@dataclass(frozen=True)
class Anatomy:
    """The sampled proportions of one phantom patient (mm unless stated)."""

    view: str  # PA | AP | LL
    scale: float  # 1.0 = average adult
    female: bool
    breast_mm: float  # peak soft-tissue thickness of each breast, 0 for none
    thorax_half_width: float  # inner rib cage at its widest
    lung_height: float  # apex to the top of the right hemidiaphragm
    left_dome_drop: float  # left hemidiaphragm lower than the right by this much
    ctr: float  # cardiothoracic ratio
    heart_left_fraction: float  # share of the cardiac width left of the midline
    body_depth: float  # antero-posterior diameter of the chest
    apex_from_top: float  # lung apex below the top of the field
    offset_x: float  # midline offset from the field centre
    rotation_deg: float
    clavicle_rise: float  # AP lordotic projection raises the clavicles
    scapula_overlap: float  # 0 (PA: scapulae rotated out) .. 1 (AP: over the upper lungs)


@dataclass(frozen=True)
class LungGeometry:
    """One lung's place on the canvas: its side, a central point (row, col) and its bounding box."""

    side: str  # "right" | "left" (the patient's)
    center: tuple[float, float]
    box: tuple[slice, slice]


@dataclass
class Layers:
    """Projected path lengths (mm) on the canvas, before the detector.

    ``soft``: soft tissue (water-equivalent) including the mediastinum, heart and breasts; ``lung``: path
    through aerated lung (to be subtracted from ``soft``); ``tissue``: the water-equivalent part of that lung
    path (parenchyma); ``vessels``: pulmonary vessels; ``bone``: cortical-bone-equivalent path; ``metal``:
    radio-opaque foreign material (lines, electrodes).
    """

    soft: np.ndarray
    lung: np.ndarray
    tissue: np.ndarray
    vessels: np.ndarray
    bone: np.ndarray
    metal: np.ndarray
    lungs: list[LungGeometry] = field(default_factory=list)


def sample_anatomy(rng: np.random.Generator, age: int, sex: str, view: str) -> Anatomy:
    """Draw the proportions of a patient of ``age`` years and ``sex`` (F/M/O) seen in ``view`` (PA/AP/LL)."""
    if view not in ("PA", "AP", "LL"):
        raise ValueError(f"view {view!r} is not one of PA, AP, LL.")
    if age < 0:
        raise ValueError(f"age {age} is negative.")
    growth = 0.46 + 0.54 * min(age, 18) / 18.0
    female = sex == "F"
    scale = growth * (0.94 if female else 1.0) * float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.14))
    ap = view == "AP"
    breast = float(rng.uniform(15.0, 45.0)) if female and age >= 15 else 0.0
    ctr = float(rng.normal(0.44, 0.035)) + (0.07 if ap else 0.0) + (0.05 if age < 6 else 0.0)
    return Anatomy(
        view=view,
        scale=scale,
        female=female,
        breast_mm=breast,
        thorax_half_width=142.0 * scale * float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
        lung_height=238.0 * scale * float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)) * (0.88 if ap else 1.0),
        left_dome_drop=float(rng.uniform(8.0, 22.0)) * scale,
        ctr=float(np.clip(ctr, 0.36, 0.66)),
        heart_left_fraction=float(rng.uniform(0.6, 0.72)),
        body_depth=215.0 * scale * float(np.clip(rng.normal(1.0, 0.07), 0.82, 1.25)),
        apex_from_top=float(rng.uniform(25.0, 60.0) if ap else rng.uniform(45.0, 75.0)),
        offset_x=float(rng.normal(0.0, 18.0 if ap else 8.0)),
        rotation_deg=float(rng.normal(0.0, 3.5 if ap else 1.0)),
        clavicle_rise=float(rng.uniform(10.0, 30.0)) if ap else 0.0,
        scapula_overlap=float(rng.uniform(0.6, 1.0)) if ap else float(rng.uniform(0.0, 0.25)),
    )


def render(anatomy: Anatomy, canvas: Canvas, rng: np.random.Generator) -> Layers:
    """Project ``anatomy`` onto ``canvas``: frontal (PA/AP) or lateral."""
    if anatomy.view == "LL":
        return _render_lateral(anatomy, canvas, rng)
    return _render_frontal(anatomy, canvas, rng)


# ---------------------------------------------------------------------------------------------------------
# Frontal projection
# ---------------------------------------------------------------------------------------------------------


def _render_frontal(a: Anatomy, cv: Canvas, rng: np.random.Generator) -> Layers:
    x, y = cv.x, cv.y
    shape = (cv.rows, cv.columns)
    s = a.scale
    L = a.lung_height
    hw = a.thorax_half_width

    soft = _torso(a, x, y)
    lung = np.zeros(shape, np.float32)
    bone = np.zeros(shape, np.float32)
    metal = np.zeros(shape, np.float32)

    geoms: list[LungGeometry] = []
    for side in ("right", "left"):
        t_lung, geom = _lung(a, cv, side)
        geoms.append(geom)
        lung[geom.box] += t_lung
    # Heart, aortic knob and mediastinum displace the lung (the retrocardiac lung keeps a little air).
    hbox, heart = _heart_mask(a, cv)
    lung[hbox] *= 1.0 - 0.72 * heart
    kbox = _box(cv, 30.0 * s - 20.0 * s, 30.0 * s + 20.0 * s, 0.27 * L - 20.0 * s, 0.27 * L + 20.0 * s)
    lung[kbox] *= 1.0 - _disc(cv.x[kbox[1]], cv.y[kbox[0]], 30.0 * s, 0.27 * L, 17.0 * s, 4.0)
    # Trachea and main bronchi: an air column from the neck to the carina.
    soft -= _trachea(a, x, y)

    texture = smooth_field(rng, shape, cells=24) + 0.6 * smooth_field(rng, shape, cells=64)
    tissue = lung * (LUNG_TISSUE_FRACTION * (1.0 + 0.18 * texture))

    # Breasts over the lower zones; the gastric bubble under the left hemidiaphragm.
    if a.breast_mm > 0:
        for sgn in (-1.0, 1.0):
            _paint(soft, cv, _breast, sgn * 0.62 * hw, 0.95 * L, 0.55 * hw, 0.3 * L, a.breast_mm)
    _paint(soft, cv, _dome, 0.45 * hw, L + a.left_dome_drop + 30.0 * s, 32.0 * s, 20.0 * s, -35.0 * s)

    vessels = _vessel_tree(a, cv, geoms, lung, rng)
    bands: list[tuple[np.ndarray, np.ndarray]] = []
    _ribs(a, cv, bands)
    _clavicles(a, cv, bands)
    if bands:
        idx = np.concatenate([b[0] for b in bands])
        w = np.concatenate([b[1] for b in bands])
        bone += np.bincount(idx, weights=w, minlength=cv.rows * cv.columns).reshape(shape).astype(np.float32)
    bone += _spine(a, x, y)
    _scapulae(a, cv, bone)
    for sgn in (-1.0, 1.0):  # humeral heads at the upper corners
        _paint(bone, cv, _ball, sgn * 1.42 * hw, -32.0 * s, 27.0 * s, 27.0 * s, 0.9)
    return Layers(soft=soft, lung=lung, tissue=tissue, vessels=vessels, bone=bone, metal=metal, lungs=geoms)


def _torso(a: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Soft-tissue path through neck, shoulders, chest wall, abdomen and upper arms.

    The skin outline follows the rib cage 2-3 cm outside it, rises through the axillae to the shoulders and
    narrows to the neck; each row's cross-section is an ellipse of the chest's antero-posterior depth.
    """
    s = a.scale
    hw = a.thorax_half_width
    L = a.lung_height
    yy = y
    # Rib cage outline (as the lung's lateral border) plus the chest wall.
    t = np.clip(yy / (0.78 * L), 0.0, 1.0)
    cage = hw * (1.0 - 0.5 * (1.0 - t) ** 2) + 26.0 * s
    below = np.clip((yy - 0.95 * L) / (0.5 * L), 0.0, None)
    cage = cage - 0.12 * hw * below**1.3
    # Shoulders: from the neck (52 mm) up at y = -70 mm to the acromion width at y ~ -10 mm.
    shoulder = 1.4 * hw
    neck = 52.0 * s
    ts = np.clip((yy + 75.0 * s) / (60.0 * s), 0.0, 1.0)
    top = neck + (shoulder - neck) * np.sin(ts * np.pi / 2.0) ** 1.4
    blend = np.clip((yy - 5.0 * s) / (0.6 * L), 0.0, 1.0)
    width = np.where(
        yy < 5.0 * s, top, np.maximum(cage, shoulder + (cage - shoulder) * (3 * blend**2 - 2 * blend**3))
    )
    depth_t = np.clip((yy + 40.0 * s) / (60.0 * s), 0.0, 1.0)
    depth = (a.body_depth * (0.5 + 0.5 * depth_t)).astype(np.float32)
    u = x[None, :] * (1.0 / width.astype(np.float32))[:, None]
    v = 1.0 - u * u
    np.maximum(v, 0.0, out=v)
    # (1 - u^2)^0.275: a flattened ellipse (chest wall fuller than an ellipse near the skin).
    t_body = np.power(v, np.float32(0.275), out=v)
    t_body *= depth[:, None]
    # Upper arms beside the chest, fading out towards the elbows.
    for sgn in (-1.0, 1.0):
        ax = sgn * (shoulder + 25.0 * s)
        r = 42.0 * s
        arm = 2.0 * np.sqrt(np.clip(r * r - (x - ax) ** 2, 0.0, None))
        cols = np.nonzero(arm > 0)[0]
        if cols.size == 0:
            continue
        span = np.clip((yy + 30.0 * s) / (25.0 * s), 0.0, 1.0) * np.clip(
            (0.75 * L - yy) / (0.3 * L), 0.0, 1.0
        )
        sub = t_body[:, cols[0] : cols[-1] + 1]
        np.maximum(sub, span[:, None] * (0.9 * arm[cols[0] : cols[-1] + 1])[None, :], out=sub)
    return t_body.astype(np.float32, copy=False)


def _lung(a: Anatomy, cv: Canvas, side: str) -> tuple[np.ndarray, LungGeometry]:
    """Air path through one lung inside its bounding box, and the lung's geometry.

    The lung is the intersection of four smooth constraints, each roughly a distance in mm (positive inside):
    below the apical parabola, medial to the rib cage, lateral to the mediastinum, above the hemidiaphragm.
    """
    s = a.scale
    sgn = -1.0 if side == "right" else 1.0
    hw = a.thorax_half_width
    L = a.lung_height + (a.left_dome_drop if side == "left" else 0.0)
    dome_u = 0.5 * hw
    costo_extra = 0.13 * a.lung_height  # costophrenic recess below the dome top
    # Bounding box in mm -> pixels.
    u_max = hw + 4.0
    y_max = L + costo_extra + 6.0
    c0, c1 = sorted((cv.col(sgn * 6.0 * s), cv.col(sgn * u_max)))
    r0, r1 = cv.row(-8.0), cv.row(y_max)
    rs = slice(max(0, int(np.floor(r0))), min(cv.rows, int(np.ceil(r1)) + 1))
    cs = slice(max(0, int(np.floor(c0))), min(cv.columns, int(np.ceil(c1)) + 1))
    yy = cv.y[rs].astype(np.float32)
    u = (sgn * cv.x[cs]).astype(np.float32)

    t = np.clip(yy / (0.78 * a.lung_height), 0.0, 1.0)
    u_lat = hw * (1.0 - 0.56 * (1.0 - t) ** 2)
    u_lat = u_lat - 0.04 * hw * np.clip((yy - 0.8 * L) / (0.2 * L), 0.0, 1.0)
    if side == "right":
        med_top = 24.0 * s
        heart_u = (1.0 - a.heart_left_fraction) * a.ctr * 2.0 * (hw + 10.0 * s)
        bulge = np.exp(-(((yy - 0.76 * L) / (0.17 * L)) ** 2))
        svc = 9.0 * s * np.clip((yy - 0.1 * L) / (0.3 * L), 0.0, 1.0)
        u_med = med_top + svc + (heart_u - med_top - svc) * bulge
    else:
        knob = 10.0 * s * np.exp(-(((yy - 0.27 * L) / (0.06 * L)) ** 2))
        trunk = 6.0 * s * np.exp(-(((yy - 0.42 * L) / (0.05 * L)) ** 2))
        u_med = 30.0 * s + knob + trunk
    apex_u = 0.52 * hw
    k_apex = 1.0 / (0.8 * hw)
    c_top = yy[:, None] - k_apex * (u[None, :] - apex_u) ** 2
    c_lat = 0.9 * (u_lat[:, None] - u[None, :])
    c_med = u[None, :] - u_med[:, None]
    dome_c = (L + costo_extra - L) / (hw - dome_u) ** 2 * 1.0
    y_dia = L + dome_c * (u - dome_u) ** 2
    y_dia = np.where(u < dome_u, L + 0.25 * dome_c * (u - dome_u) ** 2, y_dia)
    c_dia = y_dia[None, :] - yy[:, None]
    d = np.minimum(np.minimum(c_top, c_lat), np.minimum(c_med, c_dia))
    # Air path: sqrt(2 R d) near the wall (R ~ radius of the chest wall), capped by the lung's AP depth,
    # which grows from the apex to the bases.
    depth_cap = (a.body_depth - 50.0 * s) * (0.55 + 0.45 * np.clip(yy / (0.6 * L), 0.0, 1.0))
    t_air = np.sqrt(np.clip(2.0 * 400.0 * s * d, 0.0, None))
    t_air = np.minimum(t_air, depth_cap[:, None]).astype(np.float32)
    center_row = cv.row(0.55 * L)
    center_col = cv.col(sgn * 0.55 * hw)
    return t_air, LungGeometry(side=side, center=(center_row, center_col), box=(rs, cs))


def _heart_mask(a: Anatomy, cv: Canvas) -> tuple[tuple[slice, slice], np.ndarray]:
    """Fraction of the lung path that the heart displaces, inside its bounding box: an ellipsoid (apex
    down and to the left) whose projected thickness ``sqrt(1 - r^2)`` makes the cardiac border sharp and
    its centre densest."""
    s = a.scale
    hw = a.thorax_half_width
    width = a.ctr * 2.0 * (hw + 10.0 * s)
    left = a.heart_left_fraction * width
    cx = left - width / 2.0
    cy = 0.8 * a.lung_height
    ax_a, ax_b = width / 2.0, 0.24 * a.lung_height
    reach = max(ax_a, ax_b) + 2.0
    box = _box(cv, cx - reach, cx + reach, cy - reach, cy + reach)
    ang = np.deg2rad(-25.0)
    dx = cv.x[box[1]][None, :] - cx
    dy = cv.y[box[0]][:, None] - cy
    xr = dx * np.cos(ang) - dy * np.sin(ang)
    yr = dx * np.sin(ang) + dy * np.cos(ang)
    q = (xr / ax_a) ** 2 + (yr / ax_b) ** 2
    return box, (np.sqrt(np.clip(1.0 - q, 0.0, None)) ** 0.5).astype(np.float32)


def _box(cv: Canvas, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """Pixel slices (rows, columns) covering [x0, x1] x [y0, y1] mm, clipped to the canvas."""
    c0, c1 = cv.col(x0), cv.col(x1)
    r0, r1 = cv.row(y0), cv.row(y1)
    rs = slice(min(cv.rows, max(0, int(np.floor(r0)))), min(cv.rows, max(0, int(np.ceil(r1)) + 1)))
    cs = slice(min(cv.columns, max(0, int(np.floor(c0)))), min(cv.columns, max(0, int(np.ceil(c1)) + 1)))
    return rs, cs


def _paint(
    target: np.ndarray, cv: Canvas, shape_fn, cx: float, cy: float, rx: float, ry: float, peak: float
) -> None:
    """Add ``shape_fn`` (an ellipse-supported path profile) to ``target`` within its bounding box only."""
    box = _box(cv, cx - rx, cx + rx, cy - ry, cy + ry)
    if box[0].stop <= box[0].start or box[1].stop <= box[1].start:
        return
    target[box] += shape_fn(cv.x[box[1]], cv.y[box[0]], cx, cy, rx, ry, peak)


def _trachea(a: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    s = a.scale
    carina = 0.33 * a.lung_height
    cx = -4.0 * s
    half = 8.5 * s
    # Trachea from the neck to the carina, then the main bronchi diverging at ~35 degrees.
    out = np.zeros((y.size, x.size), np.float32)
    rows = (y > -90.0 * s) & (y < carina)
    prof = 2.0 * np.sqrt(np.clip(half * half - (x - cx) ** 2, 0.0, None))
    out[rows] += prof[None, :] * 0.9
    for sgn, ang in ((-1.0, 32.0), (1.0, 40.0)):
        t = np.tan(np.deg2rad(ang))
        for_rows = (y >= carina) & (y < carina + 45.0 * s)
        centre = cx + sgn * (y[for_rows] - carina) * t
        hb = half * 0.75
        prof_b = 2.0 * np.sqrt(np.clip(hb * hb - (x[None, :] - centre[:, None]) ** 2, 0.0, None))
        out[for_rows] += prof_b.astype(np.float32) * 0.8
    return out


def _disc(x: np.ndarray, y: np.ndarray, cx: float, cy: float, r: float, edge: float) -> np.ndarray:
    d = np.sqrt((x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2)
    return np.clip((r - d) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def _dome(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, peak: float
) -> np.ndarray:
    """Path through a half-ellipsoid of peak thickness ``peak`` (breast, gastric bubble)."""
    q = ((x[None, :] - cx) / rx) ** 2 + ((y[:, None] - cy) / ry) ** 2
    return (peak * np.sqrt(np.clip(1.0 - q, 0.0, None))).astype(np.float32)


def _breast(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, peak: float
) -> np.ndarray:
    """Breast shadow: thickest at its sharp inferior edge (centre ``cy``), fading out upwards."""
    q = ((x[None, :] - cx) / rx) ** 2 + ((y[:, None] - cy) / ry) ** 2
    ramp = np.clip((y[:, None] - (cy - ry)) / ry, 0.0, 1.0) ** 1.5
    return (peak * np.sqrt(np.clip(1.0 - q, 0.0, None)) * np.where(y[:, None] < cy, ramp, 1.0)).astype(
        np.float32
    )


def _ball(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, peak: float
) -> np.ndarray:
    """Path through a sphere (a humeral head), ``peak`` times its diameter at the centre."""
    q = 1.0 - ((x[None, :] - cx) / rx) ** 2 - ((y[:, None] - cy) / ry) ** 2
    return (peak * rx * np.sqrt(np.clip(q, 0.0, None))).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Bones drawn as bands: a centre line y(x) (or x(y)) and a hollow-tube cross-section.
# ---------------------------------------------------------------------------------------------------------


def _tube(d: np.ndarray, marrow: float) -> np.ndarray:
    """Path through a hollow tube of outer radius 1 at offset ``d``; ``marrow`` is the inner radius."""
    outer = np.sqrt(np.clip(1.0 - d * d, 0.0, None))
    inner = np.sqrt(np.clip(marrow * marrow - d * d, 0.0, None))
    return outer - 0.75 * inner


def _band(
    cv: Canvas,
    cols: np.ndarray,
    rows_c: np.ndarray,
    half_px: np.ndarray,
    weight: np.ndarray,
    marrow: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and weights of a band centred on (rows_c[i], cols[i]) with half-height half_px[i]."""
    h = int(np.ceil(float(half_px.max()))) + 1
    offs = np.arange(-h, h + 1, dtype=np.float32)
    r = np.floor(rows_c)[:, None] + offs[None, :]
    d = (r - rows_c[:, None]) / half_px[:, None]
    w = _tube(d, marrow) * (weight * half_px)[:, None] * cv.pitch * 2.0
    ok = (r >= 0) & (r < cv.rows) & (w > 0)
    c = np.broadcast_to(cols[:, None], r.shape)
    return (r[ok].astype(np.int64) * cv.columns + c[ok]), w[ok].astype(np.float64)


def _curve_band(
    cv: Canvas, x0: float, x1: float, fy, half_mm: float, weight: float, taper: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A band along y = fy(x) for x in [x0, x1] (mm), ``taper`` thinning it towards x1."""
    lo, hi = sorted((cv.col(x0), cv.col(x1)))
    cols = np.arange(max(0, int(np.ceil(lo))), min(cv.columns, int(np.floor(hi)) + 1))
    if cols.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    xs = cv.x[cols]
    frac = np.clip((xs - x0) / (x1 - x0), 0.0, 1.0)
    rows_c = (fy(xs) + cv.apex_mm) / cv.pitch - 0.5
    half = np.full(cols.size, half_mm / cv.pitch, np.float32) * (1.0 - taper * frac)
    wt = np.full(cols.size, weight, np.float32) * (1.0 - 0.5 * taper * frac)
    return _band(cv, cols, rows_c.astype(np.float32), np.maximum(half, 0.5), wt)


def _ribs(a: Anatomy, cv: Canvas, bands: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Ten posterior ribs and six anterior ribs on each side (the anterior ones fainter, running down
    and medially to the costochondral junction; the cartilage is radiolucent)."""
    s = a.scale
    hw = a.thorax_half_width
    L = a.lung_height
    spacing = L / 9.4
    for sgn in (-1.0, 1.0):
        for k in range(10):
            y0 = -14.0 * s + k * spacing * (1.0 + 0.03 * k)
            width_k = hw * (0.55 + 0.45 * min(1.0, (k + 1) / 4.0)) + 6.0 * s
            curv = 0.75 / width_k if k > 0 else 1.3 / width_k
            rise = 0.3 if k > 0 else 0.45

            def fy(xv: np.ndarray, y0: float = y0, curv: float = curv, rise: float = rise) -> np.ndarray:
                u = np.abs(xv)
                return y0 - rise * u + curv * u * u

            bands.append(_curve_band(cv, sgn * 14.0 * s, sgn * width_k, fy, 4.6 * s + 1.0, 0.42, taper=0.2))
        for k in range(6):
            ya = 22.0 * s + k * spacing * 1.05

            def fa(xv: np.ndarray, ya: float = ya) -> np.ndarray:
                u = np.abs(xv)
                return ya + 0.42 * (hw - u) + 0.0012 * (hw - u) ** 2

            bands.append(_curve_band(cv, sgn * (hw + 4.0 * s), sgn * 0.33 * hw, fa, 6.0 * s + 1.0, 0.14, 0.3))


def _clavicles(a: Anatomy, cv: Canvas, bands: list[tuple[np.ndarray, np.ndarray]]) -> None:
    s = a.scale
    hw = a.thorax_half_width
    y0 = 14.0 * s - a.clavicle_rise
    length = 1.3 * hw

    def fc(xv: np.ndarray) -> np.ndarray:
        u = np.abs(xv)
        return y0 - 0.16 * u + 7.0 * s * np.sin(2.0 * np.pi * u / length)

    for sgn in (-1.0, 1.0):
        bands.append(_curve_band(cv, sgn * 16.0 * s, sgn * length, fc, 7.0 * s + 1.0, 0.7, taper=0.25))


def _spine(a: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Thoracic vertebral bodies (behind the mediastinum) with discs and pedicles, as separable profiles."""
    s = a.scale
    half = 19.0 * s
    col = 2.0 * np.sqrt(np.clip(half * half - x * x, 0.0, None)) * 0.18
    pitch = a.lung_height / 10.5
    phase = np.mod(y + 40.0 * s, pitch) / pitch
    row = np.where(phase < 0.8, 1.0, 0.35) * np.clip((y + 90.0 * s) / (30.0 * s), 0.0, 1.0)
    body = row[:, None] * col[None, :]
    ped = np.zeros_like(x)
    for sgn in (-1.0, 1.0):
        ped += 3.0 * np.exp(-(((x - sgn * 14.0 * s) / (3.5 * s)) ** 2))
    ped_rows = np.where((phase > 0.1) & (phase < 0.45), 1.0, 0.0) * (y > -60.0 * s)
    return (body + ped_rows[:, None] * ped[None, :]).astype(np.float32)


def _scapulae(a: Anatomy, cv: Canvas, bone: np.ndarray) -> None:
    """Thin scapular blades; their medial borders project over the upper lungs in AP views."""
    s = a.scale
    hw = a.thorax_half_width
    box = _box(cv, -1.35 * hw, 1.35 * hw, -25.0 * s, 0.6 * a.lung_height - 25.0 * s)
    x, y = cv.x[box[1]], cv.y[box[0]]
    if x.size == 0 or y.size == 0:
        return
    t = np.clip((y + 25.0 * s) / (0.6 * a.lung_height), 0.0, 1.0)
    med = hw * (1.02 - 0.45 * a.scapula_overlap) + 20.0 * s * np.sin(np.pi * t) - 30.0 * s * t
    lat = 1.3 * hw - 0.2 * hw * t
    u = np.abs(x)
    inside = np.clip((u[None, :] - med[:, None]) / 3.0, 0.0, 1.0) * np.clip(
        (lat[:, None] - u[None, :]) / 6.0, 0, 1
    )
    rim = np.exp(-(((u[None, :] - med[:, None]) / (2.2 * s)) ** 2))
    bone[box] += (2.5 * inside + 3.0 * rim).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Pulmonary vessels
# ---------------------------------------------------------------------------------------------------------


def _vessel_tree(
    a: Anatomy, cv: Canvas, geoms: list[LungGeometry], lung: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Branching vessels from each hilum, calibre x0.72 per generation, stopping at the pleura.

    Segments are grown generation by generation as arrays; each is sampled every half pixel and splatted with
    weight ~ calibre^2 (cross-section) into two maps, thick and thin, blurred to the calibre's scale.
    """
    s = a.scale
    hw = a.thorax_half_width
    L = a.lung_height
    starts, dirs, widths, lengths = [], [], [], []
    for sgn, hy in ((-1.0, 0.47 * L), (1.0, 0.43 * L)):
        hx = sgn * 0.3 * hw
        for ang in (-80.0, -55.0, -30.0, -5.0, 20.0, 45.0, 70.0, 90.0):
            a_rad = np.deg2rad(ang + rng.normal(0.0, 8.0))
            dxy = np.array([sgn * np.cos(a_rad), np.sin(a_rad)], np.float64)
            # Lobar arteries leave the hilum over a few centimetres, not from one point.
            starts.append((hx + sgn * rng.uniform(0.0, 10.0) * s, hy + (ang / 90.0) * 22.0 * s))
            dirs.append(dxy)
            widths.append(rng.uniform(4.0, 6.0) * s)
            lengths.append(rng.uniform(22.0, 32.0) * s)
    p = np.array(starts, np.float64)
    d = np.array(dirs, np.float64)
    w = np.array(widths, np.float64)
    ln = np.array(lengths, np.float64)

    seg_p0, seg_p1, seg_w = [], [], []
    lung_rows, lung_cols = lung.shape
    for _gen in range(12):
        # Gently curving segments: the direction drifts a little along each one.
        d = _rotate(d, np.deg2rad(rng.normal(0.0, 9.0, size=len(d))))
        end = p + d * ln[:, None]
        # Keep segments whose end lies inside aerated lung; the others stop short of the pleura.
        er = ((end[:, 1] + cv.apex_mm) / cv.pitch).astype(np.int64)
        ec = ((end[:, 0] + cv.midline_mm) / cv.pitch).astype(np.int64)
        inside = (er >= 0) & (er < lung_rows) & (ec >= 0) & (ec < lung_cols)
        depth = np.zeros(len(p))
        depth[inside] = lung[er[inside], ec[inside]]
        keep = (depth > 12.0 * s) | (_gen < 2)
        seg_p0.append(p[keep])
        seg_p1.append(end[keep])
        seg_w.append(w[keep])
        p, d, w, ln = end[keep], d[keep], w[keep], ln[keep]
        if len(p) == 0:
            break
        # Monopodial branching: the parent continues (calibre x0.82), a side branch leaves at 25-60 degrees
        # (calibre x0.6), as pulmonary arteries do.
        n = len(p)
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0) * np.deg2rad(rng.uniform(25.0, 60.0, size=n))
        d = np.concatenate([d, _rotate(d, side)])
        p = np.concatenate([p, p])
        w = np.concatenate([w * rng.uniform(0.78, 0.88, size=n), w * rng.uniform(0.5, 0.7, size=n)])
        ln = np.concatenate([ln * rng.uniform(0.8, 0.92, size=n), ln * rng.uniform(0.65, 0.85, size=n)])
        alive = w > 0.45
        p, d, w, ln = p[alive], d[alive], w[alive], ln[alive]
        if len(p) == 0:
            break

    p0 = np.concatenate(seg_p0)
    p1 = np.concatenate(seg_p1)
    wd = np.concatenate(seg_w)
    out = np.zeros(lung.shape, np.float32)
    box = (
        slice(min(g.box[0].start for g in geoms), max(g.box[0].stop for g in geoms)),
        slice(min(g.box[1].start for g in geoms), max(g.box[1].stop for g in geoms)),
    )
    for lo, hi, sigma_mm in ((2.2, 99.0, 1.6), (0.0, 2.2, 0.55)):
        sel = (wd >= lo) & (wd < hi)
        if not sel.any():
            continue
        a0, a1, ww = p0[sel], p1[sel], wd[sel]
        seg_len = np.hypot(*(a1 - a0).T) / cv.pitch
        n = np.maximum(np.ceil(seg_len * 2.0).astype(np.int64), 1)
        seg_id = np.repeat(np.arange(len(ww)), n)
        start = np.cumsum(n) - n
        t = (np.arange(n.sum()) - np.repeat(start, n) + 0.5) / np.repeat(n, n)
        pts = a0[seg_id] + (a1 - a0)[seg_id] * t[:, None]
        rr = np.rint((pts[:, 1] + cv.apex_mm) / cv.pitch - 0.5).astype(np.int64)
        cc = np.rint((pts[:, 0] + cv.midline_mm) / cv.pitch - 0.5).astype(np.int64)
        ok = (rr >= 0) & (rr < lung_rows) & (cc >= 0) & (cc < lung_cols)
        # Path through a cylinder of diameter w averaged over its width: (pi/4) w; per half-pixel sample.
        weight = VESSEL_GAIN * (np.pi / 4.0) * ww[seg_id] ** 2 / cv.pitch * 0.5
        acc = np.bincount(rr[ok] * lung_cols + cc[ok], weights=weight[ok], minlength=lung.size)
        acc_img = acc.reshape(lung.shape).astype(np.float32)
        out[box] += ndimage.gaussian_filter(acc_img[box], sigma_mm / cv.pitch + 0.4, truncate=3.0)
    # Hilar vessels: the larger pulmonary arteries as soft blobs.
    for sgn, hy in ((-1.0, 0.47 * L), (1.0, 0.43 * L)):
        _paint(out, cv, _dome, sgn * 0.27 * hw, hy, 16.0 * s, 30.0 * s, 10.0 * s)
    aerated = np.clip(lung / (20.0 * s), 0.0, 1.0)
    return (out * aerated).astype(np.float32)


def _rotate(d: np.ndarray, ang: np.ndarray) -> np.ndarray:
    c, sn = np.cos(ang), np.sin(ang)
    return np.stack([d[:, 0] * c - d[:, 1] * sn, d[:, 0] * sn + d[:, 1] * c], axis=1)


# ---------------------------------------------------------------------------------------------------------
# Lateral projection
# ---------------------------------------------------------------------------------------------------------


def _render_lateral(a: Anatomy, cv: Canvas, rng: np.random.Generator) -> Layers:
    """Left lateral projection, anterior to the image's left: both lungs superimposed, the heart anterior
    and inferior, vertebral bodies posterior (the posterior lung overlapping them), the sternum anterior, two
    hemidiaphragms (the right higher), and the raised arms' soft tissue over the apices."""
    x, y = cv.x, cv.y  # x: towards posterior, from the mid-coronal plane
    shape = (cv.rows, cv.columns)
    s = a.scale
    L = a.lung_height
    half = a.body_depth / 2.0
    width = 2.0 * (a.thorax_half_width + 22.0 * s)
    yy = y
    # Body outline: the anterior chest wall slopes forward below the clavicles; the back is convex.
    front = -half * (0.8 + 0.2 * np.clip((yy + 40.0 * s) / (0.5 * L), 0.0, 1.0))
    back = half * (0.95 + 0.05 * np.clip(yy / L, 0.0, 1.0))
    xc = (front + back) / 2.0
    xh = (back - front) / 2.0
    xn = (x[None, :] - xc[:, None]) / xh[:, None]
    soft = (width * np.sqrt(np.clip(1.0 - xn * xn, 0.0, None)) ** 0.5).astype(np.float32)
    arms = np.clip(-(yy + 5.0 * s) / (50.0 * s), 0.0, 1.0)  # raised arms over the apices
    soft += (70.0 * s * arms[:, None] * np.exp(-(((x[None, :] - 0.1 * half) / (0.7 * half)) ** 2))).astype(
        np.float32
    )

    # Lungs: between the retrosternal space and the posterior gutters, above the domes.
    spine_front = 0.3 * half
    ant = front + 14.0 * s
    post = 0.78 * half
    c_ant = x[None, :] - ant[:, None]
    c_post = post - x[None, :]
    apex = (yy[:, None] + 10.0 * s) - 0.006 / s * (x[None, :] - 0.25 * half) ** 2
    u = (x - (-0.05 * half)) / (0.95 * half)
    dome_r = 0.85 * L + 0.3 * L * np.clip(u * u, 0.0, 1.5)
    dome_l = dome_r + a.left_dome_drop
    c_dia = dome_l[None, :] - yy[:, None]
    d = np.minimum(np.minimum(c_ant, c_post), np.minimum(apex, c_dia))
    lung = np.minimum(np.sqrt(np.clip(2.0 * 300.0 * s * d, 0.0, None)), 0.62 * width).astype(np.float32)
    # The right dome: a second diaphragm outline through the lower lung (one lung's air removed below it).
    below_r = np.clip((yy[:, None] - dome_r[None, :]) / 2.0, 0.0, 1.0)
    lung *= (1.0 - 0.5 * below_r).astype(np.float32)
    hx, hy = -0.35 * half, 0.8 * L
    q = ((x[None, :] - hx) / (0.5 * half)) ** 2 + ((yy[:, None] - hy) / (0.27 * L)) ** 2
    heart = np.sqrt(np.clip(1.0 - q, 0.0, None)) ** 0.5
    lung *= (1.0 - 0.55 * heart).astype(np.float32)
    trachea = (
        16.0 * s * np.exp(-(((x[None, :] - (0.0 + 0.12 * np.clip(yy[:, None], 0, None))) / (7.0 * s)) ** 2))
    )
    soft -= (trachea * ((yy[:, None] > -80.0 * s) & (yy[:, None] < 0.38 * L))).astype(np.float32)
    texture = smooth_field(rng, shape, cells=24) + 0.6 * smooth_field(rng, shape, cells=64)
    tissue = lung * (LUNG_TISSUE_FRACTION * (1.0 + 0.18 * texture)).astype(np.float32)

    bone = np.zeros(shape, np.float32)
    # Vertebral bodies with discs, and the posterior elements behind them.
    pitch = L / 10.5
    phase = np.mod(yy + 40.0 * s, pitch) / pitch
    body_rows = np.where(phase < 0.8, 1.0, 0.0) * np.clip((yy + 80.0 * s) / (30.0 * s), 0.0, 1.0)
    vb = np.clip((x - spine_front) / 2.0, 0.0, 1.0) * np.clip((spine_front + 34.0 * s - x) / 2.0, 0.0, 1.0)
    rim = np.exp(-(((x - spine_front) / (1.6 * s)) ** 2)) + np.exp(
        -(((x - spine_front - 34.0 * s) / (1.6 * s)) ** 2)
    )
    bone += (body_rows[:, None] * (7.0 * vb + 4.0 * rim)[None, :] * s).astype(np.float32)
    post_el = np.clip((x - spine_front - 40.0 * s) / 3.0, 0.0, 1.0) * np.clip(
        (half * 0.88 - x) / 6.0, 0.0, 1.0
    )
    bone += (3.0 * s * np.clip((yy[:, None] + 80.0 * s) / (30.0 * s), 0.0, 1.0) * post_el[None, :]).astype(
        np.float32
    )
    # Sternum along the anterior chest wall.
    st = np.exp(-(((x[None, :] - (front[:, None] + 8.0 * s)) / (4.0 * s)) ** 2)) * (
        (yy[:, None] > -10.0 * s) & (yy[:, None] < 0.7 * L)
    )
    bone += (st * 6.0).astype(np.float32)
    # Posterior ribs, running obliquely down and forward across the back of the lungs.
    bands: list[tuple[np.ndarray, np.ndarray]] = []
    spacing = L / 9.4
    for k in range(10):
        y0 = -5.0 * s + k * spacing

        def fr(xv: np.ndarray, y0: float = y0) -> np.ndarray:
            return y0 + 0.5 * (post + 20.0 * s - xv) + 0.001 * (post - xv) ** 2

        bands.append(_curve_band(cv, post + 20.0 * s, -0.1 * half, fr, 4.0 * s + 1.0, 0.3, taper=0.5))
    idx = np.concatenate([b[0] for b in bands])
    w = np.concatenate([b[1] for b in bands])
    bone += np.bincount(idx, weights=w, minlength=cv.rows * cv.columns).reshape(shape).astype(np.float32)

    # Hilar vessels and a fine vascular texture.
    vessels = _dome(x, y, -0.02 * half, 0.45 * L, 24.0 * s, 30.0 * s, 14.0 * s)
    vessels += (
        smooth_field(rng, shape, cells=64).clip(0, None) * 2.5 * np.clip(lung / (40.0 * s), 0, 1)
    ).astype(np.float32)
    center = (cv.row(0.45 * L), cv.col(0.0))
    box = _box(cv, -1.05 * half, post + 2.0, -12.0 * s, float(dome_l.max()) + 2.0)
    geoms = [LungGeometry("right", center, box), LungGeometry("left", center, box)]
    metal = np.zeros(shape, np.float32)
    return Layers(soft=soft, lung=lung, tissue=tissue, vessels=vessels, bone=bone, metal=metal, lungs=geoms)
