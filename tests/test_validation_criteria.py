"""Acceptance criteria: parsing with clear errors, and the verdict logic (go live / extend / do not deploy)."""

from __future__ import annotations

from typing import Any

import pytest

from radgate.validation.criteria import (
    DO_NOT_DEPLOY,
    EXTEND,
    GO_LIVE,
    AcceptanceCriteria,
    CriteriaError,
    evaluate_criteria,
)
from radgate.validation.plan import deployment_plan

CRITERIA = """
[trial]
intended_use = "Adult PA chest radiographs, pneumothorax triage"

[analysis]
threshold = 0.5
prevalence = 0.02
subgroups = ["Manufacturer"]

[criteria]
min_positives = 100
min_negatives = 100
auc_min = 0.85
sensitivity_ci_lower_min = 0.80
specificity_min = 0.80
subgroup_sensitivity_min = 0.75
"""


def result(**overrides: Any) -> dict[str, Any]:
    """A validation summary in the shape of validate_table's output."""
    base: dict[str, Any] = {
        "n_positive": 150,
        "n_negative": 600,
        "auc": 0.91,
        "auc_ci": [0.88, 0.94],
        "sensitivity": 0.9,
        "sensitivity_ci": [0.84, 0.94],
        "specificity": 0.85,
        "specificity_ci": [0.82, 0.88],
        "ppv": 0.11,
        "ppv_ci": [0.09, 0.13],
        "npv": 0.998,
        "npv_ci": [0.996, 0.999],
        "fp_per_tp": 8.1,
        "subgroups": {
            "Manufacturer": {
                "A": {
                    "n_positive": 100,
                    "n_negative": 400,
                    "insufficient": False,
                    "sensitivity": 0.9,
                    "sensitivity_ci": [0.83, 0.95],
                },
                "B": {
                    "n_positive": 50,
                    "n_negative": 200,
                    "insufficient": True,
                    "sensitivity": 0.5,
                    "sensitivity_ci": [0.37, 0.63],
                },
            }
        },
    }
    base.update(overrides)
    return base


def test_parse_keeps_text_hash_and_plan() -> None:
    c = AcceptanceCriteria.from_text(CRITERIA)
    assert c.analysis.threshold == 0.5 and c.analysis.prevalence == 0.02
    assert c.analysis.subgroups == ("Manufacturer",)
    assert c.intended_use.startswith("Adult PA")  # type: ignore[union-attr]
    assert len(c.sha256) == 64 and c.text == CRITERIA


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[criteria]\nauc_minimum = 0.9\n", r"unknown criterion \['auc_minimum'\]"),
        ("[criteria]\nauc_min = 1.5\n", r"\[criteria\] auc_min must be a number in \[0.0, 1.0\], got 1.5"),
        ("[criteria]\nmin_positives = 99.5\n", r"min_positives must be a whole number >= 0, got 99.5"),
        ("[analysis]\nthreshold = 0.5\n", r"a \[criteria\] table with at least one criterion is required"),
        ("[criteria]\nsubgroup_auc_min = 0.8\n", r"subgroup criteria need \[analysis\] subgroups"),
        ("[criteria\nauc_min = 0.9\n", "is not valid TOML"),
        ("[analysis]\nprevalence = 0\n[criteria]\nauc_min = 0.9\n", "prevalence must lie strictly between"),
    ],
)
def test_invalid_criteria_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(CriteriaError, match=message):
        AcceptanceCriteria.from_text(text)


def test_all_pass_means_go_live_and_lists_unvalidated_subgroups() -> None:
    verdict = evaluate_criteria(result(), AcceptanceCriteria.from_text(CRITERIA))
    assert verdict.recommendation == GO_LIVE
    assert {r.outcome for r in verdict.results} == {"pass"}
    # Subgroup B has insufficient data: not judged, listed so that policy withholds results there.
    assert [r.subgroup for r in verdict.results if r.key == "subgroup_sensitivity_min"] == [
        "Manufacturer = A"
    ]
    assert verdict.not_validated == ("Manufacturer = B (50 positive, 200 negative)",)


def test_too_few_cases_means_extend() -> None:
    verdict = evaluate_criteria(result(n_positive=60), AcceptanceCriteria.from_text(CRITERIA))
    assert verdict.recommendation == EXTEND
    failed = [r for r in verdict.results if r.outcome == "fail"]
    assert [r.key for r in failed] == ["min_positives"]
    assert "40 more needed" in failed[0].detail


def test_wide_interval_above_the_bound_means_extend() -> None:
    # Estimate 0.86 meets 0.80 but the lower limit 0.74 does not: more cases could settle it.
    verdict = evaluate_criteria(
        result(sensitivity=0.86, sensitivity_ci=[0.74, 0.93]), AcceptanceCriteria.from_text(CRITERIA)
    )
    assert verdict.recommendation == EXTEND
    (r,) = [r for r in verdict.results if r.key == "sensitivity_ci_lower_min"]
    assert r.outcome == "fail" and not r.decisive and r.observed == 0.74


def test_estimate_below_the_bound_means_do_not_deploy() -> None:
    verdict = evaluate_criteria(
        result(specificity=0.70, specificity_ci=[0.66, 0.74]), AcceptanceCriteria.from_text(CRITERIA)
    )
    assert verdict.recommendation == DO_NOT_DEPLOY
    assert any("specificity >= 0.8 failed" in reason for reason in verdict.reasons)


def test_fp_per_tp_criterion_uses_the_ppv_interval() -> None:
    crit = AcceptanceCriteria.from_text("[criteria]\nmax_fp_per_tp = 5\n")
    verdict = evaluate_criteria(result(), crit)
    (r,) = verdict.results
    assert r.outcome == "fail" and r.decisive  # 1/0.13 - 1 = 6.7 > 5 even at the PPV's upper limit
    assert r.ci == pytest.approx((1 / 0.13 - 1, 1 / 0.09 - 1))


def test_plan_reproduces_the_seed_example() -> None:
    # The seed: 0.1% prevalence, 99% specificity (100% sensitivity) -> about ten false positives per true one.
    p = deployment_plan(prevalence=0.001, sensitivity=1.0, specificity=0.99, volume_per_day=500)
    assert p["fp_per_tp"] == pytest.approx(9.99)
    assert p["tp_per_day"] == pytest.approx(0.5)
    assert p["fp_per_day"] == pytest.approx(4.995)
    assert "about 10 false positives for every true positive" in p["warning"]
