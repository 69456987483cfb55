"""The go-live report: every section present, self-contained HTML, a real PDF, FN/FP lists matching the 2x2 table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.criteria import AcceptanceCriteria
from radgate.validation.report import SYNTHETIC_NOTICE, ReportContext, build_report, build_report_from_records
from radgate.validation.trial import evaluate_cases

SECTIONS = [
    "intended-use",
    "case-flow",
    "roc",
    "two-by-two",
    "accuracy",
    "calibration",
    "subgroups",
    "confounders",
    "errors",
    "criteria",
    "limitations",
    "software",
]


def records(n: int = 700, seed: int = 0) -> list[CaseRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vendor = str(rng.choice(["VendorA", "VendorB", "<b>Vendor&C</b>"], p=[0.5, 0.4, 0.1]))
        y = int(rng.random() < 0.35)
        z = 1.5 * y + rng.normal()
        out.append(
            CaseRecord(
                f"1.2.826.0.1.{i}", float(1 / (1 + np.exp(-(1.7 * z - 1.5)))), y, {"Manufacturer": vendor}
            )
        )
    out.append(
        CaseRecord(
            "1.2.826.0.1.99999",
            None,
            None,
            {"Manufacturer": "VendorA"},
            exclusion="not applicable: lateral view",
        )
    )
    return out


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    cases = CaseSet.from_records(records(), ["Manufacturer"])
    criteria = AcceptanceCriteria.from_text(
        '[trial]\nintended_use = "Adult chest radiographs"\n[analysis]\nthreshold = 0.45\nprevalence = 0.03\n'
        'subgroups = ["Manufacturer"]\n[criteria]\nmin_positives = 100\nauc_min = 0.8\n'
    )
    evaluation = evaluate_cases(cases, criteria)
    context = ReportContext(
        model_name="demo-ptx",
        model_version="1.2.0",
        model_sha256="ab" * 32,
        site="Synthetic Site",
        synthetic=True,
        volume_per_day=150,
    )
    build_report(cases, out, context, evaluation=evaluation)
    return out


def test_html_has_every_section_and_is_self_contained(report_dir: Path) -> None:
    html = (report_dir / "validation-report.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert SYNTHETIC_NOTICE in html
    assert "Adult chest radiographs" in html  # intended use from the criteria file
    assert "ab" * 32 in html and "1.2.0" in html and "Synthetic Site" in html
    assert (
        len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', html)) == 3
    )  # ROC, calibration, forest
    assert "<script" not in html and 'src="http' not in html
    assert "&lt;b&gt;Vendor&amp;C&lt;/b&gt;" in html and "<b>Vendor&C</b>" not in html  # escaped
    assert "not applicable: lateral view" in html
    assert "Recommendation:" in html


def test_pdf_is_a_multipage_pdf(report_dir: Path) -> None:
    data = (report_dir / "validation-report.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page\b", data)) >= 4  # text pages + ROC, calibration, forest


def test_fn_fp_lists_match_the_two_by_two_table(report_dir: Path) -> None:
    report = json.loads((report_dir / "validation.json").read_text())
    confusion = report["validation"]["confusion"]
    with (report_dir / "false-negatives.csv").open() as fh:
        fn_rows = list(csv.DictReader(fh))
    with (report_dir / "false-positives.csv").open() as fh:
        fp_rows = list(csv.DictReader(fh))
    assert len(fn_rows) == confusion["fn"] == len(report["false_negatives"])
    assert len(fp_rows) == confusion["fp"] == len(report["false_positives"])
    threshold = report["validation"]["threshold"]
    assert threshold == 0.45
    assert all(float(r["score"]) < threshold and r["label"] == "1" for r in fn_rows)
    assert all(float(r["score"]) >= threshold and r["label"] == "0" for r in fp_rows)


def test_report_numbers_cover_calibration_confounders_and_limitations(report_dir: Path) -> None:
    report = json.loads((report_dir / "validation.json").read_text())
    names = [row["name"] for row in report["calibration"]["rows"]]
    assert names == ["before", "Platt (cross-validated)", "isotonic (cross-validated)"]
    assert report["calibration"]["binning"] == "10 equal-width bins on [0, 1]"
    (conf,) = report["confounders"]
    assert conf["column"] == "Manufacturer" and conf["metadata_auc"] is not None
    assert report["criteria"]["recommendation"] in {"go live", "extend the trial", "do not deploy"}
    assert any("synthetic" in item for item in report["limitations"])
    assert report["burden"]["volume_per_day"] == 150
    assert report["case_flow"]["excluded"] == {"not applicable: lateral view": 1}
    assert set(report["software"]) >= {"radgate", "python", "numpy", "scipy", "matplotlib"}


def test_report_from_records_without_subgroups(tmp_path: Path) -> None:
    files = build_report_from_records(records(300, 1), [], tmp_path, context=ReportContext())
    html = files.html.read_text()
    assert SYNTHETIC_NOTICE not in html
    assert "No subgroup columns were given." in html
    assert "No acceptance criteria were evaluated" in html
