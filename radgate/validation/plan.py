"""``radgate plan``: what a model's sensitivity and specificity mean per day at the site's prevalence.

The seed's warning, made concrete before go-live: at 0.1% prevalence a model with 99% specificity raises
about ten false alarms for every true finding, however good its AUC.
"""

from __future__ import annotations

from typing import Any

from radgate.stats import expected_burden
from radgate.validation.metrics import json_ready

__all__ = ["LOW_PPV_FP_PER_TP", "deployment_plan"]

LOW_PPV_FP_PER_TP = 5.0  # from this many false positives per true positive on, the plan carries a warning


def deployment_plan(
    prevalence: float, sensitivity: float, specificity: float, volume_per_day: float
) -> dict[str, Any]:
    """Expected TP, FP, FN, TN and flags per day, FP per TP, PPV and NPV (see
    :func:`radgate.stats.predictive.expected_burden`), with a plain-language ``warning`` when false
    positives dominate.
    """
    b = expected_burden(prevalence, sensitivity, specificity, volume_per_day)
    warning = None
    if b.fp_per_tp is None:
        warning = "with sensitivity 0 the model finds no true positives: every flag is a false positive"
    elif b.fp_per_tp >= LOW_PPV_FP_PER_TP:
        warning = (
            f"about {b.fp_per_tp:.0f} false positives for every true positive: "
            f"at {prevalence:.3%} prevalence "
            f"only {b.ppv:.1%} of flagged studies are positive; plan the review workload and consider a "
            "higher threshold or a narrower intended use"
        )
    return json_ready(
        {
            "prevalence": b.prevalence,
            "sensitivity": b.sensitivity,
            "specificity": b.specificity,
            "volume_per_day": b.volume_per_day,
            "tp_per_day": b.tp_per_day,
            "fp_per_day": b.fp_per_day,
            "fn_per_day": b.fn_per_day,
            "tn_per_day": b.tn_per_day,
            "flags_per_day": b.flags_per_day,
            "fp_per_tp": b.fp_per_tp,
            "ppv": b.ppv,
            "npv": b.npv,
            "warning": warning,
        }
    )
