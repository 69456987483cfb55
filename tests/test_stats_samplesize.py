"""radgate.stats.samplesize against statsmodels and Hanley & McNeil's published example."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.proportion import proportion_confint, samplesize_confint_proportion

from radgate.stats import StatisticsInputError
from radgate.stats.samplesize import (
    cases_for_auc_halfwidth,
    cases_for_proportion_halfwidth,
    total_cases_for_sensitivity,
)


@pytest.mark.parametrize(("p", "d"), [(0.9, 0.05), (0.8, 0.03), (0.5, 0.1), (0.95, 0.02)])
def test_wald_matches_statsmodels(p: float, d: float) -> None:
    # statsmodels samplesize_confint_proportion: n = z^2 p (1 - p) / d^2 (not rounded).
    assert cases_for_proportion_halfwidth(p, d, method="wald") == math.ceil(
        samplesize_confint_proportion(p, d)
    )


@pytest.mark.parametrize(("p", "d"), [(0.9, 0.05), (0.8, 0.03), (0.99, 0.02), (1.0, 0.05)])
def test_wilson_answer_is_the_smallest_n_by_statsmodels(p: float, d: float) -> None:
    n = cases_for_proportion_halfwidth(p, d)

    def half(k: int) -> float:
        low, high = proportion_confint(p * k, k, method="wilson")  # statsmodels' Wilson interval
        return (high - low) / 2

    assert half(n) <= d + 1e-12
    assert half(n - 1) > d


def test_buderer_total_cases_divide_by_prevalence() -> None:
    # Buderer 1996: N = n_positive / prevalence. Se 0.90 +- 0.05 needs 139 positives (Wald), so at 20%
    # prevalence 695 consecutive cases.
    assert cases_for_proportion_halfwidth(0.9, 0.05, method="wald") == 139
    assert total_cases_for_sensitivity(0.9, 0.05, 0.2, method="wald") == 695


def test_auc_sample_size_reproduces_hanley_mcneil_example() -> None:
    # Hanley & McNeil 1982: A = 0.893 with 51 abnormal and 58 normal cases gives SE 0.032, so asking for a
    # 95% half-width of 1.96 * 0.0325 at the same 58:51 ratio should need about 51 positives.
    res = cases_for_auc_halfwidth(0.893, 1.959963984540054 * 0.03252, negatives_per_positive=58 / 51)
    assert abs(res.n_positive - 51) <= 1
    assert res.se == pytest.approx(0.032, abs=1e-3)


def test_invalid_half_width_is_refused() -> None:
    with pytest.raises(StatisticsInputError, match="half_width must lie strictly between 0 and 1, got 0"):
        cases_for_proportion_halfwidth(0.9, 0)
