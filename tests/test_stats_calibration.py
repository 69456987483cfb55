"""radgate.stats.calibration against scikit-learn and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit
from sklearn.calibration import _sigmoid_calibration, calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss

from radgate.stats import StatisticsInputError
from radgate.stats.calibration import (
    brier_score,
    calibration_intercept_slope,
    cross_validated_recalibration,
    expected_calibration_error,
    fit_isotonic,
    fit_platt,
    reliability_curve,
    stratified_folds,
)


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True risk expit(z); the model reports expit(2z + 1): too extreme and too high."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.2, size=n) - 1.0
    y = (rng.random(n) < expit(z)).astype(int)
    return y, expit(2.0 * z + 1.0)


def test_brier_matches_sklearn() -> None:
    y, p = miscalibrated(2000, 0)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_matches_sklearn(strategy: str) -> None:
    y, p = miscalibrated(3000, 1)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    curve = reliability_curve(y, p, n_bins=10, strategy=strategy)  # type: ignore[arg-type]
    np.testing.assert_allclose(curve.observed, prob_true, rtol=1e-12)
    np.testing.assert_allclose(curve.mean_predicted, prob_pred, rtol=1e-12)


def test_ece_from_sklearn_curve_and_histogram_counts() -> None:
    y, p = miscalibrated(3000, 2)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts, _ = np.histogram(p, bins=np.linspace(0, 1, 11))  # continuous p: no value sits on an edge
    counts = counts[counts > 0]
    expected = float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected, rel=1e-12)


def test_intercept_and_slope_match_statsmodels_glm() -> None:
    y, p = miscalibrated(3000, 3)
    lp = logit(p)
    # statsmodels GLM(Binomial): slope from y ~ 1 + logit(p); intercept from y ~ 1 with offset logit(p).
    slope_fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    icpt_fit = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit()
    res = calibration_intercept_slope(y, p)
    assert res.slope == pytest.approx(slope_fit.params[1], rel=1e-7)
    assert res.slope_ci == pytest.approx(tuple(slope_fit.conf_int()[1]), rel=1e-6)
    assert res.intercept == pytest.approx(icpt_fit.params[0], rel=1e-7)
    assert res.intercept_ci == pytest.approx(tuple(icpt_fit.conf_int()[0]), rel=1e-6)
    # The simulated model is twice too extreme and too high: slope ~ 0.5, intercept < 0.
    assert 0.4 < res.slope < 0.6
    assert res.intercept < 0


def test_platt_without_smoothing_matches_statsmodels_logit() -> None:
    y, p = miscalibrated(2000, 4)
    s = 3.0 * logit(p)  # an uncalibrated decision value
    fit = sm.Logit(y, sm.add_constant(s)).fit(disp=0)
    platt = fit_platt(y, s, smooth_targets=False)
    assert platt.slope == pytest.approx(fit.params[1], rel=1e-7)
    assert platt.intercept == pytest.approx(fit.params[0], rel=1e-7)


def test_platt_with_targets_matches_sklearn_sigmoid_calibration() -> None:
    y, p = miscalibrated(2000, 5)
    s = 3.0 * logit(p)
    # scikit-learn's Platt implementation (Platt's smoothed targets); it returns (a, b) for
    # p = 1 / (1 + exp(a*s + b)), i.e. slope = -a, intercept = -b in radgate's parametrisation.
    a, b = _sigmoid_calibration(s, y)
    platt = fit_platt(y, s)
    assert platt.slope == pytest.approx(-a, rel=1e-5)
    assert platt.intercept == pytest.approx(-b, rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(platt.predict(s), 1 / (1 + np.exp(a * s + b)), rtol=1e-5)


def test_isotonic_matches_sklearn_with_ties_and_out_of_range() -> None:
    rng = np.random.default_rng(6)
    y, p = miscalibrated(1500, 6)
    s = np.round(p, 2)  # many ties
    ours = fit_isotonic(y, s)
    ref = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    new = np.concatenate([rng.random(500), [-0.5, 1.5]])
    np.testing.assert_allclose(ours.predict(new), ref.predict(new), atol=1e-12)


def test_stratified_folds_balance_classes() -> None:
    y, _ = miscalibrated(1000, 7)
    fold = stratified_folds(y, folds=5, seed=1)
    pos = np.bincount(fold[y == 1], minlength=5)
    neg = np.bincount(fold[y == 0], minlength=5)
    assert pos.max() - pos.min() <= 1
    assert neg.max() - neg.min() <= 1


def test_cross_validated_isotonic_equals_foldwise_sklearn_fits() -> None:
    y, p = miscalibrated(1000, 8)
    res = cross_validated_recalibration(y, p, method="isotonic", folds=4, seed=3)
    fold = stratified_folds(y, folds=4, seed=3)
    expected = np.empty(y.size)
    for k in range(4):
        test = fold == k
        expected[test] = IsotonicRegression(out_of_bounds="clip").fit(p[~test], y[~test]).predict(p[test])
    np.testing.assert_allclose(res.out_of_fold, expected, atol=1e-12)


def test_recalibration_reduces_calibration_error_out_of_fold() -> None:
    y, p = miscalibrated(4000, 9)
    before = expected_calibration_error(y, p)
    for method in ("platt", "isotonic"):
        res = cross_validated_recalibration(y, p, method=method, on_logit=True)
        after = expected_calibration_error(y, res.out_of_fold)
        assert after < before / 2, (method, before, after)


def test_probabilities_outside_unit_interval_are_refused() -> None:
    with pytest.raises(StatisticsInputError, match=r"must lie in \[0, 1\].*1 value\(s\) do not"):
        brier_score([0, 1, 1], [0.2, 0.7, 1.3])


def test_perfect_separation_slope_is_refused() -> None:
    with pytest.raises(StatisticsInputError, match="separate the classes"):
        calibration_intercept_slope([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
