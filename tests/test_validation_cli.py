"""The validation commands through Typer's CliRunner: validate, plan, truth import, trial start/evaluate, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import radgate.cli.validation  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from tests.helpers.datadir import make_data_dir

runner = CliRunner()

CRITERIA = """
[analysis]
threshold = 0.5
prevalence = 0.02
subgroups = ["Manufacturer"]

[criteria]
min_positives = 100
min_negatives = 100
auc_min = 0.75
sensitivity_ci_lower_min = 0.5
"""


@pytest.fixture
def cases_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    path = tmp_path / "cases.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "score", "label", "challenger", "Manufacturer"])
        for i in range(700):
            y = int(rng.random() < 0.35)
            z = 1.5 * y + rng.normal()
            w.writerow(
                [
                    f"1.2.840.9.{i}",
                    f"{1 / (1 + np.exp(-(z - 0.7))):.5f}",
                    y,
                    f"{1 / (1 + np.exp(-(0.7 * z + 0.6 * rng.normal() - 0.5))):.5f}",
                    rng.choice(["A", "B"]),
                ]
            )
        w.writerow(["1.2.840.9.999", "", "1", "", "A"])  # a failed case
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_validate_json_contract(cases_csv: Path, tmp_path: Path) -> None:
    code, out = invoke(
        "validate",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--subgroup",
        "Manufacturer",
        "--compare",
        "challenger",
        "--prevalence",
        "0.02",
        "--threshold",
        "0.5",
        "--json",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert code == 0, out
    res = json.loads(out)
    for key in (
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
    ):
        assert key in res, key
    for key in (
        "n",
        "n_positive",
        "n_negative",
        "auc",
        "auc_ci",
        "sensitivity",
        "specificity",
        "insufficient",
    ):
        assert key in res["subgroups"]["Manufacturer"]["A"], key
    for key in ("auc_other", "auc_difference", "difference_ci", "z", "p"):
        assert key in res["comparison"], key
    data = list(csv.DictReader(cases_csv.open()))[:-1]
    y = np.array([int(r["label"]) for r in data])
    s = np.array([float(r["score"]) for r in data])
    assert res["n"] == 700 and res["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert res["case_flow"]["excluded"] == {"failed: no score": 1}
    assert res["prevalence"] == 0.02 and res["threshold"] == 0.5


def test_validate_table_output_and_errors(cases_csv: Path, tmp_path: Path) -> None:
    code, out = invoke(
        "validate",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert code == 0, out
    assert "AUC" in out and "Sensitivity" in out and "DeLong" in out
    code, out = invoke(
        "validate",
        str(cases_csv),
        "--score-col",
        "prob",
        "--label-col",
        "label",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert code == 1
    assert "column(s) 'prob' not found" in out


def test_plan_seed_example() -> None:
    code, out = invoke(
        "plan",
        "--prevalence",
        "0.001",
        "--sensitivity",
        "1",
        "--specificity",
        "0.99",
        "--volume",
        "1000",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["fp_per_tp"] == pytest.approx(9.99)  # about ten FP per TP, as the seed says
    code, out = invoke(
        "plan", "--prevalence", "0.001", "--sensitivity", "1", "--specificity", "0.99", "--volume", "1000"
    )
    assert code == 0 and "9.99" in out and "Warning" in out


def test_truth_import_feeds_validate_without_label_column(cases_csv: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader(cases_csv.open()))
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "label", "source", "date"])
        for r in rows[:650]:
            w.writerow([r["StudyInstanceUID"], r["label"], "radiologist", "2026-01-15"])
    data = str(make_data_dir(tmp_path / "data"))
    code, out = invoke("truth", "import", str(truth), "--data-dir", data)
    assert code == 0, out
    assert "650 new" in out
    code, out = invoke("validate", str(cases_csv), "--score-col", "score", "--json", "--data-dir", data)
    assert code == 0, out
    res = json.loads(out)
    assert res["n"] == 650
    assert res["case_flow"]["excluded"] == {"no reference label": 50, "failed: no score": 1}


def test_trial_start_evaluate_and_changed_criteria(cases_csv: Path, tmp_path: Path) -> None:
    data = str(make_data_dir(tmp_path / "data"))
    crit = tmp_path / "criteria.toml"
    crit.write_text(CRITERIA)
    code, out = invoke(
        "trial", "start", "--criteria", str(crit), "--model", "demo-ptx", "--name", "t1", "--data-dir", data
    )
    assert code == 0, out
    assert "Trial t1 started" in out
    code, out = invoke(
        "trial",
        "evaluate",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--trial",
        "t1",
        "--json",
        "--data-dir",
        data,
    )
    assert code == 0, out
    ev = json.loads(out)
    assert ev["recommendation"] == "go live"
    assert ev["flags"] == []
    assert {c["outcome"] for c in ev["criteria"]} == {"pass"}
    assert all(
        c["ci"] is not None
        for c in ev["criteria"]
        if c["key"] != "min_positives" and c["key"] != "min_negatives"
    )
    crit.write_text(CRITERIA.replace("auc_min = 0.75", "auc_min = 0.6"))
    code, out = invoke(
        "trial",
        "evaluate",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--trial",
        "t1",
        "--data-dir",
        data,
    )
    assert code == 0, out
    assert "criteria changed after the trial started" in out
    assert "GO LIVE" in out
    code, out = invoke(
        "trial",
        "evaluate",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--data-dir",
        data,
    )
    assert code == 2 and "--trial NAME" in out


def test_report_validation_writes_html_and_pdf(cases_csv: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    crit = tmp_path / "criteria.toml"
    crit.write_text(CRITERIA)
    code, out = invoke(
        "report",
        "validation",
        "--out",
        str(out_dir),
        "--csv",
        str(cases_csv),
        "--score-col",
        "score",
        "--label-col",
        "label",
        "--criteria",
        str(crit),
        "--model-name",
        "demo-ptx",
        "--synthetic",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert code == 0, out
    html = (out_dir / "validation-report.html").read_text()
    assert "Synthetic demo model — not for clinical use" in html
    assert "Recommendation: go live" in html
    assert (out_dir / "validation-report.pdf").read_bytes().startswith(b"%PDF-")
