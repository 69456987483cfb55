"""Pooling with peer sites: the meta-analysis against statsmodels and a published worked example."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from radgate.errors import Invalid
from radgate.learning.pool import meta_analysis, pool_files
from radgate.stats.roc import delong


def test_meta_analysis_equals_statsmodels() -> None:
    rng = np.random.default_rng(4)
    effects, variances = rng.uniform(0.7, 0.9, 6), rng.uniform(0.0005, 0.003, 6)
    ours = meta_analysis(effects, variances)
    ref = combine_effects(effects, variances, method_re="dl")
    frame = ref.summary_frame()
    assert ours.fixed == pytest.approx(ref.mean_effect_fe, rel=1e-12)
    assert ours.random == pytest.approx(ref.mean_effect_re, rel=1e-12)
    assert ours.q == pytest.approx(ref.q, rel=1e-12)
    assert ours.i2 == pytest.approx(ref.i2, rel=1e-12)
    assert ours.tau2 == pytest.approx(ref.tau2, rel=1e-12)
    assert ours.random_ci[0] == pytest.approx(frame.loc["random effect", "ci_low"], rel=1e-10)
    assert ours.fixed_ci[1] == pytest.approx(frame.loc["fixed effect", "ci_upp"], rel=1e-10)


def test_worked_example_higgins_thompson() -> None:
    # Cochran's Q and I² by hand on three estimates (Higgins & Thompson 2002, eq. for I² = (Q - df) / Q):
    # y = (0.8, 0.85, 0.7), v = (0.001, 0.002, 0.0015): w = (1000, 500, 666.67), pooled 0.780769,
    # Q = 1000*0.019231² + 500*0.069231² + 666.67*0.080769² = 7.1154, I² = (7.1154 - 2) / 7.1154 = 0.7189
    m = meta_analysis([0.8, 0.85, 0.7], [0.001, 0.002, 0.0015])
    assert m.fixed == pytest.approx(0.780769, abs=1e-6)
    assert m.q == pytest.approx(7.1154, abs=1e-4)
    assert m.i2 == pytest.approx(0.7189, abs=1e-4)
    with pytest.raises(Invalid, match="at least two sites"):
        meta_analysis([0.8], [0.001])


def _site(path: Path, rng: np.random.Generator, n: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(-1, 1, n) + d * y)))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SeriesInstanceUID", "score", "label"])
        for i in range(n):
            w.writerow([f"2.25.{i}", f"{s[i]:.6f}", y[i]])
    return y, np.round(s, 6)


def test_pool_files_per_site_and_pooled(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = [
        _site(tmp_path / f"{name}.csv", rng, n, d)
        for name, n, d in (("a", 300, 2.0), ("b", 200, 1.2), ("c", 250, 2.5))
    ]
    out = pool_files([tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"], threshold=0.4)
    assert [r["site"] for r in out["sites"]] == ["a", "b", "c"] and out["n"] == 750
    aucs = [delong(y, s) for y, s in data]
    assert [r["auc"] for r in out["sites"]] == pytest.approx([a.auc for a in aucs], abs=1e-12)
    ref = combine_effects(
        np.array([a.auc for a in aucs]), np.array([a.variance for a in aucs]), method_re="dl"
    )
    assert out["auc_meta"]["random"] == pytest.approx(ref.mean_effect_re, rel=1e-12)
    assert out["heterogeneity"]["i2"] == pytest.approx(ref.i2, rel=1e-12)
    y_all = np.concatenate([y for y, _ in data])
    s_all = np.concatenate([s for _, s in data])
    assert out["sensitivity_all_cases"]["estimate"] == pytest.approx(np.mean(s_all[y_all == 1] >= 0.4))
    assert 0 < out["sensitivity_meta"]["random"] < 1
