"""radgate.validation.metrics and cases: the JSON contract of `radgate validate`, checked against sklearn/statsmodels."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from radgate.stats import StatisticsInputError
from radgate.validation.cases import NO_LABEL, NO_SCORE, CaseRecord, CaseSet, CaseTableError, read_cases_csv
from radgate.validation.metrics import DEFAULT_THRESHOLD, json_ready, validate_cases, validate_table

CONTRACT = {
    "n",
    "n_positive",
    "n_negative",
    "auc",
    "auc_ci",
    "threshold",
    "sensitivity",
    "sensitivity_ci",
    "specificity",
    "specificity_ci",
    "ppv",
    "npv",
    "ppv_ci",
    "npv_ci",
    "fp_per_tp",
    "subgroups",
}
SUBGROUP_CONTRACT = {
    "n",
    "n_positive",
    "n_negative",
    "auc",
    "auc_ci",
    "sensitivity",
    "specificity",
    "insufficient",
}
COMPARISON_CONTRACT = {"auc_other", "auc_difference", "difference_ci", "z", "p"}


def site(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    z = 1.5 * y + rng.normal(size=n)
    scanner = rng.choice(np.array(["A", "B", "C"]), size=n, p=[0.5, 0.42, 0.08])
    return y, 1 / (1 + np.exp(-(z - 0.7))), 1 / (1 + np.exp(-(0.7 * z - 0.5))), scanner


def test_contract_keys_and_values_match_independent_implementations() -> None:
    y, s, other, scanner = site()
    res = validate_table(
        s,
        y,
        threshold=0.4,
        prevalence=0.05,
        subgroups={"Manufacturer": list(scanner)},
        other_scores=other,
        compare_column="challenger",
    )
    assert set(res) >= CONTRACT
    assert set(res["comparison"]) >= COMPARISON_CONTRACT
    assert res["n"] == y.size and res["n_positive"] == y.sum()
    assert res["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)  # scikit-learn
    tp = int(np.sum((s >= 0.4) & (y == 1)))
    assert res["sensitivity"] == pytest.approx(tp / y.sum())
    assert res["sensitivity_ci"] == pytest.approx(
        list(proportion_confint(tp, y.sum(), method="wilson")), abs=1e-12
    )
    assert res["comparison"]["auc_other"] == pytest.approx(roc_auc_score(y, other), abs=1e-12)
    assert res["comparison"]["auc_difference"] == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, other))
    assert res["prevalence"] == 0.05 and res["prevalence_source"] == "given"
    # FP per TP at the given prevalence: (1 - Sp)(1 - p) / (Se p).
    assert res["fp_per_tp"] == pytest.approx((1 - res["specificity"]) * 0.95 / (res["sensitivity"] * 0.05))
    levels = res["subgroups"]["Manufacturer"]
    assert set(levels) == {"A", "B", "C"}
    for level, sub in levels.items():
        assert set(sub) >= SUBGROUP_CONTRACT
        m = scanner == level
        assert sub["auc"] == pytest.approx(roc_auc_score(y[m], s[m]), abs=1e-12)
        assert sub["insufficient"] == (y[m].sum() < 100 or (1 - y[m]).sum() < 100)
    assert levels["C"]["insufficient"] is True
    json.dumps(res, allow_nan=False)  # valid JSON, no NaN


def test_default_threshold_is_documented_and_reported() -> None:
    y, s, _, _ = site(300, 1)
    res = validate_table(s, y)
    assert res["threshold"] == DEFAULT_THRESHOLD == 0.5
    assert res["threshold_source"] == "default"
    assert res["prevalence_source"] == "sample"
    assert any("sample prevalence" in w for w in res["warnings"])
    assert any("fewer than the 100" in w for w in res["warnings"])


def test_missing_numbers_become_null_not_nan() -> None:
    y, s, _, _ = site(400, 2)
    groups = np.where(np.arange(y.size) == np.flatnonzero(y == 1)[0], "solo", "rest")
    res = validate_table(s, y, subgroups={"g": list(groups)})
    solo = res["subgroups"]["g"]["solo"]
    assert solo["auc"] is None and solo["auc_ci"] is None and solo["specificity"] is None
    text = json.dumps(res, allow_nan=False)
    assert "NaN" not in text
    assert json_ready({"x": float("nan"), "y": (np.float64(1.5), np.int64(2))}) == {"x": None, "y": [1.5, 2]}


def test_sensitivity_zero_gives_null_fp_per_tp() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45])
    assert validate_table(s, y, threshold=0.9)["fp_per_tp"] is None


def test_one_class_and_nan_scores_are_clear_errors() -> None:
    with pytest.raises(StatisticsInputError, match="all 3 case"):
        validate_table([0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(StatisticsInputError, match=r"1 NaN value\(s\) out of 4"):
        validate_table([0.1, np.nan, 0.3, 0.4], [0, 1, 0, 1])


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_csv_case_flow_counts_missing_scores_and_labels(tmp_path: Path) -> None:
    y, s, _, scanner = site(300, 3)
    rows = [
        {"StudyInstanceUID": f"1.2.{i}", "p": f"{s[i]:.5f}", "truth": str(y[i]), "scanner": scanner[i]}
        for i in range(300)
    ]
    rows[0]["p"] = ""
    rows[1]["p"] = "NaN"
    rows[2]["truth"] = ""
    cases = read_cases_csv(write_csv(tmp_path / "c.csv", rows), "p", "truth", ["scanner"])
    assert cases.flow.received == 300
    assert cases.flow.excluded == {NO_SCORE: 2, NO_LABEL: 1}
    assert cases.n == 297
    assert cases.uids[0] == "1.2.3"
    res = validate_cases(cases, subgroups=["scanner"])
    assert res["case_flow"] == {"received": 300, "excluded": {NO_SCORE: 2, NO_LABEL: 1}, "analysed": 297}
    assert res["auc"] == pytest.approx(roc_auc_score(y[3:], s[3:]), abs=1e-4)  # scores rounded to 5 decimals


def test_csv_errors_name_row_column_and_value(tmp_path: Path) -> None:
    rows = [{"uid": "1", "p": "0.3", "y": "1"}, {"uid": "2", "p": "high", "y": "0"}]
    with pytest.raises(CaseTableError, match=r"row 3: score column 'p' has 'high', expected a number"):
        read_cases_csv(write_csv(tmp_path / "a.csv", rows), "p", "y")
    rows[1] = {"uid": "2", "p": "0.2", "y": "yes"}
    with pytest.raises(
        CaseTableError, match=r"row 3: label column 'y' has 'yes', expected 0 \(negative\) or 1"
    ):
        read_cases_csv(write_csv(tmp_path / "b.csv", rows), "p", "y")
    with pytest.raises(CaseTableError, match=r"column\(s\) 'score' not found; the file has 'uid', 'p', 'y'"):
        read_cases_csv(tmp_path / "b.csv", "score", "y")


def test_records_with_exclusion_reasons() -> None:
    recs = [
        CaseRecord("1.1", 0.9, 1, {"sex": "F"}),
        CaseRecord("1.2", 0.1, 0, {"sex": "M"}),
        CaseRecord("1.3", None, None, {"sex": "F"}, exclusion="not applicable: lateral view"),
    ]
    cases = CaseSet.from_records(recs, ["sex"])
    assert cases.flow.excluded == {"not applicable: lateral view": 1}
    assert cases.attributes["sex"] == ("F", "M")
