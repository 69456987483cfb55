"""Explanation check: do the model's maps point where the finding is, when the region truth is known?

For true positives whose labelled region is known (the synthetic site's labels carry ``side`` and
``location``), the check counts the share whose explanation map peaks inside that region, with a Wilson
95% CI. A high share says the maps tend to look at the right place; it never says the model is right for
the right reason, and a low share is a warning sign. Maps remain a rough guide, not proof.

Regions are coarse boxes in the frontal image's coordinates (PS3.3 C.7.6.1.1.1 Patient Orientation ``L\\F``
as radgate's phantoms are written: the patient's right lung lies on the image's left): the patient's side
picks the image half; ``apical`` is that half's upper half, ``lateral`` the outer 60% of its width between
15% and 85% of the height.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radgate.stats import wilson

__all__ = ["ExplanationCheck", "explanation_check", "labelled_region", "read_region_truth"]

ROUGH_GUIDE = "Explanation maps are a rough guide to where the model looked, not proof of a finding."


@dataclass(frozen=True)
class ExplanationCheck:
    """Of ``n`` true positives with a map and a known region, ``inside`` peak inside it."""

    n: int
    inside: int
    share: float | None
    ci: tuple[float, float] | None
    note: str = ROUGH_GUIDE


def labelled_region(side: str, location: str) -> tuple[float, float, float, float] | None:
    """``(x0, x1, y0, y1)`` as fractions of the image width and height, or ``None`` when unknown."""
    side, location = side.strip().lower(), location.strip().lower()
    if side not in ("left", "right") or location not in ("apical", "lateral"):
        return None
    x0, x1 = (0.0, 0.5) if side == "right" else (0.5, 1.0)
    if location == "apical":
        return (x0, x1, 0.0, 0.5)
    outer = (0.0, 0.3) if side == "right" else (0.7, 1.0)
    return (outer[0], outer[1], 0.15, 0.85)


def read_region_truth(path: Path) -> dict[str, tuple[str, str]]:
    """``SeriesInstanceUID -> (side, location)`` from a labels CSV (``radgate synth``'s ``labels.csv``)."""
    regions: dict[str, tuple[str, str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            side, location = (row.get("side") or "").strip(), (row.get("location") or "").strip()
            uid = (row.get("SeriesInstanceUID") or "").strip()
            if uid and side and location:
                regions[uid] = (side, location)
    return regions


def peak(values: np.ndarray) -> tuple[float, float]:
    """The map's maximum as ``(x, y)`` fractions of its width and height (cell centres)."""
    r, c = np.unravel_index(int(np.nanargmax(values)), values.shape)
    return ((c + 0.5) / values.shape[1], (r + 0.5) / values.shape[0])


def explanation_check(
    true_positives: Mapping[str, np.ndarray], regions: Mapping[str, tuple[str, str]]
) -> ExplanationCheck:
    """``true_positives``: ``uid -> explanation map`` of the true positives; ``regions``: their labels."""
    n = inside = 0
    for uid, values in true_positives.items():
        box = labelled_region(*regions[uid]) if uid in regions else None
        if box is None or values.size == 0 or not np.isfinite(values).any():
            continue
        x, y = peak(values)
        n += 1
        inside += int(box[0] <= x <= box[1] and box[2] <= y <= box[3])
    if n == 0:
        return ExplanationCheck(0, 0, None, None)
    w = wilson(inside, n)
    return ExplanationCheck(n, inside, inside / n, (float(w.ci[0]), float(w.ci[1])))
