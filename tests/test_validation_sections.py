"""Typed validation results: `validation_summary` returns dataclasses (the report's validation section), and
the report's HTML, PDF and validation.json are rendered from one section model (`ReportSections`).

The statistics are checked against pROC/statsmodels in test_validation_metrics.py; here: the typed model is
what the renderers read, and its JSON is the `validate --json` contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.metrics import (
    Confusion,
    SubgroupLevel,
    ValidationSummary,
    validate_cases,
    validate_table,
    validation_summary,
    validation_summary_cases,
)
from radgate.validation.report import ReportContext, build_report
from radgate.validation.sections import CalibrationSection, ConfounderSection, ReportSections, pdf_lines


def _data(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = 1 / (1 + np.exp(-(1.4 * y + rng.normal(size=n) - 0.8)))
    vendor = [str(v) for v in rng.choice(["A", "B"], size=n)]
    other = np.clip(s + rng.normal(scale=0.2, size=n), 0, 1)
    return y, s, vendor, other


def test_the_summary_is_typed_and_its_json_is_the_validate_contract() -> None:
    y, s, vendor, other = _data()
    summary = validation_summary(s, y, 0.5, subgroups={"vendor": vendor}, other_scores=other,
                                 compare_column="v2")
    assert isinstance(summary, ValidationSummary) and isinstance(summary.confusion, Confusion)
    assert isinstance(summary.subgroups["vendor"]["A"], SubgroupLevel)
    c = summary.confusion
    assert c.tp + c.fn == summary.n_positive == int(y.sum()) and c.fp + c.tn == summary.n_negative
    assert summary.comparison is not None and summary.comparison.column == "v2"
    as_json = summary.to_json()
    assert as_json == validate_table(s, y, 0.5, subgroups={"vendor": vendor}, other_scores=other,
                                     compare_column="v2")
    json.dumps(as_json, allow_nan=False)
    assert list(as_json)[:4] == ["n", "n_positive", "n_negative", "auc"]
    assert as_json["confusion"] == {"tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn}
    assert as_json["subgroups"]["vendor"]["B"]["auc"] == summary.subgroups["vendor"]["B"].auc
    assert as_json["comparison"]["mcnemar_sensitivity"]["b"] == summary.comparison.mcnemar_sensitivity.b
    assert "case_flow" not in as_json and "note" not in as_json["comparison"]


def test_cases_carry_their_case_flow() -> None:
    y, s, vendor, _ = _data()
    records = [CaseRecord(f"1.{i}", float(s[i]), int(y[i]), {"vendor": vendor[i]}) for i in range(len(y))]
    records.append(CaseRecord("1.x", None, None, {"vendor": "A"}, exclusion="not applicable: lateral"))
    cases = CaseSet.from_records(records, ["vendor"])
    summary = validation_summary_cases(cases, 0.5, subgroups=["vendor"])
    assert summary.case_flow is not None and summary.case_flow.received == len(y) + 1
    assert summary.to_json() == validate_cases(cases, 0.5, subgroups=["vendor"])
    assert summary.to_json()["case_flow"]["excluded"] == {"not applicable: lateral": 1}


def test_html_pdf_and_json_render_one_section_model(tmp_path: Path) -> None:
    y, s, vendor, _ = _data(600)
    records = [CaseRecord(f"2.25.{i}", float(s[i]), int(y[i]), {"Manufacturer": vendor[i]}) for i in range(600)]
    files = build_report(
        CaseSet.from_records(records, ["Manufacturer"]), tmp_path, ReportContext(model_name="m", site="north"),
        threshold=0.5, subgroups=["Manufacturer"],
    )
    sections = files.sections
    assert isinstance(sections, ReportSections)
    assert isinstance(sections.calibration, CalibrationSection)
    assert all(isinstance(c, ConfounderSection) for c in sections.confounders)
    assert files.report == sections.to_json() == json.loads(files.json.read_text())
    v = sections.validation
    html = files.html.read_text()
    text = "\n".join(line for _, line in pdf_lines(sections, "", ""))
    auc = f"{v.auc:.3f}"
    assert f"AUC <b>{auc}</b>" in html and f"AUC {auc} (DeLong" in text
    for level, sub in v.subgroups["Manufacturer"].items():
        assert f"Manufacturer = {level}" in html and f"Manufacturer = {level}: n {sub.n}" in text
    for row in sections.calibration.rows:
        assert f"<td>{row.name}</td>" in html and f"{row.name}: Brier {row.brier:.4f}" in text
    assert f"TP {v.confusion.tp}" in html and f"TP {v.confusion.tp} " in text
    assert len(sections.false_negatives) == v.confusion.fn


def test_criteria_read_the_typed_summary() -> None:
    from radgate.validation.criteria import AcceptanceCriteria, evaluate_criteria

    y, s, vendor, _ = _data(800)
    criteria = AcceptanceCriteria.from_text(
        '[analysis]\nthreshold = 0.5\nsubgroups = ["vendor"]\nmin_positives_per_subgroup = 50\n'
        'min_negatives_per_subgroup = 50\n[criteria]\nmin_positives = 100\nauc_min = 0.6\n'
        "sensitivity_min = 0.4\n"
    )
    summary = validation_summary(s, y, 0.5, subgroups={"vendor": vendor}, min_positives=50, min_negatives=50)
    typed = evaluate_criteria(summary, criteria)
    assert typed == evaluate_criteria(summary.to_json(), criteria)
    auc = next(r for r in typed.results if r.key == "auc_min")
    assert auc.ci is not None and auc.ci[0] == summary.auc_ci[0]
