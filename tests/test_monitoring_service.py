"""Monitoring on simulated sites: a known change (new Agfa room from 2025-08) and a site without one.

The sites are written directly into the tables by :mod:`radgate.monitoring.simulate` (see
tests/helpers/monitoring.py): many months in seconds, with the truth of each month known.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from radgate.clock import utcnow
from radgate.config import MonitoringSettings
from radgate.db import Database, open_database
from radgate.errors import Conflict, Invalid, NotFound
from radgate.monitoring.alerts import AlertStatus, acknowledge, alert_lines, list_alerts, resolve
from radgate.monitoring.periods import PeriodUnit, parse_period
from radgate.monitoring.rules import BUILTIN_RULES, MonitoringRule, load_rules
from radgate.monitoring.service import MonitoringSummary, analyse, run_monitoring
from radgate.monitoring.simulate import simulate_site
from radgate.monitoring.tables import AlertDeliveryRow
from radgate.routing.tables import DeploymentChange
from tests.helpers.monitoring import demo_site, receiver, steady_site

UNTIL = dt.date(2026, 2, 28)
SOUND = {name for name, cls in BUILTIN_RULES.items() if cls.sound}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Database:
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('mon') / 'demo.sqlite'}")
    simulate_site(db, demo_site(), seed=1)
    return db


@pytest.fixture(scope="module")
def demo_summary(demo_db: Database) -> MonitoringSummary:
    return analyse(demo_db, MonitoringSettings(), UNTIL)


def test_new_scanner_is_named_in_the_month_it_arrives(demo_summary: MonitoringSummary) -> None:
    (dep,) = demo_summary.deployments
    scanner = [f for f in dep.findings if f.rule == "new_scanner"]
    assert len(scanner) == 1
    assert scanner[0].period == "2025-08"
    assert "Agfa DX-D 600" in scanner[0].summary and scanner[0].scope.startswith("scanner:Agfa")
    assert scanner[0].detected_on == dt.date(2025, 8, 1)  # the first Agfa study of the plan
    drift: dict[str, str] = {}
    for f in dep.findings:
        if f.rule == "input_drift":
            drift[f.scope] = min(f.period, drift.get(f.scope, f.period))
    assert drift["feature:Manufacturer"] == "2025-08"
    assert drift["feature:PhotometricInterpretation"] == "2025-08"  # Agfa is MONOCHROME2


def test_no_sound_rule_fires_before_the_change(demo_summary: MonitoringSummary) -> None:
    (dep,) = demo_summary.deployments
    early = [f for f in dep.findings if f.rule in SOUND and f.period < "2025-08"]
    assert early == []
    # The new room's images are flagged more often: a performance rule fires from the change on.
    performance = sorted(f.period for f in dep.findings if f.rule in {"cusum_specificity", "auc_drop_ci"})
    assert performance and "2025-08" <= performance[0] <= "2025-09"  # within a month of the change


def test_periods_baseline_and_metrics(demo_summary: MonitoringSummary) -> None:
    (dep,) = demo_summary.deployments
    assert [m.period for m in dep.periods][:3] == ["2025-01", "2025-02", "2025-03"]
    assert dep.baseline["source"] == "first periods" and dep.baseline["n"] == 360
    m = dep.periods[0]
    assert m.n == 120 and m.n_positive + m.n_negative == m.n_labelled
    assert m.auc is not None and m.auc_ci is not None and m.auc_ci[0] < m.auc < m.auc_ci[1]
    assert m.sensitivity_ci is not None and m.fp_per_tp == pytest.approx(m.false_positives / m.true_positives)
    scanners = {g.group for g in dep.breakdown if g.group_by == "scanner" and g.period == "2025-09"}
    assert "Agfa DX-D 600" in scanners
    assert {g.group_by for g in dep.breakdown} == {"scanner", "ViewPosition", "PatientSex", "AgeBand"}
    assert MonitoringSummary.from_json(demo_summary.to_json()).deployments[0].periods[0] == m


def test_until_sees_only_what_had_arrived(demo_db: Database) -> None:
    summary = analyse(demo_db, MonitoringSettings(), dt.date(2025, 8, 15))
    (dep,) = summary.deployments
    assert dep.periods[-1].period == "2025-08"
    assert all(f.detected_on <= dt.date(2025, 8, 15) for f in dep.findings if f.rule == "new_scanner")
    july = next(m for m in dep.periods if m.period == "2025-07")
    assert july.n_labelled < july.n  # labels arrive 30 days after the study


def test_steady_site_raises_no_sound_alert(tmp_path: Path) -> None:
    """One fixed no-change site. The sound rules are designed for well under one false alarm per rule and
    deployment-year, not for none: bench/monitoring.py measures the rates over many such sites."""
    db = open_database(f"sqlite:///{tmp_path / 'steady.sqlite'}")
    simulate_site(db, steady_site(months=12, per_month=200), seed=3)
    run = run_monitoring(db, MonitoringSettings(), until=dt.date(2025, 2, 28))
    assert [a for a in run.opened if a.rule in SOUND] == []


def test_alerts_once_per_key_then_ack_and_resolve(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    simulate_site(db, demo_site(), seed=1)
    settings = MonitoringSettings(rules=["new_scanner", "input_drift"])
    first = run_monitoring(db, settings, until=UNTIL)
    assert first.opened and not first.updated
    lines = alert_lines(first.opened)
    assert any(
        line.startswith("new_scanner [scanner:Agfa | DX-D 600") and "fired in 2025-08" in line
        for line in lines
    )
    keys = [(a.rule, a.deployment, a.scope) for a in first.opened]
    assert len(keys) == len(set(keys))
    again = run_monitoring(db, settings, until=UNTIL)
    assert again.opened == [] and again.updated == []  # same months: nothing new
    alert = next(a for a in first.opened if a.rule == "new_scanner")
    with pytest.raises(Invalid, match="note is required"):
        acknowledge(db, alert.id, "  ", "director", settings)
    acked = acknowledge(db, alert.id, "Agfa room 3 commissioned; checking", "director", settings)
    assert acked.status is AlertStatus.ACKNOWLEDGED and acked.acknowledged_by == "director"
    with pytest.raises(Conflict):
        acknowledge(db, alert.id, "again", "director", settings)
    done = resolve(db, alert.id, "validated locally", "director", settings)
    assert done.status is AlertStatus.RESOLVED
    with pytest.raises(Conflict, match="already resolved"):
        resolve(db, alert.id, "again", "director", settings)
    with pytest.raises(NotFound):
        resolve(db, 9999, "x", "director", settings)
    # Resolved covers the months it saw: the same data opens nothing new for it.
    assert run_monitoring(db, settings, until=UNTIL).opened == []
    assert [a.id for a in list_alerts(db, AlertStatus.RESOLVED)] == [alert.id]


def test_webhook_is_signed_and_retried_after_a_500(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'hook.sqlite'}")
    simulate_site(db, demo_site(), seed=1)
    with receiver(fail_first=1) as hook:
        settings = MonitoringSettings(
            rules=["new_scanner"], webhook_url=hook.url, webhook_secret="s3cret", webhook_backoff_s=0.5
        )
        now = utcnow()
        run = run_monitoring(db, settings, until=UNTIL, now=now)
        assert len(run.opened) == 1 and len(hook.requests) == 1  # answered 500
        with db.session() as s:
            (row,) = s.query(AlertDeliveryRow).all()
            assert (row.status, row.attempts) == ("pending", 1) and "500" in (row.last_error or "")
        from radgate.monitoring.webhook import deliver_pending

        assert deliver_pending(db, settings, now=now) == 0  # not due before the backoff
        assert deliver_pending(db, settings, now=now + dt.timedelta(seconds=1)) == 1
        assert len(hook.requests) == 2
    request = hook.requests[-1]
    expected = "sha256=" + hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Radgate-Signature"], expected)
    payload = json.loads(request["body"])
    assert payload["event"] == "opened"
    assert {"rule", "deployment", "scope", "period", "opened_at", "status", "detail"} <= set(payload["alert"])
    assert payload["alert"]["rule"] == "new_scanner"
    with db.session() as s:
        assert s.query(AlertDeliveryRow).one().status == "delivered"


def test_go_live_validation_is_the_baseline(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'golive.sqlite'}")
    simulate_site(db, demo_site(), seed=2, silent_until=dt.date(2025, 3, 1))
    with db.session() as s:
        s.add(
            DeploymentChange(
                at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                deployment="demo-ptx",
                field="mode",
                old_value="silent",
                new_value="live",
                changed_by="director",
            )
        )
    # read_deployments lists deployments rows; without one the go-live is unknown, so add it.
    _add_deployment_row(db)
    summary = analyse(db, MonitoringSettings(), UNTIL)
    (dep,) = summary.deployments
    assert dep.baseline["source"] == "go-live validation"
    assert dep.baseline["end"] < "2025-03-01" and dep.baseline["n"] == sum(
        m.n for m in dep.periods if m.period < "2025-03"
    )
    configured = analyse(db, MonitoringSettings(reference_period="2025-01..2025-04"), UNTIL).deployments[0]
    assert configured.baseline["source"] == "configured reference period" and configured.baseline["n"] == 480


def _add_deployment_row(db: Database) -> None:
    from radgate.models.tables import ModelVersion
    from radgate.routing.tables import DeploymentRow

    now = dt.datetime(2025, 1, 1)
    with db.session() as s:
        mv = ModelVersion(
            name="demo-ptx",
            version="1.0.0",
            task="triage",
            description="simulated",
            synthetic=True,
            sha256="0" * 64,
            path="/nonexistent",
            source="test",
            manifest="",
            registered_at=now,
            registered_by="test",
        )
        s.add(mv)
        s.flush()
        s.add(
            DeploymentRow(
                name="demo-ptx",
                model_version_id=mv.id,
                model_name="demo-ptx",
                model_version="1.0.0",
                site="demo-site",
                mode="live",
                rules="[]",
                drop_rules="[]",
                destinations="[]",
                created_at=now,
                updated_at=now,
            )
        )


def test_weeks_and_quarters(demo_db: Database) -> None:
    weekly = analyse(demo_db, MonitoringSettings(period="week", rules=["new_scanner"]), UNTIL)
    assert weekly.deployments[0].periods[0].period == "2025-W01"
    (finding,) = weekly.deployments[0].findings
    assert finding.period == "2025-W31"  # 2025-08-01 is a Friday of ISO week 31
    quarterly = analyse(demo_db, MonitoringSettings(period="quarter", reference_periods=1), UNTIL)
    assert [m.period for m in quarterly.deployments[0].periods][:2] == ["2025-Q1", "2025-Q2"]
    assert parse_period("2025-09-30", PeriodUnit.MONTH).key == "2025-09"
    with pytest.raises(Invalid, match="2025-09"):
        parse_period("Sept", PeriodUnit.MONTH)


def test_plugin_rules_load_like_builtins(demo_db: Database) -> None:
    settings = MonitoringSettings(
        rules=["every_period"], plugins=["tests.helpers.monitoring:EveryPeriodRule"]
    )
    (rule,) = load_rules(settings)
    assert isinstance(rule, MonitoringRule)
    assert all(isinstance(cls(MonitoringSettings()), MonitoringRule) for cls in BUILTIN_RULES.values())
    summary = analyse(demo_db, settings, UNTIL)
    assert [f.period for f in summary.deployments[0].findings][0] == "2025-04"
    with pytest.raises(Invalid, match="known rules"):
        load_rules(MonitoringSettings(rules=["nope"]))


def test_periodic_service_runs_and_stops(tmp_path: Path) -> None:
    import time

    from radgate.config import load_settings
    from radgate.monitoring.service import MonitoringService
    from radgate.monitoring.tables import MonitoringRunRow

    settings = load_settings(data_dir=tmp_path / "data", environ={}, monitoring__interval_s=3600.0)
    db = open_database(settings.database_url)
    simulate_site(db, steady_site(months=4, per_month=50), seed=1)
    service = MonitoringService(db, settings)
    service.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.session() as s:
                if s.query(MonitoringRunRow).count():
                    break
            time.sleep(0.2)
    finally:
        service.stop()
    with db.session() as s:
        assert s.query(MonitoringRunRow).count() == 1  # one run per interval, not per wake-up


def test_run_and_alerts_on_both_backends(any_db_url: str) -> None:
    db = open_database(any_db_url)
    scenario = demo_site().with_total(480)  # 40 a month; the Agfa room still from 2025-08
    simulate_site(db, scenario, seed=4)
    settings = MonitoringSettings(rules=["new_scanner", "output_drift"])
    run = run_monitoring(db, settings, until=UNTIL)
    scanner = [a for a in run.opened if a.rule == "new_scanner"]
    assert len(scanner) == 1 and scanner[0].period == "2025-08"
    assert run_monitoring(db, settings, until=UNTIL).opened == []
    resolved = resolve(db, scanner[0].id, "checked", "director", settings)
    assert resolved.status is AlertStatus.RESOLVED and resolved.resolved_at is not None
    assert resolved.resolved_at.tzinfo is not None
    db.dispose()
