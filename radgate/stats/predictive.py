r"""Predictive values at a chosen prevalence (Bayes), their logit intervals, and the expected daily burden.

Sensitivity and specificity travel between sites; PPV and NPV do not, because they depend on the
prevalence. With prevalence :math:`\pi`, sensitivity :math:`Se` and specificity :math:`Sp` (Bayes):

.. math::

    PPV = \frac{Se\,\pi}{Se\,\pi + (1-Sp)(1-\pi)}, \qquad
    NPV = \frac{Sp\,(1-\pi)}{Sp\,(1-\pi) + (1-Se)\,\pi}.

The intervals are Mercaldo, Lau & Zhou's (2007) *standard logit* intervals, which treat :math:`\pi` as
known and :math:`Se`, :math:`Sp` as independent binomials on :math:`n_1` diseased and :math:`n_0`
non-diseased cases:

.. math::

    \mathrm{logit}(PPV) = \log\frac{Se\,\pi}{(1-Sp)(1-\pi)}, \quad
    \widehat{\mathrm{Var}} = \frac{1-Se}{Se}\frac{1}{n_1} + \frac{Sp}{1-Sp}\frac{1}{n_0}

    \mathrm{logit}(NPV) = \log\frac{Sp\,(1-\pi)}{(1-Se)\,\pi}, \quad
    \widehat{\mathrm{Var}} = \frac{Se}{1-Se}\frac{1}{n_1} + \frac{1-Sp}{Sp}\frac{1}{n_0}

and the interval is :math:`\mathrm{expit}(\mathrm{logit} \pm z\sqrt{\widehat{\mathrm{Var}}})`. When a cell of
the 2×2 table is 0 the variance is infinite, and the *adjusted* logit interval is used instead (as
R's ``bdpv::BDtest`` does): :math:`\tilde{Se} = (TP + z^2/2)/(n_1 + z^2)`, likewise :math:`\tilde{Sp}`, and
:math:`n_1 + z^2`, :math:`n_0 + z^2` in the variance. A point estimate of exactly 0 or 1 keeps that
boundary as its interval's end.

References
----------
- Mercaldo ND, Lau KF, Zhou XH. Confidence intervals for predictive values with an emphasis to
  case–control studies. Stat Med 2007;26:2170–2183 (eqs. 8–11 and the adjusted versions).
- Altman DG, Bland JM. Diagnostic tests 2: predictive values. BMJ 1994;309:102.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radgate.stats.checks import StatisticsInputError
from radgate.stats.proportions import z_value

__all__ = ["Burden", "PredictiveValues", "expected_burden", "npv_at", "ppv_at", "predictive_values"]


def _check_rate(value: float, name: str, open_interval: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0 or (open_interval and v in (0.0, 1.0)):
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise StatisticsInputError(f"{name} must lie in {bounds}, got {value!r}")
    return v


def ppv_at(sensitivity: float, specificity: float, prevalence: float) -> float:
    """PPV by Bayes' theorem (see the module docstring); 0 when nothing is called positive."""
    se = _check_rate(sensitivity, "sensitivity")
    sp = _check_rate(specificity, "specificity")
    p = _check_rate(prevalence, "prevalence")
    num = se * p
    den = num + (1.0 - sp) * (1.0 - p)
    return num / den if den > 0 else 0.0


def npv_at(sensitivity: float, specificity: float, prevalence: float) -> float:
    """NPV by Bayes' theorem (see the module docstring); 0 when nothing is called negative."""
    se = _check_rate(sensitivity, "sensitivity")
    sp = _check_rate(specificity, "specificity")
    p = _check_rate(prevalence, "prevalence")
    num = sp * (1.0 - p)
    den = num + (1.0 - se) * p
    return num / den if den > 0 else 0.0


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True)
class PredictiveValues:
    """PPV and NPV at ``prevalence`` with Mercaldo logit intervals; ``method`` says which logit was used."""

    prevalence: float
    prevalence_source: str  # "given" | "sample"
    ppv: float
    ppv_ci: tuple[float, float]
    npv: float
    npv_ci: tuple[float, float]
    method: str  # "logit" | "adjusted logit"
    confidence: float


