r"""Bernoulli CUSUM charts: case-by-case monitoring of an error rate at a fixed operating point.

Each monitored case gives :math:`X_t \in \{0, 1\}` (for sensitivity: a positive case the model missed; for
specificity: a negative case the model flagged). In control :math:`P(X_t = 1) = p_0`; the chart is tuned to
detect :math:`p_1 > p_0`. Reynolds & Stoumbos (1999) write the log-likelihood-ratio CUSUM as

.. math::

    S_0 = 0,\qquad S_t = \max(0,\ S_{t-1} + X_t - k),\qquad
    k = \frac{-\ln\frac{1-p_1}{1-p_0}}{\ln\frac{p_1(1-p_0)}{p_0(1-p_1)}},

signalling when :math:`S_t \ge h`. With :math:`k` rounded to a fraction :math:`m/r` the scaled statistic
:math:`T_t = r S_t` moves on the integers :math:`0 \ldots H-1` (:math:`H = \lceil r h \rceil`), so the
in-control average run length follows exactly from the Markov chain of Brook & Evans (1972):
:math:`\mathrm{ARL} = e_0^\top (I - Q)^{-1} \mathbf 1` with :math:`Q` the transitions among the
non-signalling states. :func:`design_bernoulli_cusum` picks the smallest :math:`h` whose ARL reaches the
target. The change point is estimated as the case after the last time the chart stood at zero before the
signal (Page 1954; the maximum-likelihood estimator for a step change, Samuel, Pignatiello & Calvin 1998).

References: Reynolds MR, Stoumbos ZG. A CUSUM chart for monitoring a proportion when inspecting
continuously. J Qual Technol 1999;31:87-108. Brook D, Evans DA. An approach to the probability distribution
of CUSUM run length. Biometrika 1972;59:539-549. Steiner SH et al. Monitoring surgical performance using
risk-adjusted cumulative sum charts. Biostatistics 2000;1:441-452.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse.linalg import spsolve

from radgate.stats.checks import StatisticsInputError

__all__ = [
    "BernoulliCusum",
    "CusumRun",
    "bernoulli_cusum_arl",
    "design_bernoulli_cusum",
    "odds_shift",
    "reference_value",
    "run_bernoulli_cusum",
]


def _check_p(value: float, name: str) -> float:
    if not 0.0 < value < 1.0 or math.isnan(value):
        raise StatisticsInputError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def odds_shift(p0: float, odds_ratio: float) -> float:
    """The rate :math:`p_1` whose odds are ``odds_ratio`` times those of :math:`p_0` (Steiner et al. 2000)."""
    _check_p(p0, "p0")
    if odds_ratio <= 1.0:
        raise StatisticsInputError(f"odds_ratio must exceed 1 to detect an increase, got {odds_ratio!r}")
    odds = p0 / (1.0 - p0) * odds_ratio
    return odds / (1.0 + odds)


def reference_value(p0: float, p1: float) -> float:
    """Reynolds & Stoumbos' (1999) reference value :math:`k` (between :math:`p_0` and :math:`p_1`)."""
    _check_p(p0, "p0")
    _check_p(p1, "p1")
    if p1 <= p0:
        raise StatisticsInputError(f"p1 must exceed p0 (an increase in the error rate), got p0={p0}, p1={p1}")
    return -math.log((1 - p1) / (1 - p0)) / math.log(p1 * (1 - p0) / (p0 * (1 - p1)))


@dataclass(frozen=True)
class BernoulliCusum:
    """A designed chart: rates, reference value :math:`k = m/r`, limit :math:`h = H/r` and its ARLs."""

    p0: float
    p1: float
    k: float
    h: float
    scale: int  # r
    k_steps: int  # m
    limit_steps: int  # H
    arl0: float  # in-control average run length, in monitored cases
    arl1: float  # average run length at p1


