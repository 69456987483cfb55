r"""Binomial proportions: Wilson and Clopper–Pearson intervals, Newcombe's difference, McNemar's test.

Sensitivity is a proportion of the positive cases, specificity of the negative cases; both are reported
with Wilson score intervals, which keep close to nominal coverage at the small counts and extreme values
typical of a local validation (Newcombe 1998a, methods 3 and 5 compared).

References
----------
- Wilson EB. Probable inference, the law of succession, and statistical inference. JASA 1927;22:209–212.
- Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the
  binomial. Biometrika 1934;26:404–413.
- Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of seven methods.
  Stat Med 1998;17:857–872 (1998a).
- Newcombe RG. Interval estimation for the difference between independent proportions: comparison of
  eleven methods. Stat Med 1998;17:873–890 (1998b).
- McNemar Q. Note on the sampling error of the difference between correlated proportions or
  percentages. Psychometrika 1947;12:153–157.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from radgate.stats.checks import StatisticsInputError, as_labels, check_confidence

__all__ = [
    "McNemarResult",
    "Proportion",
    "ProportionDifference",
    "clopper_pearson",
    "mcnemar",
    "mcnemar_paired",
    "newcombe_difference",
    "wilson",
    "z_value",
]


@functools.lru_cache(maxsize=64)
def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile :math:`z_{1-\\alpha/2}` for ``confidence`` = 1 − α."""
    check_confidence(confidence)
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``trials`` with its two-sided confidence interval."""

    successes: int
    trials: int
    estimate: float
    ci: tuple[float, float]
    method: str
    confidence: float


@dataclass(frozen=True)
class ProportionDifference:
    """The difference ``p1 − p2`` of two independent proportions with its confidence interval."""

    p1: float
    p2: float
    estimate: float
    ci: tuple[float, float]
    method: str
    confidence: float


def _check_counts(successes: int, trials: int) -> tuple[int, int]:
    if isinstance(successes, bool) or isinstance(trials, bool):
        raise StatisticsInputError(f"counts must be integers, got {successes!r} of {trials!r}")
    x, n = int(successes), int(trials)
    if x != successes or n != trials:
        raise StatisticsInputError(f"counts must be whole numbers, got {successes!r} of {trials!r}")
    if n <= 0:
        raise StatisticsInputError(f"a proportion needs at least one trial, got {n} (successes {x})")
    if not 0 <= x <= n:
        raise StatisticsInputError(f"successes must lie between 0 and the number of trials {n}, got {x}")
    return x, n


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise StatisticsInputError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(value)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Proportion:
    r"""Wilson score interval (Wilson 1927; Newcombe 1998a, method 3, no continuity correction).

    .. math::

        \frac{x + z^2/2 \pm z\sqrt{x(n-x)/n + z^2/4}}{n + z^2}

    with :math:`x` successes in :math:`n` trials and :math:`z = z_{1-\alpha/2}`. The limits at
    :math:`x = 0` and :math:`x = n` are exactly 0 and 1.
    """
    x, n = _check_counts(successes, trials)
    z = z_value(confidence)
    z2 = z * z
    centre = (x + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(x * (n - x) / n + z2 / 4.0) / (n + z2)
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return Proportion(x, n, x / n, (low, high), "wilson", confidence)


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> Proportion:
    r"""Clopper–Pearson "exact" interval (Clopper & Pearson 1934; Newcombe 1998a, method 5).

    The limits are beta quantiles: :math:`L = B^{-1}(\alpha/2;\, x, n-x+1)` and
    :math:`U = B^{-1}(1-\alpha/2;\, x+1, n-x)`, with :math:`L = 0` when :math:`x = 0` and
    :math:`U = 1` when :math:`x = n`. Conservative: coverage is at least nominal.
    """
    x, n = _check_counts(successes, trials)
    alpha = 1.0 - check_confidence(confidence)
    low = 0.0 if x == 0 else float(sps.beta.ppf(alpha / 2.0, x, n - x + 1))
    high = 1.0 if x == n else float(sps.beta.ppf(1.0 - alpha / 2.0, x + 1, n - x))
    return Proportion(x, n, x / n, (low, high), "clopper-pearson", confidence)


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> ProportionDifference:
    r"""Newcombe's hybrid score interval for :math:`p_1 - p_2` of independent proportions (1998b, method 10).

    With Wilson limits :math:`(l_i, u_i)` for each proportion and :math:`\hat d = \hat p_1 - \hat p_2`:

    .. math::

        L = \hat d - \sqrt{(\hat p_1 - l_1)^2 + (u_2 - \hat p_2)^2}, \qquad
        U = \hat d + \sqrt{(u_1 - \hat p_1)^2 + (\hat p_2 - l_2)^2}.
    """
    a = wilson(x1, n1, confidence)
    b = wilson(x2, n2, confidence)
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.ci[0]) ** 2 + (b.ci[1] - b.estimate) ** 2)
    high = d + math.sqrt((a.ci[1] - a.estimate) ** 2 + (b.estimate - b.ci[0]) ** 2)
    return ProportionDifference(
        a.estimate, b.estimate, d, (max(-1.0, low), min(1.0, high)), "newcombe", confidence
    )


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the discordant pairs ``b`` (first right, second wrong) and ``c`` (the reverse)."""

    b: int
    c: int
    statistic: float
    p: float
    method: str  # "exact" | "chi2" | "chi2-corrected"


