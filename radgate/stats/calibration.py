r"""Calibration: do the scores mean what they say? Brier, ECE, intercept, slope, reliability; recalibration.

A model trained elsewhere often ranks well at a new site (AUC holds) while its probabilities are off
(prevalence differs, another detector shifts the scores). The measures here quantify that, and the two
recalibrations map scores to local probabilities, fitted with cross-validation so that the "after"
figures are not measured on the cases that fitted them.

References
----------
- Brier GW. Verification of forecasts expressed in terms of probability. Mon Weather Rev 1950;78:1–3.
- Naeini MP, Cooper GF, Hauskrecht M. Obtaining well calibrated probabilities using Bayesian binning.
  AAAI 2015 (expected calibration error).
- Cox DR. Two further applications of a model for binary regression. Biometrika 1958;45:562–565
  (calibration slope and intercept).
- Van Calster B, McLernon DJ, van Smeden M, et al. Calibration: the Achilles heel of predictive
  analytics. BMC Med 2019;17:230.
- Platt JC. Probabilistic outputs for support vector machines and comparisons to regularized likelihood
  methods. In: Advances in Large Margin Classifiers, MIT Press 1999 (sigmoid with target smoothing).
- Zadrozny B, Elkan C. Transforming classifier scores into accurate multiclass probability estimates.
  KDD 2002 (isotonic regression by pool-adjacent-violators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import isotonic_regression
from scipy.special import expit, logit

from radgate.stats.checks import (
    StatisticsInputError,
    as_labels,
    as_probabilities,
    as_scores,
    require_both_classes,
    require_varying,
)
from radgate.stats.proportions import wilson, z_value

__all__ = [
    "CalibrationFit",
    "IsotonicCalibration",
    "PlattScaling",
    "Recalibration",
    "Recalibrator",
    "ReliabilityCurve",
    "brier_score",
    "calibration_intercept_slope",
    "cross_validated_recalibration",
    "expected_calibration_error",
    "fit_isotonic",
    "fit_platt",
    "reliability_curve",
    "stratified_folds",
]

LOGIT_CLIP = 1e-9  # probabilities are clipped to [1e-9, 1 - 1e-9] before taking logits


def brier_score(labels: ArrayLike, probabilities: ArrayLike) -> float:
    r"""Brier score :math:`\frac1N\sum_i (p_i - y_i)^2` (Brier 1950); 0 is perfect, 0.25 is a coin at 1/2."""
    y = as_labels(labels)
    p = as_probabilities(probabilities, n=y.size)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Non-empty bins of a reliability diagram: mean predicted vs observed fraction, with Wilson intervals."""

    bin_edges: NDArray[np.float64]
    strategy: str
    bin_index: NDArray[np.intp]  # which of the bins (0-based) each row describes
    count: NDArray[np.intp]
    mean_predicted: NDArray[np.float64]
    observed: NDArray[np.float64]
    observed_ci_low: NDArray[np.float64]
    observed_ci_high: NDArray[np.float64]


def _bin_edges(p: NDArray[np.float64], n_bins: int, strategy: str) -> NDArray[np.float64]:
    if n_bins < 1:
        raise StatisticsInputError(f"the number of bins must be at least 1, got {n_bins}")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        return np.asarray(np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1)))
    raise StatisticsInputError(f"binning strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability_curve(
    labels: ArrayLike,
    probabilities: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
    confidence: float = 0.95,
) -> ReliabilityCurve:
    """Bin the predicted probabilities and compare each bin's mean prediction with its observed positive rate.

    Binning (the same convention as scikit-learn's ``calibration_curve``): ``uniform`` uses ``n_bins``
    equal-width bins on [0, 1]; ``quantile`` uses the sample quantiles as edges, so bins hold about equal
    numbers of cases. A probability equal to an inner edge belongs to the bin below it (bins are
    :math:`(e_{k}, e_{k+1}]`, the first one closed). Empty bins are left out.
    """
    y = as_labels(labels)
    p = as_probabilities(probabilities, n=y.size)
    edges = _bin_edges(p, n_bins, strategy)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y.astype(np.float64), minlength=n_bins)
    keep = np.flatnonzero(count > 0)
    lows, highs = [], []
    for k in keep:
        w = wilson(int(round(sum_y[k])), int(count[k]), confidence)
        lows.append(w.ci[0])
        highs.append(w.ci[1])
    return ReliabilityCurve(
        edges,
        strategy,
        keep,
        count[keep],
        sum_p[keep] / count[keep],
        sum_y[keep] / count[keep],
        np.asarray(lows),
        np.asarray(highs),
    )


