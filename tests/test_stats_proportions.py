"""radgate.stats.proportions against Newcombe's published tables and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from radgate.stats import StatisticsInputError
from radgate.stats.proportions import (
    clopper_pearson,
    mcnemar,
    mcnemar_paired,
    newcombe_difference,
    wilson,
)

# Newcombe RG. Stat Med 1998;17:857-872, Table I: 95% limits for four example proportions.
# Method 3 (Wilson score, no continuity correction) and method 5 (Clopper-Pearson exact), 4 decimals.
NEWCOMBE_1998A = [
    # (x, n, wilson_low, wilson_high, exact_low, exact_high)
    (81, 263, 0.2553, 0.3662, 0.2527, 0.3676),
    (15, 148, 0.0624, 0.1605, 0.0578, 0.1617),
    (0, 20, 0.0000, 0.1611, 0.0000, 0.1684),
    (1, 29, 0.0061, 0.1718, 0.0009, 0.1776),
]

# Newcombe RG. Stat Med 1998;17:873-890, Table II: 95% limits for p1 - p2, method 10 (score, no CC).
NEWCOMBE_1998B = [
    # (x1, n1, x2, n2, low, high)
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
]


@pytest.mark.parametrize(("x", "n", "wl", "wh", "el", "eh"), NEWCOMBE_1998A)
def test_newcombe_1998_single_proportion_table(
    x: int, n: int, wl: float, wh: float, el: float, eh: float
) -> None:
    assert wilson(x, n).ci == pytest.approx((wl, wh), abs=5e-5)
    assert clopper_pearson(x, n).ci == pytest.approx((el, eh), abs=5e-5)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wilson_and_exact_match_statsmodels(confidence: float) -> None:
    # statsmodels proportion_confint(method="wilson" | "beta") at 1e-10 (beta = Clopper-Pearson).
    for n in (1, 2, 7, 30, 101):
        for x in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if not 0 <= x <= n:
                continue
            alpha = 1 - confidence
            assert wilson(x, n, confidence).ci == pytest.approx(
                proportion_confint(x, n, alpha=alpha, method="wilson"), abs=1e-10
            )
            assert clopper_pearson(x, n, confidence).ci == pytest.approx(
                proportion_confint(x, n, alpha=alpha, method="beta"), abs=1e-10
            )


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), NEWCOMBE_1998B)
def test_newcombe_1998_difference_table(x1: int, n1: int, x2: int, n2: int, low: float, high: float) -> None:
    res = newcombe_difference(x1, n1, x2, n2)
    assert res.ci == pytest.approx((low, high), abs=5e-5)
    # statsmodels confint_proportions_2indep(method="newcomb") as the second, independent source.
    sm = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert res.ci == pytest.approx((float(sm[0]), float(sm[1])), abs=1e-10)
    assert res.estimate == pytest.approx(x1 / n1 - x2 / n2)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (12, 4), (30, 41), (7, 7), (0, 26)])
def test_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    table = np.array([[50, b], [c, 60]])
    exact = sm_mcnemar(table, exact=True)
    ours = mcnemar(b, c, exact=True)
    assert ours.p == pytest.approx(exact.pvalue, abs=1e-12)
    assert ours.statistic == pytest.approx(exact.statistic)
    if b == c and b:
        # statsmodels applies the correction even when b == c, giving (0 - 1)^2 / (b + c) > 0; R's
        # mcnemar.test (stats package) drops it then, giving 0, which is what radgate follows.
        assert mcnemar(b, c, exact=False).statistic == 0.0
        assert mcnemar(b, c, exact=False).p == 1.0
    elif b + c:
        for correction in (True, False):
            sm = sm_mcnemar(table, exact=False, correction=correction)
            ours = mcnemar(b, c, exact=False, correction=correction)
            assert ours.statistic == pytest.approx(sm.statistic, rel=1e-12)
            assert ours.p == pytest.approx(sm.pvalue, rel=1e-10)


def test_mcnemar_default_switches_to_exact_for_few_discordant_pairs() -> None:
    assert mcnemar(3, 9).method == "exact"
    assert mcnemar(30, 41).method == "chi2-corrected"


def test_mcnemar_paired_counts_discordant_pairs() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.8
    b = rng.random(300) < 0.7
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    ours = mcnemar_paired(a, b, exact=False)
    assert (ours.b, ours.c) == (table[0, 1], table[1, 0])
    assert ours.p == pytest.approx(sm_mcnemar(table, exact=False, correction=True).pvalue, rel=1e-10)


def test_invalid_counts_are_refused() -> None:
    with pytest.raises(StatisticsInputError, match="at least one trial, got 0"):
        wilson(0, 0)
    with pytest.raises(StatisticsInputError, match="between 0 and the number of trials 5, got 6"):
        clopper_pearson(6, 5)
    with pytest.raises(StatisticsInputError, match="confidence must be between 0 and 1"):
        wilson(1, 5, confidence=95)
    with pytest.raises(StatisticsInputError, match="non-negative whole number"):
        mcnemar(-1, 3)
