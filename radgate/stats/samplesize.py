r"""Sample size for a target confidence-interval half-width: how many cases a validation needs.

References
----------
- Buderer NM. Statistical methodology: I. Incorporating the prevalence of disease into the sample size
  calculation for sensitivity and specificity. Acad Emerg Med 1996;3:895–900.
- Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating characteristic (ROC)
  curve. Radiology 1982;143:29–36.
- Newcombe RG. Stat Med 1998;17:857–872 (Wilson interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from radgate.stats.checks import StatisticsInputError
from radgate.stats.proportions import z_value
from radgate.stats.roc import hanley_mcneil_se

__all__ = [
    "AUCSampleSize",
    "cases_for_auc_halfwidth",
    "cases_for_proportion_halfwidth",
    "total_cases_for_sensitivity",
    "wilson_half_width",
]

_MAX_N = 10**9


def _check_open(value: float, name: str) -> float:
    if not 0.0 < value < 1.0:
        raise StatisticsInputError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def wilson_half_width(proportion: float, n: int, confidence: float = 0.95) -> float:
    r"""Half the width of the Wilson interval when :math:`\hat p` = ``proportion`` on ``n`` trials.

    :math:`z\sqrt{\hat p(1-\hat p)n + z^2/4}\,/\,(n + z^2)`.
    """
    z = z_value(confidence)
    return z * math.sqrt(proportion * (1.0 - proportion) * n + z * z / 4.0) / (n + z * z)


def _smallest_n(meets: Callable[[int], bool], what: str) -> int:
    """Smallest n >= 1 with ``meets(n)``, for a predicate that stays true once true (doubling, bisection)."""
    lo, hi = 1, 1
    while not meets(hi):
        lo, hi = hi + 1, hi * 2
        if hi > _MAX_N:
            raise StatisticsInputError(f"{what} needs more than {_MAX_N} cases")
    while lo < hi:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def cases_for_proportion_halfwidth(
    expected: float,
    half_width: float,
    confidence: float = 0.95,
    method: Literal["wald", "wilson"] = "wilson",
) -> int:
    r"""Smallest denominator :math:`n` whose interval half-width is at most ``half_width``.

    For a sensitivity, :math:`n` is the number of positive cases; for a specificity, of negatives.
    ``wald``: :math:`n = \lceil z^2 p(1-p)/d^2 \rceil` (Buderer 1996). ``wilson``: the smallest :math:`n`
    with :func:`wilson_half_width` :math:`\le d`, evaluated at :math:`\hat p` = ``expected`` (the half-width
    falls monotonically with :math:`n`; unlike Wald it does not vanish at :math:`\hat p` = 0 or 1).
    """
    p = float(expected)
    if not 0.0 <= p <= 1.0:
        raise StatisticsInputError(f"expected proportion must lie in [0, 1], got {expected!r}")
    d = _check_open(half_width, "half_width")
    z = z_value(confidence)
    if method == "wald":
        return max(1, math.ceil(z * z * p * (1.0 - p) / (d * d) - 1e-9))
    if method != "wilson":
        raise StatisticsInputError(f"method must be 'wald' or 'wilson', got {method!r}")
    return _smallest_n(lambda n: wilson_half_width(p, n, confidence) <= d, f"half-width {d}")


def total_cases_for_sensitivity(
    expected_sensitivity: float,
    half_width: float,
    prevalence: float,
    confidence: float = 0.95,
    method: Literal["wald", "wilson"] = "wilson",
) -> int:
    r"""Consecutive cases to enrol so the positives among them give the sensitivity half-width (Buderer 1996).

    :math:`N = \lceil n_+ / \pi \rceil` with :math:`n_+` from :func:`cases_for_proportion_halfwidth`.
    """
    p = _check_open(prevalence, "prevalence")
    n_pos = cases_for_proportion_halfwidth(expected_sensitivity, half_width, confidence, method)
    return math.ceil(n_pos / p - 1e-9)


@dataclass(frozen=True)
class AUCSampleSize:
    n_positive: int
    n_negative: int
    se: float  # Hanley–McNeil standard error at these sizes
    half_width: float


def cases_for_auc_halfwidth(
    expected_auc: float, half_width: float, negatives_per_positive: float = 1.0, confidence: float = 0.95
) -> AUCSampleSize:
    r"""Fewest positives :math:`m` (and negatives :math:`\lceil km \rceil`) with :math:`z\,SE \le d`.

    :math:`SE` is Hanley & McNeil's (1982) formula (:func:`radgate.stats.roc.hanley_mcneil_se`) at the
    expected AUC; :math:`k` = ``negatives_per_positive``.
    """
    a = _check_open(expected_auc, "expected_auc")
    d = _check_open(half_width, "half_width")
    if negatives_per_positive <= 0:
        raise StatisticsInputError(f"negatives_per_positive must be positive, got {negatives_per_positive!r}")
    z = z_value(confidence)

    def width(m: int) -> float:
        return z * hanley_mcneil_se(a, m, max(1, math.ceil(negatives_per_positive * m - 1e-9)))

    lo = _smallest_n(lambda m: width(m) <= d, f"AUC half-width {d}")
    n_neg = max(1, math.ceil(negatives_per_positive * lo - 1e-9))
    return AUCSampleSize(lo, n_neg, hanley_mcneil_se(a, lo, n_neg), width(lo))
