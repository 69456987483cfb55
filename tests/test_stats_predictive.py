"""radgate.stats.predictive against Altman & Bland's worked example, the seed's example and statsmodels."""

from __future__ import annotations

import math

import pytest
from scipy.special import expit, logit
from statsmodels.stats.proportion import confint_proportions_2indep

from radgate.stats import StatisticsInputError
from radgate.stats.predictive import expected_burden, npv_at, ppv_at, predictive_values

# Altman DG, Bland JM. Diagnostic tests 1 and 2. BMJ 1994;308:1552 and 309:102: liver scan vs pathology.
# 231 true positives, 32 false positives, 27 false negatives, 54 true negatives (n = 344).
AB_TP, AB_FP, AB_FN, AB_TN = 231, 32, 27, 54


def test_altman_bland_liver_scan_predictive_values() -> None:
    # At the sample prevalence (258/344 = 0.75): PPV 231/263 = 0.88, NPV 54/81 = 0.67 (BMJ 1994;309:102).
    pv = predictive_values(AB_TP, AB_FN, AB_TN, AB_FP)
    assert pv.prevalence_source == "sample"
    assert pv.ppv == pytest.approx(0.88, abs=0.005)
    assert pv.npv == pytest.approx(0.67, abs=0.005)
    # Same paper: at a prevalence of 0.25 the PPV would be 0.45 and the NPV 0.95.
    pv25 = predictive_values(AB_TP, AB_FN, AB_TN, AB_FP, prevalence=0.25)
    assert pv25.ppv == pytest.approx(0.45, abs=0.005)
    assert pv25.npv == pytest.approx(0.95, abs=0.005)


def test_sample_prevalence_gives_the_direct_ratios() -> None:
    # Bayes at the sample prevalence is algebraically TP/(TP+FP) and TN/(TN+FN).
    pv = predictive_values(AB_TP, AB_FN, AB_TN, AB_FP)
    assert pv.ppv == pytest.approx(AB_TP / (AB_TP + AB_FP), rel=1e-12)
    assert pv.npv == pytest.approx(AB_TN / (AB_TN + AB_FN), rel=1e-12)


def _katz_ppv_npv(tp: float, fn: float, tn: float, fp: float, prevalence: float) -> tuple[tuple, tuple]:
    """Mercaldo's logit intervals rebuilt from statsmodels' Katz log interval for a ratio of proportions.

    logit(PPV) = logit(prev) + log(Se / (1 - Sp)) and Var(log(Se/(1-Sp))) is Katz's (1978) variance of a
    log risk ratio: the same interval, computed by a different library.
    """
    n1, n0 = tp + fn, tn + fp
    lr_pos = confint_proportions_2indep(tp, n1, fp, n0, method="log", compare="ratio")
    lr_neg_inv = confint_proportions_2indep(tn, n0, fn, n1, method="log", compare="ratio")
    prior = logit(prevalence)
    ppv = (float(expit(prior + math.log(lr_pos[0]))), float(expit(prior + math.log(lr_pos[1]))))
    npv = (float(expit(-prior + math.log(lr_neg_inv[0]))), float(expit(-prior + math.log(lr_neg_inv[1]))))
    return ppv, npv


@pytest.mark.parametrize("prevalence", [0.001, 0.02, 0.3])
def test_logit_intervals_match_katz_ratio_interval_from_statsmodels(prevalence: float) -> None:
    pv = predictive_values(AB_TP, AB_FN, AB_TN, AB_FP, prevalence=prevalence)
    assert pv.method == "logit"
    ppv_ci, npv_ci = _katz_ppv_npv(AB_TP, AB_FN, AB_TN, AB_FP, prevalence)
    assert pv.ppv_ci == pytest.approx(ppv_ci, rel=1e-8)
    assert pv.npv_ci == pytest.approx(npv_ci, rel=1e-8)


def test_zero_cell_uses_adjusted_logit() -> None:
    # No false positives: the standard logit variance is infinite, so Mercaldo's adjusted version applies:
    # z^2/2 added to each count, z^2 to each denominator (R bdpv::BDtest does the same).
    tp, fn, tn, fp = 45, 5, 100, 0
    pv = predictive_values(tp, fn, tn, fp, prevalence=0.1)
    assert pv.method == "adjusted logit"
    z2 = 1.959963984540054**2
    _, npv_ci = _katz_ppv_npv(tp + z2 / 2, fn + z2 / 2, tn + z2 / 2, fp + z2 / 2, 0.1)
    assert pv.npv_ci == pytest.approx(npv_ci, rel=1e-8)
    # Specificity 1 means every flagged case is a true positive: PPV is exactly 1 and so is its upper limit.
    assert pv.ppv == 1.0
    assert pv.ppv_ci[1] == 1.0
    assert pv.ppv_ci[0] < 1.0


def test_seed_example_ten_false_positives_per_true_positive() -> None:
    # The seed article: at 0.1% prevalence even 99% specificity (100% sensitivity) gives about ten FP per TP.
    burden = expected_burden(prevalence=0.001, sensitivity=1.0, specificity=0.99, volume_per_day=1000)
    assert burden.fp_per_tp == pytest.approx(9.99, abs=1e-9)  # 0.01 * 0.999 / 0.001
    assert burden.tp_per_day == pytest.approx(1.0)
    assert burden.fp_per_day == pytest.approx(9.99)
    assert burden.fn_per_day == pytest.approx(0.0)
    assert burden.fp_per_tp == pytest.approx(1 / burden.ppv - 1)


def test_bayes_point_values_by_hand() -> None:
    # Se 0.9, Sp 0.95, prevalence 0.02: PPV = 0.018 / (0.018 + 0.049) = 0.26866, NPV = 0.931/0.933.
    assert ppv_at(0.9, 0.95, 0.02) == pytest.approx(0.018 / 0.067, rel=1e-12)
    assert npv_at(0.9, 0.95, 0.02) == pytest.approx(0.931 / 0.933, rel=1e-12)


def test_no_true_positives_gives_undefined_ratio() -> None:
    assert expected_burden(0.01, 0.0, 0.9, 100).fp_per_tp is None


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(StatisticsInputError, match=r"prevalence must lie in \(0, 1\), got 0"):
        predictive_values(10, 1, 10, 1, prevalence=0)
    with pytest.raises(StatisticsInputError, match="positive and negative reference cases"):
        predictive_values(0, 0, 10, 1)
    with pytest.raises(StatisticsInputError, match="specificity must lie in"):
        expected_burden(0.1, 0.9, 1.2, 10)
