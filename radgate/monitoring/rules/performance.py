"""Performance rules on each complete period: the AUC heuristic, its sound variant, and the CBPE estimate."""

from __future__ import annotations

import math

from scipy import stats as sps

from radgate.config import MonitoringSettings
from radgate.monitoring.rules.base import Finding, RuleContext
from radgate.stats.aucpower import heuristic_rates
from radgate.stats.cbpe import ASSUMPTION

__all__ = ["AucDropCIRule", "AucDropRule", "CbpeRule"]


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


class AucDropRule:
    """The article's heuristic: point AUC below baseline − margin, with what it can see at these counts."""

    name = "auc_drop"
    sound = False
    description = "point AUC < baseline - margin (heuristic; false-alarm rate and power stated beside it)"

    def __init__(self, settings: MonitoringSettings) -> None:
        self.margin = settings.auc_margin
        self.min_pos, self.min_neg = settings.min_positives, settings.min_negatives

    def evaluate(self, context: RuleContext) -> list[Finding]:
        base = context.baseline.metrics.auc
        if base is None:
            return []
        out = []
        for period in context.monitored_periods():
            m = context.metrics.get(period.key)
            if m is None or m.auc is None or m.n_positive < self.min_pos or m.n_negative < self.min_neg:
                continue
            if m.auc >= base - self.margin:
                continue
            rates = heuristic_rates(
                max(0.5, base), self.margin, min(self.margin, base - 0.5), m.n_positive, m.n_negative
            )
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    "all",
                    period.key,
                    context.labels_known_on(context.rows(period), period),
                    f"AUC {m.auc:.3f} is below baseline {base:.3f} - {self.margin:g}; at {m.n_positive} "
                    f"positives this rule fires on noise in {rates.false_alarm:.0%} of periods and a sound "
                    f"test would detect a {self.margin:g} drop with {rates.sound_power:.0%} power",
                    {
                        "auc": _r(m.auc),
                        "baseline_auc": _r(base),
                        "margin": self.margin,
                        "n_positive": m.n_positive,
                        "n_negative": m.n_negative,
                        "hanley_mcneil_se": _r(rates.se),
                        "false_alarm_probability": _r(rates.false_alarm),
                        "detection_probability_at_margin_drop": _r(rates.detection),
                        "sound_test_power_at_margin_drop": _r(rates.sound_power),
                        "heuristic": True,
                    },
                )
            )
        return out


class AucDropCIRule:
    """Sound: the upper bound of the one-sided DeLong interval is below baseline − margin.

    The baseline is itself an estimate from a finite reference, so the interval is that of the period's AUC
    with the two DeLong variances added (independent samples, as :func:`radgate.stats.compare_unpaired`):
    ``A + z * sqrt(SE² + SE_baseline²) < A_baseline - margin``.
    """

    name = "auc_drop_ci"
    sound = True
    description = "upper bound of the one-sided DeLong interval < baseline - margin"

    def __init__(self, settings: MonitoringSettings) -> None:
        self.margin = settings.auc_ci_margin
        self.confidence = settings.auc_ci_confidence
        self.min_pos, self.min_neg = settings.min_positives, settings.min_negatives

    def evaluate(self, context: RuleContext) -> list[Finding]:
        base = context.baseline.metrics.auc
        if base is None:
            return []
        z = float(sps.norm.ppf(self.confidence))
        out = []
        for period in context.monitored_periods():
            m = context.metrics.get(period.key)
            if m is None or m.auc is None or m.auc_se is None:
                continue
            if m.n_positive < self.min_pos or m.n_negative < self.min_neg:
                continue
            base_se = context.baseline.metrics.auc_se or 0.0
            se = math.sqrt(m.auc_se**2 + base_se**2)  # independent samples: the variances add
            upper = m.auc + z * se
            if upper >= base - self.margin:
                continue
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    "all",
                    period.key,
                    context.labels_known_on(context.rows(period), period),
                    f"AUC {m.auc:.3f}: its one-sided {self.confidence:.0%} upper bound {upper:.3f} (with the "
                    f"baseline's own uncertainty) is below baseline {base:.3f}"
                    + (f" - {self.margin:g}" if self.margin else ""),
                    {
                        "auc": _r(m.auc),
                        "auc_se": _r(m.auc_se),
                        "baseline_auc_se": _r(base_se),
                        "upper_bound": _r(upper),
                        "confidence": self.confidence,
                        "baseline_auc": _r(base),
                        "margin": self.margin,
                        "n_positive": m.n_positive,
                        "n_negative": m.n_negative,
                    },
                )
            )
        return out


class CbpeRule:
    """Label-free: the CBPE AUC estimate from calibrated scores falls below baseline − margin."""

    name = "cbpe"
    sound = False
    description = "label-free AUC estimate (CBPE) < baseline - margin; assumes P(y|x) unchanged"

    def __init__(self, settings: MonitoringSettings) -> None:
        self.margin = settings.cbpe_margin

    def evaluate(self, context: RuleContext) -> list[Finding]:
        base = context.baseline.metrics.cbpe_auc or context.baseline.metrics.auc
        if base is None:
            return []
        out = []
        for period in context.monitored_periods():
            m = context.metrics.get(period.key)
            if m is None or m.cbpe_auc is None or m.cbpe_auc >= base - self.margin:
                continue
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    "all",
                    period.key,
                    period.end,
                    f"label-free AUC estimate {m.cbpe_auc:.3f} is below the reference's {base:.3f} - "
                    f"{self.margin:g} (early signal; assumes {ASSUMPTION.split(':')[0]})",
                    {
                        "cbpe_auc": _r(m.cbpe_auc),
                        "reference_cbpe_auc": _r(base),
                        "realised_auc": _r(m.auc),
                        "n": m.n,
                        "n_labelled": m.n_labelled,
                        "assumption": ASSUMPTION,
                    },
                )
            )
        return out