def mcnemar(b: int, c: int, exact: bool | None = None, correction: bool = True) -> McNemarResult:
    r"""McNemar's test for paired proportions from the two discordant counts (McNemar 1947).

    ``exact=True``: two-sided binomial test of :math:`b` successes in :math:`b + c` trials at
    :math:`p = 1/2`, :math:`P = \min(1, 2\,F_{\mathrm{Bin}}(\min(b,c);\, b+c, 1/2))`; the reported
    statistic is :math:`\min(b, c)`.
    ``exact=False``: :math:`\chi^2 = (|b - c| - 1)^2 / (b + c)` with Edwards' continuity correction
    (without it when ``correction=False``), referred to :math:`\chi^2_1`; when :math:`b = c` the statistic is
    0 (no correction below zero, as R's ``mcnemar.test``).
    ``exact=None`` picks the exact test when :math:`b + c < 25`, the usual rule of thumb.

    No discordant pairs (:math:`b = c = 0`) means no evidence of a difference: :math:`P = 1`.
    """
    b_ = _check_count(b, "b")
    c_ = _check_count(c, "c")
    total = b_ + c_
    if exact is None:
        exact = total < 25
    if total == 0:
        return McNemarResult(b_, c_, 0.0, 1.0, "exact" if exact else "chi2")
    if exact:
        k = min(b_, c_)
        p = min(1.0, 2.0 * float(sps.binom.cdf(k, total, 0.5)))
        return McNemarResult(b_, c_, float(k), p, "exact")
    diff = abs(b_ - c_) - (1.0 if correction else 0.0)
    stat = max(diff, 0.0) ** 2 / total
    return McNemarResult(
        b_, c_, stat, float(sps.chi2.sf(stat, 1)), "chi2-corrected" if correction else "chi2"
    )


def mcnemar_paired(
    first: ArrayLike, second: ArrayLike, exact: bool | None = None, correction: bool = True
) -> McNemarResult:
    """McNemar's test on two paired 0/1 outcomes per case (e.g. two models' calls on the positive cases).

    ``b`` counts cases where ``first`` is 1 and ``second`` is 0, ``c`` the reverse; see :func:`mcnemar`.
    Comparing the sensitivities of two models: pass each model's calls on the positive cases; specificities:
    their negative calls on the negative cases.
    """
    a = as_labels(first, "first")
    s = as_labels(second, "second")
    if a.size != s.size:
        raise StatisticsInputError(f"paired outcomes must have equal length, got {a.size} and {s.size}")
    b = int(np.count_nonzero(a & ~s))
    c = int(np.count_nonzero(~a & s))
    return mcnemar(b, c, exact=exact, correction=correction)
