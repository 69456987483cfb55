"""Bernoulli CUSUM: the Markov-chain ARL against an independent Monte-Carlo simulation of the chart."""

from __future__ import annotations

import numpy as np
import pytest

from radgate.stats.checks import StatisticsInputError
from radgate.stats.cusum import (
    bernoulli_cusum_arl,
    design_bernoulli_cusum,
    odds_shift,
    reference_value,
    run_bernoulli_cusum,
)


def simulated_arl(p: float, k: float, h: float, runs: int, seed: int) -> tuple[float, float]:
    """Independent check: simulate the unscaled chart S_t = max(0, S_{t-1} + X_t - k) until S_t >= h."""
    rng = np.random.default_rng(seed)
    lengths = np.zeros(runs)
    s = np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    t = 0
    while alive.any():
        t += 1
        x = rng.random(alive.sum()) < p
        s[alive] = np.maximum(0.0, s[alive] + x - k)
        done = np.zeros(runs, dtype=bool)
        done[alive] = s[alive] >= h - 1e-9
        lengths[done] = t
        alive &= ~done
    return float(lengths.mean()), float(lengths.std(ddof=1) / np.sqrt(runs))


@pytest.mark.parametrize(("p0", "arl0"), [(0.15, 200.0), (0.05, 500.0)])
def test_arl_matches_simulation(p0: float, arl0: float) -> None:
    chart = design_bernoulli_cusum(p0, odds_shift(p0, 2.0), arl0)
    assert chart.arl0 >= arl0
    # In control and out of control; 4 standard errors of the Monte-Carlo mean (about 0.5-2%).
    for p, expected in ((chart.p0, chart.arl0), (chart.p1, chart.arl1)):
        mean, se = simulated_arl(p, chart.k, chart.h, 4000, seed=int(p * 1000))
        assert abs(mean - expected) < 4 * se, (p, mean, se, expected)


def test_reference_value_matches_reynolds_stoumbos_formula() -> None:
    # Reynolds & Stoumbos (1999), eq. (3): p0 = 0.01, p1 = 0.02 gives k = 0.01444 (their Table 1 region).
    assert reference_value(0.01, 0.02) == pytest.approx(0.014437, abs=1e-5)
    assert odds_shift(0.2, 2.0) == pytest.approx(1 / 3)


def test_design_is_the_smallest_limit_reaching_the_target() -> None:
    chart = design_bernoulli_cusum(0.1, odds_shift(0.1, 2.0), 300.0)
    below = bernoulli_cusum_arl(0.1, chart.k, chart.h - 1.0 / chart.scale)
    assert below < 300.0 <= chart.arl0
    assert chart.arl1 < chart.arl0 / 4


def test_change_point_estimate_and_restart() -> None:
    chart = design_bernoulli_cusum(0.1, odds_shift(0.1, 3.0), 50000.0)
    rng = np.random.default_rng(3)
    before = (rng.random(2000) < 0.1).astype(int)
    after = (rng.random(400) < 0.4).astype(int)
    run = run_bernoulli_cusum(chart, np.r_[before, after])
    assert run.signal_index is not None and run.signal_index >= 2000
    assert run.change_index is not None and abs(run.change_index - 2000) < 40
    assert run.statistic.max() >= chart.h


def test_bad_input_is_named() -> None:
    with pytest.raises(StatisticsInputError, match="p1 must exceed p0"):
        reference_value(0.2, 0.1)
    chart = design_bernoulli_cusum(0.1, 0.2, 100)
    with pytest.raises(StatisticsInputError, match="0/1"):
        run_bernoulli_cusum(chart, [0, 2])