def _chain_arl(p: float, m: int, r: int, limit: int) -> float:
    """Exact ARL of :math:`T_t = \\max(0, T_{t-1} + rX_t - m)` signalling at :math:`T \\ge H`, from 0."""
    states = np.arange(limit)
    down = np.maximum(0, states - m)
    up = states + r - m
    stays = up < limit
    rows = np.r_[states, states[stays]]
    cols = np.r_[down, np.maximum(0, up[stays])]
    probs = np.r_[np.full(limit, 1.0 - p), np.full(int(stays.sum()), p)]
    q = sparse.csc_matrix((probs, (rows, cols)), shape=(limit, limit))  # duplicates are summed
    arl = spsolve(sparse.identity(limit, format="csc") - q, np.ones(limit))
    return float(np.atleast_1d(arl)[0])


def bernoulli_cusum_arl(p: float, k: float, h: float, max_denominator: int = 50) -> float:
    """Average run length at rate ``p`` of the chart with reference value ``k`` and limit ``h``.

    ``k`` is rounded to the nearest fraction with denominator at most ``max_denominator`` (the chart that
    :func:`run_bernoulli_cusum` runs uses the same rounding), then the Markov chain is solved exactly.
    """
    _check_p(p, "p")
    frac = Fraction(k).limit_denominator(max_denominator)
    if not 0 < frac < 1:
        raise StatisticsInputError(f"k must lie strictly between 0 and 1, got {k!r}")
    r, m = frac.denominator, frac.numerator
    limit = max(1, math.ceil(h * r - 1e-9))
    return _chain_arl(p, m, r, limit)


def design_bernoulli_cusum(
    p0: float, p1: float, arl0: float, max_denominator: int = 50, max_limit_steps: int = 20000
) -> BernoulliCusum:
    """The chart for ``p0`` → ``p1`` with the smallest :math:`h` whose in-control ARL is at least ``arl0``."""
    k = reference_value(p0, p1)
    if arl0 < 2:
        raise StatisticsInputError(f"the in-control ARL must be at least 2 cases, got {arl0!r}")
    frac = Fraction(k).limit_denominator(max_denominator)
    r, m = frac.denominator, frac.numerator
    low, high = 1, r
    while _chain_arl(p0, m, r, high) < arl0:  # grow the bracket
        low, high = high, high * 2
        if high > max_limit_steps:
            raise StatisticsInputError(
                f"no limit up to h={max_limit_steps / r:.1f} gives an in-control ARL of {arl0:g} "
                f"for p0={p0:.4f}"
            )
    while low < high:  # the ARL increases with H: bisect for the smallest H that reaches arl0
        mid = (low + high) // 2
        if _chain_arl(p0, m, r, mid) >= arl0:
            high = mid
        else:
            low = mid + 1
    limit = high
    return BernoulliCusum(
        p0=p0,
        p1=p1,
        k=m / r,
        h=limit / r,
        scale=r,
        k_steps=m,
        limit_steps=limit,
        arl0=_chain_arl(p0, m, r, limit),
        arl1=_chain_arl(p1, m, r, limit),
    )


@dataclass(frozen=True)
class CusumRun:
    """The chart over a sequence: its path, the first signal (index) and the estimated change point."""

    statistic: NDArray[np.float64]  # S_t after each case
    signal_index: int | None  # first t with S_t >= h
    change_index: int | None  # first case of the estimated change (after the last zero before the signal)


def run_bernoulli_cusum(chart: BernoulliCusum, events: ArrayLike) -> CusumRun:
    """Run ``chart`` over 0/1 ``events`` in time order; the statistic restarts at 0 after a signal."""
    x = np.asarray(events)
    if x.ndim != 1 or (x.size and not np.isin(x, (0, 1)).all()):
        raise StatisticsInputError("events must be a one-dimensional sequence of 0/1 values")
    steps = np.where(x.astype(bool), chart.scale - chart.k_steps, -chart.k_steps)
    t = 0
    path = np.empty(x.size, dtype=np.float64)
    signal: int | None = None
    change: int | None = None
    last_zero = -1
    for i, step in enumerate(steps.tolist()):
        t = max(0, t + step)
        path[i] = t / chart.scale
        if t == 0:
            last_zero = i
        if t >= chart.limit_steps:
            if signal is None:
                signal, change = i, last_zero + 1
            t = 0
            last_zero = i
    return CusumRun(path, signal, change)
