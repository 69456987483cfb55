r"""What a monthly AUC can and cannot show: the threshold heuristic's alarm rates and a sound test's power.

The heuristic "alert when the point AUC falls more than :math:`c` below baseline :math:`A_0`" fires when
:math:`\hat A < A_0 - c`. With :math:`\hat A \approx N(A, SE(A)^2)` and :math:`SE` from Hanley & McNeil
(1982) at the period's :math:`m` positives and :math:`n` negatives,

.. math::

    P(\text{fire} \mid A) = \Phi\!\left(\frac{A_0 - c - A}{SE(A)}\right),

so with no change (:math:`A = A_0`) it fires with probability :math:`\Phi(-c/SE(A_0))`, and for a true drop
:math:`\delta` with :math:`\Phi((\delta - c)/SE(A_0 - \delta))` (one half when :math:`\delta = c`).
A one-sided level-:math:`\alpha` test of :math:`A < A_0` (alert when the upper bound
:math:`\hat A + z_{1-\alpha} SE < A_0`) has power

.. math::

    1 - \beta = \Phi\!\left(\frac{\delta - z_{1-\alpha}\,SE(A_0)}{SE(A_0 - \delta)}\right)

(Obuchowski 1998, eq. 3: the null variance sets the critical value, the alternative's the spread). At
:math:`A_0 = 0.90`, 50 positives and 450 negatives, :math:`SE \approx 0.03`: the heuristic fires on noise in
about a quarter of the months, and the sound test detects a real 0.02 drop with about 16% power.

References: Hanley JA, McNeil BJ. The meaning and use of the area under a ROC curve. Radiology
1982;143:29-36. Obuchowski NA. Sample size calculations in studies of test accuracy. Stat Methods Med Res
1998;7:371-392.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats as sps

from radgate.stats.checks import StatisticsInputError
from radgate.stats.roc import hanley_mcneil_se

__all__ = ["HeuristicRates", "auc_drop_test_power", "heuristic_rates"]


@dataclass(frozen=True)
class HeuristicRates:
    """The threshold rule at one period's counts: SE, false-alarm and detection probabilities."""

    baseline: float
    margin: float
    drop: float
    n_positive: int
    n_negative: int
    se: float  # Hanley-McNeil SE at the baseline AUC
    false_alarm: float  # P(fire | no change)
    detection: float  # P(fire | true drop of `drop`)
    sound_power: float  # power of the one-sided 5% test at the same drop


def _check(baseline: float, drop: float, m: int, n: int) -> None:
    if not 0.5 <= baseline <= 1.0:
        raise StatisticsInputError(f"baseline AUC must lie in [0.5, 1], got {baseline!r}")
    if not 0.0 <= drop < baseline:
        raise StatisticsInputError(f"drop must lie in [0, baseline), got {drop!r}")
    if m < 1 or n < 1:
        raise StatisticsInputError(f"need at least one positive and one negative, got {m} and {n}")


def auc_drop_test_power(
    baseline: float, drop: float, n_positive: int, n_negative: int, alpha: float = 0.05
) -> float:
    """Power of the one-sided level-``alpha`` test of :math:`A < A_0` against a true drop ``drop``."""
    _check(baseline, drop, n_positive, n_negative)
    if not 0.0 < alpha < 0.5:
        raise StatisticsInputError(f"alpha must lie in (0, 0.5), got {alpha!r}")
    se0 = hanley_mcneil_se(baseline, n_positive, n_negative)
    se1 = hanley_mcneil_se(baseline - drop, n_positive, n_negative)
    critical = float(sps.norm.ppf(1 - alpha)) * se0
    if se1 == 0.0:
        return float(drop > critical)
    return float(sps.norm.cdf((drop - critical) / se1))


def heuristic_rates(
    baseline: float, margin: float, drop: float, n_positive: int, n_negative: int
) -> HeuristicRates:
    """The heuristic "point AUC < baseline − margin" at these counts (see the module docstring)."""
    _check(baseline, drop, n_positive, n_negative)
    if margin < 0:
        raise StatisticsInputError(f"margin must be non-negative, got {margin!r}")
    se0 = hanley_mcneil_se(baseline, n_positive, n_negative)
    se1 = hanley_mcneil_se(baseline - drop, n_positive, n_negative)
    false_alarm = float(sps.norm.cdf(-margin / se0)) if se0 > 0 else 0.0
    detection = float(sps.norm.cdf((drop - margin) / se1)) if se1 > 0 else float(drop > margin)
    return HeuristicRates(
        baseline,
        margin,
        drop,
        n_positive,
        n_negative,
        se0,
        false_alarm,
        detection,
        auc_drop_test_power(baseline, drop, n_positive, n_negative),
    )