def predictive_values(
    tp: int, fn: int, tn: int, fp: int, prevalence: float | None = None, confidence: float = 0.95
) -> PredictiveValues:
    """PPV and NPV with Mercaldo, Lau & Zhou (2007) logit intervals from a 2×2 table.

    ``prevalence`` is the site's prevalence; ``None`` uses the sample's, :math:`(TP+FN)/N`, which is only
    right when the cases are a consecutive (cohort) sample of the site's population, not an enriched set.
    """
    counts = {"tp": tp, "fn": fn, "tn": tn, "fp": fp}
    for name, value in counts.items():
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise StatisticsInputError(f"{name} must be a non-negative whole number, got {value!r}")
    n1, n0 = tp + fn, tn + fp
    if n1 == 0 or n0 == 0:
        raise StatisticsInputError(
            f"predictive values need positive and negative reference cases; got {n1} positive, {n0} negative"
        )
    if prevalence is None:
        p, source = n1 / (n1 + n0), "sample"
    else:
        p, source = _check_rate(prevalence, "prevalence", open_interval=True), "given"
    z = z_value(confidence)
    se_hat, sp_hat = tp / n1, tn / n0
    ppv, npv = ppv_at(se_hat, sp_hat, p), npv_at(se_hat, sp_hat, p)
    adjusted = min(tp, fn, tn, fp) == 0
    if adjusted:
        z2 = z * z
        se_, sp_ = (tp + z2 / 2.0) / (n1 + z2), (tn + z2 / 2.0) / (n0 + z2)
        m1, m0 = n1 + z2, n0 + z2
    else:
        se_, sp_, m1, m0 = se_hat, sp_hat, float(n1), float(n0)
    prior_logit = math.log(p / (1.0 - p))
    logit_ppv = math.log(se_ / (1.0 - sp_)) + prior_logit
    var_ppv = (1.0 - se_) / se_ / m1 + sp_ / (1.0 - sp_) / m0
    logit_npv = math.log(sp_ / (1.0 - se_)) - prior_logit
    var_npv = se_ / (1.0 - se_) / m1 + (1.0 - sp_) / sp_ / m0

    def interval(centre: float, var: float, estimate: float) -> tuple[float, float]:
        half = z * math.sqrt(var)
        low, high = _expit(centre - half), _expit(centre + half)
        if estimate <= 0.0:
            low = 0.0
        if estimate >= 1.0:
            high = 1.0
        return (min(low, estimate), max(high, estimate))

    return PredictiveValues(
        p,
        source,
        ppv,
        interval(logit_ppv, var_ppv, ppv),
        npv,
        interval(logit_npv, var_npv, npv),
        "adjusted logit" if adjusted else "logit",
        confidence,
    )


@dataclass(frozen=True)
class Burden:
    """What a deployment means per day: expected true/false positives, missed cases and FP per TP."""

    prevalence: float
    sensitivity: float
    specificity: float
    volume_per_day: float
    tp_per_day: float
    fp_per_day: float
    fn_per_day: float
    tn_per_day: float
    flags_per_day: float
    fp_per_tp: float | None  # None when the model finds no true positives (sensitivity 0)
    ppv: float
    npv: float


def expected_burden(
    prevalence: float, sensitivity: float, specificity: float, volume_per_day: float
) -> Burden:
    r"""Expected counts per day for ``volume_per_day`` studies, and false positives per true positive.

    :math:`TP = V\pi\,Se`, :math:`FN = V\pi(1-Se)`, :math:`FP = V(1-\pi)(1-Sp)`,
    :math:`TN = V(1-\pi)Sp` and :math:`FP/TP = (1-Sp)(1-\pi)/(Se\,\pi) = 1/PPV - 1`. Example: at 0.1%
    prevalence a model with 100% sensitivity and 99% specificity raises about ten false alarms for every
    true finding (0.01 × 0.999 / 0.001 = 9.99).
    """
    p = _check_rate(prevalence, "prevalence")
    se = _check_rate(sensitivity, "sensitivity")
    sp = _check_rate(specificity, "specificity")
    v = float(volume_per_day)
    if not math.isfinite(v) or v < 0:
        raise StatisticsInputError(f"volume per day must be a non-negative number, got {volume_per_day!r}")
    tp = v * p * se
    fn = v * p * (1.0 - se)
    fp = v * (1.0 - p) * (1.0 - sp)
    tn = v * (1.0 - p) * sp
    ratio = (1.0 - sp) * (1.0 - p) / (se * p) if se * p > 0 else None
    return Burden(p, se, sp, v, tp, fp, fn, tn, tp + fp, ratio, ppv_at(se, sp, p), npv_at(se, sp, p))
