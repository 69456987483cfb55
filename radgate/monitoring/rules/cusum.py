"""Case-by-case Bernoulli CUSUMs: sensitivity (misses among positives), specificity (flags among negatives).

Cases are taken in acquisition order once their label is known. The in-control rate comes from the baseline
at the locked operating point; the chart is tuned for the error odds multiplied by
``monitoring.cusum_odds_ratio``, and its limit is set for an in-control ARL of
``monitoring.cusum_in_control_years`` years at the reference's volume of that class (converted to cases),
with the exact Markov-chain ARL of :func:`radgate.stats.cusum.design_bernoulli_cusum`. The in-control rate
is the one-sided upper Wilson bound (level ``monitoring.cusum_reference_guard``) of the reference's error
rate, not its point estimate: a chart built on an estimate that happens to be low raises false alarms far
more often than its design says (Jones LA, Champ CW, Rigdon SE. The run length distribution of the CUSUM
with estimated parameters. J Qual Technol 2004;36:95-108).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from radgate.config import MonitoringSettings
from radgate.monitoring.periods import period_of_index
from radgate.monitoring.rules.base import Finding, RuleContext
from radgate.stats import StatisticsInputError, wilson
from radgate.stats.cusum import design_bernoulli_cusum, odds_shift, run_bernoulli_cusum

__all__ = ["CusumSensitivityRule", "CusumSpecificityRule"]


class _CusumRule:
    name = ""
    sound = True
    description = ""
    positives = True  # which class the chart watches

    def __init__(self, settings: MonitoringSettings) -> None:
        self.years = settings.cusum_in_control_years
        self.odds_ratio = settings.cusum_odds_ratio
        self.guard = settings.cusum_reference_guard

    def evaluate(self, context: RuleContext) -> list[Finding]:
        cases, base = context.cases, context.baseline
        cls = 1 if self.positives else 0
        ref = base.mask & (cases.label == cls)
        n_ref = int(ref.sum())
        rate = base.metrics.sensitivity if self.positives else base.metrics.specificity
        if rate is None or n_ref < 10:
            return []
        span_days = max(1, (base.end - base.start).days + 1)
        per_year = n_ref / span_days * 365.25
        arl0 = max(10.0, self.years * per_year)
        # The in-control error rate is estimated from a finite reference; charting against the point
        # estimate makes false alarms far more frequent than the design ARL whenever the estimate happens
        # to be low (Jones, Champ & Rigdon 2004). Chart against the one-sided upper Wilson bound instead.
        errors = int(round((1.0 - rate) * n_ref))
        p0 = float(np.clip(wilson(errors, n_ref, 2 * self.guard - 1).ci[1], 0.5 / n_ref, 1 - 0.5 / n_ref))
        try:
            chart = design_bernoulli_cusum(p0, odds_shift(p0, self.odds_ratio), arl0)
        except StatisticsInputError:
            return []
        rows = np.flatnonzero(context.monitored & (cases.label == cls))
        if rows.size == 0:
            return []
        # In order of acquisition; a case counts from the day its label arrived.
        events = (~cases.flag[rows] if self.positives else cases.flag[rows]).astype(np.int8)
        run = run_bernoulli_cusum(chart, events)
        out: list[Finding] = []
        signals = np.flatnonzero(run.statistic >= chart.h - 1e-12)
        # Every signal (the chart restarts after each); change point: after the last zero before it.
        previous_end = 0
        stat = run.statistic
        what = "sensitivity" if self.positives else "specificity"
        error = "misses" if self.positives else "false positives"
        for sig in signals.tolist():
            zeros = np.flatnonzero(stat[previous_end:sig] <= 1e-12)
            change = previous_end + (int(zeros[-1]) + 1 if zeros.size else 0)
            previous_end = sig + 1
            row = rows[sig]
            day: dt.date = cases.study_date[row].astype(dt.date)
            label_day = cases.label_date[row]
            detected = max(day, label_day.astype(dt.date)) if not np.isnat(label_day) else day
            change_day: dt.date = cases.study_date[rows[change]].astype(dt.date)
            segment = events[change : sig + 1]
            period = period_of_index(int(context.period_of_row[row]), context.unit)
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    "all",
                    period.key,
                    detected,
                    f"{what} CUSUM signalled on {day.isoformat()}: {int(segment.sum())} {error} in "
                    f"{segment.size} cases since about {change_day.isoformat()} (in control "
                    f"{p0:.3f}, tuned for {chart.p1:.3f})",
                    {
                        "p0": round(p0, 4),
                        "p1": round(chart.p1, 4),
                        "k": round(chart.k, 4),
                        "h": round(chart.h, 4),
                        "arl0_cases": round(chart.arl0, 1),
                        "arl1_cases": round(chart.arl1, 1),
                        "in_control_years": self.years,
                        "baseline_rate": round(float(rate), 4),
                        "cases_since_change": int(segment.size),
                        "errors_since_change": int(segment.sum()),
                        "signal_date": day.isoformat(),
                    },
                    change_point=change_day,
                )
            )
        return out


class CusumSensitivityRule(_CusumRule):
    name = "cusum_sensitivity"
    description = "Bernoulli CUSUM of misses among positives at the operating point"
    positives = True


class CusumSpecificityRule(_CusumRule):
    name = "cusum_specificity"
    description = "Bernoulli CUSUM of false positives among negatives at the operating point"
    positives = False
