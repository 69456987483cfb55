"""The report's explanation check: maps peaking inside the labelled region, with a Wilson CI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from radgate.validation.explanation import explanation_check, labelled_region, read_region_truth


def _map_peaking_at(x: float, y: float, size: int = 16) -> np.ndarray:
    values = np.zeros((size, size), dtype=np.float32)
    values[min(int(y * size), size - 1), min(int(x * size), size - 1)] = 1.0
    return values


def test_regions_follow_the_phantom_orientation() -> None:
    # the patient's right lung lies on the image's left (Patient Orientation L\F)
    assert labelled_region("right", "apical") == (0.0, 0.5, 0.0, 0.5)
    assert labelled_region("left", "lateral") == (0.7, 1.0, 0.15, 0.85)
    assert labelled_region("", "apical") is None and labelled_region("left", "basal") is None


def test_share_inside_with_wilson_ci_against_statsmodels() -> None:
    regions = {f"s{i}": ("right", "apical") for i in range(10)}
    maps = {f"s{i}": _map_peaking_at(0.2, 0.2) for i in range(7)}  # 7 inside (upper image-left quadrant)
    maps |= {f"s{i}": _map_peaking_at(0.8, 0.8) for i in range(7, 10)}  # 3 on the wrong side
    maps["no-region"] = _map_peaking_at(0.2, 0.2)  # no labelled region: not counted
    check = explanation_check(maps, regions)
    assert (check.n, check.inside) == (10, 7)
    assert check.share == pytest.approx(0.7)
    low, high = proportion_confint(7, 10, alpha=0.05, method="wilson")  # statsmodels, independent
    assert check.ci == pytest.approx((low, high), abs=1e-9)
    assert "rough guide" in check.note
    assert explanation_check({}, regions).share is None


def test_region_truth_from_synthetic_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("SeriesInstanceUID,label,side,location\n1.2,1,left,apical\n1.3,0,,\n")
    assert read_region_truth(labels) == {"1.2": ("left", "apical")}