def expected_calibration_error(
    labels: ArrayLike,
    probabilities: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> float:
    r"""ECE :math:`= \sum_b \frac{n_b}{N}\,|\bar y_b - \bar p_b|` over the bins of :func:`reliability_curve`.

    Default binning: 10 equal-width bins on [0, 1] (Naeini et al. 2015). The value depends on the binning;
    report it beside the number.
    """
    curve = reliability_curve(labels, probabilities, n_bins, strategy)
    n = int(curve.count.sum())
    return float(np.sum(curve.count / n * np.abs(curve.observed - curve.mean_predicted)))


_SEPARATION = (
    "logistic fit did not converge: the scores separate the classes (perfectly or nearly), so the fitted "
    "slope is unbounded; a logistic curve cannot describe these data (use isotonic recalibration)"
)


def _logistic_fit(
    X: NDArray[np.float64],
    target: NDArray[np.float64],
    offset: NDArray[np.float64] | None = None,
    max_iter: int = 100,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Maximum-likelihood logistic regression by Newton–Raphson; returns (coefficients, covariance).

    ``target`` may be soft (in [0, 1]), as Platt's smoothed targets are.
    """
    beta = np.zeros(X.shape[1])
    off = np.zeros(X.shape[0]) if offset is None else offset
    hessian = np.eye(X.shape[1])
    for _ in range(max_iter):
        mu = expit(X @ beta + off)
        w = mu * (1.0 - mu)
        grad = X.T @ (target - mu)
        hessian = (X * w[:, None]).T @ X
        try:
            step = np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError as exc:
            raise StatisticsInputError(_SEPARATION) from exc
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e6:
            break
        if np.max(np.abs(step)) < 1e-10:
            return beta, np.linalg.inv(hessian)
    raise StatisticsInputError(_SEPARATION)


def _clipped_logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(logit(np.clip(p, LOGIT_CLIP, 1.0 - LOGIT_CLIP)))


@dataclass(frozen=True)
class CalibrationFit:
    """Calibration intercept (in the large) and slope with Wald intervals; ideal values are 0 and 1."""

    intercept: float
    intercept_ci: tuple[float, float]
    slope: float
    slope_ci: tuple[float, float]
    n: int
    confidence: float


def calibration_intercept_slope(
    labels: ArrayLike, probabilities: ArrayLike, confidence: float = 0.95
) -> CalibrationFit:
    r"""Calibration slope and intercept (Cox 1958; Van Calster et al. 2019).

    With :math:`\ell_i = \mathrm{logit}(p_i)` (probabilities clipped to :math:`[10^{-9}, 1-10^{-9}]`):

    - slope :math:`\beta` from :math:`\mathrm{logit}\,P(y=1) = \alpha' + \beta\,\ell`; below 1 means the
      predictions are too extreme (overfitting), above 1 too modest;
    - intercept :math:`\alpha` ("calibration in the large") from
      :math:`\mathrm{logit}\,P(y=1) = \alpha + \ell` (:math:`\ell` as an offset); above 0 means
      the model under-predicts on average.

    Both by maximum likelihood, intervals :math:`\hat\theta \pm z\,SE` from the inverse information.
    """
    y = as_labels(labels)
    p = as_probabilities(probabilities, n=y.size)
    require_both_classes(y, "Calibration slope")
    require_varying(p, "Calibration slope")
    lp = _clipped_logit(p)
    t = y.astype(np.float64)
    z = z_value(confidence)
    ones = np.ones((y.size, 1))
    coef_s, cov_s = _logistic_fit(np.column_stack([ones, lp]), t)
    coef_i, cov_i = _logistic_fit(ones, t, offset=lp)
    se_s, se_i = math.sqrt(cov_s[1, 1]), math.sqrt(cov_i[0, 0])
    slope, intercept = float(coef_s[1]), float(coef_i[0])
    return CalibrationFit(
        intercept,
        (intercept - z * se_i, intercept + z * se_i),
        slope,
        (slope - z * se_s, slope + z * se_s),
        int(y.size),
        confidence,
    )


class Recalibrator(Protocol):
    """A fitted map from raw scores to calibrated probabilities."""

    method: str

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class PlattScaling:
    r"""Platt's sigmoid :math:`\hat p = 1/(1 + \exp(-(a f + b)))` with :math:`f` the score or its logit."""

    slope: float  # a
    intercept: float  # b
    on_logit: bool
    method: str = "platt"

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        s = as_scores(scores)
        f = _clipped_logit(s) if self.on_logit else s
        return np.asarray(expit(self.slope * f + self.intercept))


def fit_platt(
    labels: ArrayLike, scores: ArrayLike, on_logit: bool = False, smooth_targets: bool = True
) -> PlattScaling:
    r"""Fit Platt scaling by maximum likelihood (Newton–Raphson).

    With ``smooth_targets`` the 0/1 labels are replaced by Platt's targets
    :math:`t_+ = (N_+ + 1)/(N_+ + 2)` and :math:`t_- = 1/(N_- + 2)`, which keep the fit finite when the
    scores separate the classes. ``on_logit=True`` fits on :math:`\mathrm{logit}(s)` (for scores that are
    already probabilities: then :math:`a = 1, b = 0` is the identity, i.e. logistic recalibration).
    """
    y = as_labels(labels)
    s = as_probabilities(scores, "scores", n=y.size) if on_logit else as_scores(scores, n=y.size)
    n_pos, n_neg = require_both_classes(y, "Platt scaling")
    require_varying(s, "Platt scaling")
    f = _clipped_logit(s) if on_logit else s
    if smooth_targets:
        t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    else:
        t = y.astype(np.float64)
    coef, _ = _logistic_fit(np.column_stack([f, np.ones(y.size)]), t)
    return PlattScaling(float(coef[0]), float(coef[1]), on_logit)


@dataclass(frozen=True)
class IsotonicCalibration:
    """A non-decreasing step map fitted by pool-adjacent-violators; linear between knots, flat outside."""

    x: NDArray[np.float64]  # distinct training scores, ascending
    y: NDArray[np.float64]  # fitted probability at each
    method: str = "isotonic"

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        s = as_scores(scores)
        return np.asarray(np.interp(s, self.x, self.y))


def fit_isotonic(labels: ArrayLike, scores: ArrayLike) -> IsotonicCalibration:
    r"""Isotonic regression of the labels on the scores (Zadrozny & Elkan 2002).

    Minimises :math:`\sum_i (y_i - g(s_i))^2` over non-decreasing :math:`g` by pool-adjacent-violators;
    cases with equal scores are first pooled (their mean label, weighted by count). New scores are mapped by
    linear interpolation between the fitted points and clipped to the end values outside the training range.
    """
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    require_both_classes(y, "Isotonic recalibration")
    xs, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y.astype(np.float64)) / counts
    fitted = isotonic_regression(means, weights=counts.astype(np.float64), increasing=True).x
    return IsotonicCalibration(xs, np.asarray(fitted, dtype=np.float64))


def stratified_folds(labels: ArrayLike, folds: int = 5, seed: int = 0) -> NDArray[np.intp]:
    """Assign each case a fold in ``0..folds-1`` so every fold holds about the same share of each class."""
    y = as_labels(labels)
    n_pos, n_neg = require_both_classes(y, f"{folds}-fold cross-validation", minimum=max(folds, 2))
    if folds < 2:
        raise StatisticsInputError(f"cross-validation needs at least 2 folds, got {folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.intp)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(idx.size) % folds
    return fold


@dataclass(frozen=True)
class Recalibration:
    """Out-of-fold recalibrated probabilities (for honest "after" metrics) and the map fitted on all cases."""

    method: str
    folds: int
    seed: int
    out_of_fold: NDArray[np.float64]
    model: PlattScaling | IsotonicCalibration


def cross_validated_recalibration(
    labels: ArrayLike,
    scores: ArrayLike,
    method: Literal["platt", "isotonic"] = "platt",
    folds: int = 5,
    seed: int = 0,
    on_logit: bool = False,
) -> Recalibration:
    """Fit a recalibration with stratified ``folds``-fold cross-validation on local labels.

    Each case's recalibrated probability comes from the map fitted on the other folds, so calibration
    measured on ``out_of_fold`` is an honest estimate for new cases; ``model`` is refitted on all cases for
    deployment. ``on_logit`` applies to Platt scaling (see :func:`fit_platt`).
    """
    y = as_labels(labels)
    s = as_scores(scores, n=y.size)
    if method not in ("platt", "isotonic"):
        raise StatisticsInputError(f"recalibration method must be 'platt' or 'isotonic', got {method!r}")
    fold = stratified_folds(y, folds, seed)
    out = np.empty(y.size)

    def fit(mask: NDArray[np.bool_]) -> PlattScaling | IsotonicCalibration:
        if method == "platt":
            return fit_platt(y[mask], s[mask], on_logit=on_logit)
        return fit_isotonic(y[mask], s[mask])

    for k in range(folds):
        test = fold == k
        out[test] = fit(~test).predict(s[test])
    return Recalibration(method, folds, seed, out, fit(np.ones(y.size, dtype=bool)))
