"""Drift distances against scipy, chunk thresholds, CBPE against brute force and simulated truth, and the
heuristic's rates against simulation of Hanley & McNeil's exponential model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from radgate.stats.aucpower import auc_drop_test_power, heuristic_rates
from radgate.stats.cbpe import expected_auc, expected_rates
from radgate.stats.drift import (
    CategoricalDistance,
    NumericDistance,
    categorical_distance,
    chunk_threshold,
    jensen_shannon,
    numeric_distance,
)
from radgate.stats.roc import auc


def test_jensen_shannon_matches_scipy() -> None:
    p, q = [10, 20, 30, 0], [5, 5, 30, 10]
    # scipy returns the JS *distance* (square root of the divergence); base 2 as ours.
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-12)
    assert jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-15)


def test_categorical_and_numeric_distances_match_scipy() -> None:
    ref = ["GE"] * 60 + ["FUJI"] * 40
    cur = ["GE"] * 30 + ["FUJI"] * 20 + ["AGFA"] * 50
    table = np.array([[0, 40, 60], [50, 20, 30]])  # AGFA, FUJI, GE
    chi2 = sps.chi2_contingency(table, correction=False)[0]
    assert categorical_distance(ref, cur, CategoricalDistance.CHI2) == pytest.approx(np.sqrt(chi2 / 200))
    assert categorical_distance(ref, cur) == pytest.approx(
        jensenshannon([0, 40, 60], [50, 20, 30], base=2) ** 2
    )
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.5, 1, size=200)
    assert numeric_distance(a, b) == pytest.approx(sps.ks_2samp(a, b).statistic)
    iqr = np.subtract(*np.percentile(a, [75, 25]))
    assert numeric_distance(a, b, NumericDistance.WASSERSTEIN) == pytest.approx(
        sps.wasserstein_distance(a, b) / iqr
    )


def test_chunk_threshold_flags_a_shift_not_the_reference() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=3000)
    band = chunk_threshold(ref.size, 200, lambda c, r: numeric_distance(ref[c], ref[r]), chunks=30)
    fresh = numeric_distance(ref, rng.normal(size=200))
    shifted = numeric_distance(ref, rng.normal(0.6, 1, size=200))
    assert band.lower < fresh < band.upper < shifted


def brute_force_expected_auc(p: np.ndarray, s: np.ndarray) -> float:
    """Independent O(N^2) double sum over i != j (the definition)."""
    num = den = 0.0
    for i in range(p.size):
        for j in range(p.size):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_expected_auc_matches_the_double_sum_with_ties() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(1, 4, size=60)
    s = np.round(p, 1)  # many ties
    assert expected_auc(p, s) == pytest.approx(brute_force_expected_auc(p, s), rel=1e-12)


def test_cbpe_recovers_the_realised_auc_when_calibrated() -> None:
    """Simulated truth: labels drawn from the calibrated probabilities themselves, so P(y|x) holds."""
    rng = np.random.default_rng(4)
    p = rng.beta(0.6, 3.0, size=20000)
    y = rng.random(p.size) < p
    estimate = expected_auc(p)
    # The realised AUC's SE at ~3,300 positives is about 0.004; 0.012 is three of them.
    assert estimate == pytest.approx(auc(y, p), abs=0.012)
    flags = p >= 0.3
    sens, spec = expected_rates(p, flags)
    assert sens == pytest.approx(np.mean(flags[y]), abs=0.015)
    assert spec == pytest.approx(np.mean(~flags[~y]), abs=0.01)


def test_cbpe_misses_a_concept_shift_as_its_assumption_says() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(0.6, 3.0, size=20000)
    y = rng.random(p.size) < 0.5 * p + 0.5 * rng.random(p.size) * p.mean()  # P(y|x) changed
    assert expected_auc(p) - auc(y, p) > 0.05


def exponential_model_auc(theta: float, m: int, n: int, rng: np.random.Generator) -> float:
    """Hanley & McNeil's model: negatives Exp(1), positives Exp(1) scaled so that AUC = theta."""
    neg = rng.exponential(1.0, n)
    pos = rng.exponential(theta / (1 - theta), m)
    return auc(np.r_[np.ones(m), np.zeros(n)], np.r_[pos, neg])


def test_heuristic_rates_match_simulation() -> None:
    rates = heuristic_rates(0.90, 0.02, 0.02, 50, 450)
    assert rates.se == pytest.approx(0.03, abs=0.003)  # the "about 0.03"
    rng = np.random.default_rng(6)
    null = np.array([exponential_model_auc(0.90, 50, 450, rng) for _ in range(2000)])
    drop = np.array([exponential_model_auc(0.88, 50, 450, rng) for _ in range(2000)])
    # Monte-Carlo SE of a proportion near 0.25 over 2000 runs is about 0.01; the normal approximation adds a
    # little skew, so 0.035 covers both.
    assert np.mean(null < 0.88) == pytest.approx(rates.false_alarm, abs=0.035)
    assert np.mean(drop < 0.88) == pytest.approx(rates.detection, abs=0.035)
    # The sound test: about 16% power for a real 0.02 drop at these counts (the "roughly 15%").
    se0 = rates.se
    assert np.mean(drop + 1.6449 * se0 < 0.90) == pytest.approx(
        auc_drop_test_power(0.9, 0.02, 50, 450), abs=0.035
    )
    assert 0.12 < rates.sound_power < 0.2
