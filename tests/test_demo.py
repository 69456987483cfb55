"""``radgate demo`` (``make demo``): the year at the synthetic site, its monthly monitoring and the alerts in
its summary.

The demo site (``demo-site``) gets a new Agfa DR room from month 8 (2025-08); the scenario, not the test, puts
it there, so the new-scanner alert must name Agfa in the 2025-08 run and no earlier.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from radgate.cli import demo as demo_cli
from radgate.demo import TRUTH_LAG_DAYS, DemoReport, run_demo

# The demo runs a gateway over a synthetic year: minutes on a loaded two-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    return run_demo(tmp_path_factory.mktemp("demo") / "data", studies=36, seed=2026)


def test_the_year_is_sent_and_scored(report: DemoReport) -> None:
    assert report.months == [f"2025-{m:02d}" for m in range(1, 13)]
    assert report.stored == report.images and report.rejected == 0 and report.failed_jobs == 0
    assert report.predictions > report.silent_predictions > 0
    assert [m.period for m in report.monthly] == report.months


def test_new_scanner_alert_in_the_month_the_agfa_room_arrives(report: DemoReport) -> None:
    scanner = [(month, line) for month, line in report.alerts if line.startswith("new_scanner")]
    assert scanner, report.alerts
    month, line = scanner[0]
    assert month == "2025-08" and "Agfa" in line and "fired in 2025-08" in line
    assert all(m >= "2025-08" for m, _ in scanner)
    drift = [(m, line) for m, line in report.alerts if line.startswith("input_drift [feature:Manufacturer]")]
    assert drift and drift[0][0] >= "2025-08" and "new values: Agfa" in drift[0][1]


def test_ground_truth_arrives_with_its_lag(report: DemoReport) -> None:
    # The December run (until 2025-12-31) cannot see labels of December's studies: they arrive
    # TRUTH_LAG_DAYS (30) days after each study.
    assert TRUTH_LAG_DAYS >= 30
    december = report.monthly[-1]
    assert december.n > 0 and december.n_labelled == 0
    assert report.monthly[0].n_labelled == report.monthly[0].n_positive + report.monthly[0].n_negative > 0


def test_the_retraining_loop_queues_labels_trains_compares_and_decides(report: DemoReport) -> None:
    t = report.retraining
    assert t is not None and t.after == "2025-08"
    assert t.queued > 0 and t.labelled == t.queued
    assert t.method == "finetune" and t.version and t.trained_on >= t.labelled
    assert t.n_pairs > 0 and t.auc_champion is not None and t.auc_challenger is not None
    assert any(scanner.startswith("Agfa") for scanner, *_ in t.per_scanner)
    assert t.decision.startswith(("promoted", "not promoted"))


def test_summary_prints_the_alerts_and_the_months(report: DemoReport, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(demo_cli, "console", Console(file=out, width=200, highlight=False))
    demo_cli.print_report(report)
    text = out.getvalue()
    assert "Monitoring alerts: which fired, and in which month's run" in text
    assert "- run of 2025-08: new_scanner [scanner:Agfa | DX-D 600 | NX 23.0.9200 | -] fired in 2025-08" in text
    scoped = next(line for _, line in report.alerts if line.startswith("input_drift [feature:"))
    assert scoped in text  # the scope in brackets is printed, not taken for console markup
    for month in report.months:
        assert month in text
    assert "The retraining loop (after the 2025-08 alerts)" in text and "- decision: " in text
    assert "AUC per scanner, champion vs challenger" in text
    assert Path(report.data_dir).is_dir()
