"""The policy stage in the running pipeline: per-instance routing, withheld results, shadow beside live,
the go-live gate, and the go-live report keyed by deployment."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import radgate.cli.engine  # noqa: F401  (registers the commands)
import radgate.cli.validation  # noqa: F401
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import (
    Engine,
    EngineOptions,
    Job,
    Prediction,
    RoutingDecisionRow,
    enqueue_for_series,
    export_csv,
)
from radgate.errors import Invalid
from radgate.policy.service import record_local_validation
from radgate.policy.tables import PublishIntent
from radgate.results.sink import ResultsWorker
from radgate.results.tables import OutboxItem
from radgate.routing import DeploymentSpec, get_deployment
from radgate.routing.tables import DeploymentChange
from radgate.validation.from_db import cases_from_database
from tests.helpers.models import deploy, install, manifest_with
from tests.test_engine_support import index_series, make_dx

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)
SIEMENS_ONLY = manifest_with(validated_subgroups={"Manufacturer": ["SIEMENS"], "ViewPosition": ["PA", "AP"]})


def _dx(manufacturer: str = "SIEMENS", **kwargs: object):  # type: ignore[no-untyped-def]
    ds = make_dx(**kwargs)  # type: ignore[arg-type]
    ds.Manufacturer = manufacturer
    return ds


def _series(db: Database, settings: Settings, *datasets) -> str:  # type: ignore[no-untyped-def]
    uid = index_series(db, settings, list(datasets))
    with db.session() as s:
        enqueue_for_series(s, uid)
    return uid


def _publish(settings: Settings, db: Database) -> ResultsWorker:
    worker = ResultsWorker(settings, db)
    worker.publish_once()
    return worker


def _rows(db: Database, model):  # type: ignore[no-untyped-def]
    with db.session() as s:
        rows = list(s.scalars(select(model).order_by(model.id)))
        s.expunge_all()
    return rows


def test_mixed_view_series_reaches_the_model_with_its_pa_image_only(tmp_path: Path, settings: Settings,
                                                                     db: Database) -> None:
    """Defect: routing looked at the first instance only and the engine ran every instance, so the lateral
    image of a PA + lateral series reached a PA/AP model."""
    install(tmp_path, settings, db, SIEMENS_ONLY)
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent"))
    series = make_dx(view="LL").SeriesInstanceUID
    study = make_dx().StudyInstanceUID
    lateral = _dx(view="LL", bright_lesion=True, SeriesInstanceUID=series, StudyInstanceUID=study)
    pa = _dx(view="PA", SeriesInstanceUID=series, StudyInstanceUID=study)
    lateral.InstanceNumber, pa.InstanceNumber = 1, 2  # the lateral first: what routing used to look at
    uid = _series(db, settings, lateral, pa)
    Engine(settings, db, options=FAST).run_until_idle(30)
    [prediction] = _rows(db, Prediction)
    assert json.loads(prediction.used_instances) == [pa.SOPInstanceUID]
    assert prediction.SOPInstanceUID == pa.SOPInstanceUID and prediction.num_images == 1
    assert prediction.score < 0.1  # the bright lesion is on the lateral image, which the model never saw
    [decision] = _rows(db, RoutingDecisionRow)
    assert decision.decision == "matched"
    assert f"{lateral.SOPInstanceUID}: ViewPosition LL is not in PA, AP" in decision.reason
    instances = {i["SOPInstanceUID"]: i for i in json.loads(decision.instances)}
    assert instances[lateral.SOPInstanceUID]["applicable"] is False
    assert instances[pa.SOPInstanceUID]["applicable"] is True
    with db.session() as s:
        [row] = list(csv.DictReader(io.StringIO(str(export_csv(s)))))
    assert row["SeriesInstanceUID"] == uid and row["used_instances"] == pa.SOPInstanceUID
    assert row["policy"] == "silent" and row["threshold_source"] == "model operating point"


def test_live_result_outside_the_validated_subgroups_is_withheld_and_never_sent(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    install(tmp_path, settings, db, SIEMENS_ONLY)
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live"))
    inside = _series(db, settings, _dx("SIEMENS", bright_lesion=True))
    outside = _series(db, settings, _dx("GE Healthcare", bright_lesion=True))
    Engine(settings, db, options=FAST).run_until_idle(30)
    _publish(settings, db)
    by_series = {p.SeriesInstanceUID: p for p in _rows(db, Prediction)}
    assert by_series[inside].policy == "released" and by_series[inside].flag
    withheld = by_series[outside]
    assert withheld.policy == "withheld" and withheld.urgency == 0.0
    assert withheld.policy_reason == "Manufacturer GE Healthcare not in validated SIEMENS"
    intents = _rows(db, PublishIntent)
    assert [i.prediction_id for i in intents] == [by_series[inside].id] and intents[0].status == "done"
    outbox = _rows(db, OutboxItem)
    assert outbox and {o.result_key.split("/")[0] for o in outbox} == {inside}  # the withheld one never leaves
    with db.session() as s:
        rows = {r["SeriesInstanceUID"]: r for r in csv.DictReader(io.StringIO(str(export_csv(s))))}
    assert (rows[outside]["policy"], rows[outside]["policy_reason"]) == (
        "withheld", "Manufacturer GE Healthcare not in validated SIEMENS")


def test_subgroup_validated_locally_at_the_site_is_released(tmp_path: Path, settings: Settings,
                                                            db: Database) -> None:
    install(tmp_path, settings, db, SIEMENS_ONLY)
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live", site="north"))
    with db.session() as s:
        d = get_deployment(s, "ptx")
        assert record_local_validation(s, d, "Manufacturer", "GE Healthcare", 99, 500, auc=0.9,
                                       recorded_by="t", source="test") is None  # too few positives
        assert record_local_validation(s, d, "Manufacturer", "GE Healthcare", 120, 400, auc=0.91,
                                       recorded_by="t", source="test") is not None
    uid = _series(db, settings, _dx("GE Healthcare", bright_lesion=True))
    Engine(settings, db, options=FAST).run_until_idle(30)
    [p] = _rows(db, Prediction)
    assert p.SeriesInstanceUID == uid and p.policy == "released" and p.site == "north"
    assert [i.prediction_id for i in _rows(db, PublishIntent)] == [p.id]


def test_shadow_challenger_beside_the_live_champion_on_the_same_series(tmp_path: Path, settings: Settings,
                                                                        db: Database) -> None:
    install(tmp_path, settings, db, SIEMENS_ONLY)
    install(tmp_path, settings, db, manifest_with(model={**SIEMENS_ONLY["model"], "version": "2.0.0"},
                                                  validated_subgroups=SIEMENS_ONLY["validated_subgroups"]))
    deploy(db, DeploymentSpec("champion", "tiny-ptx", "1.0.0", mode="live"),
           DeploymentSpec("challenger", "tiny-ptx", "2.0.0", mode="shadow"),
           DeploymentSpec("champion-copy", "tiny-ptx", "1.0.0", mode="shadow"))  # same version, two deployments
    uid = _series(db, settings, _dx(bright_lesion=True))
    Engine(settings, db, options=FAST).run_until_idle(30)
    _publish(settings, db)
    results = {p.deployment: p for p in _rows(db, Prediction)}
    assert set(results) == {"champion", "challenger", "champion-copy"}
    assert {d: p.SeriesInstanceUID for d, p in results.items()} == dict.fromkeys(results, uid)
    assert {d: p.policy for d, p in results.items()} == {
        "champion": "released", "challenger": "shadow", "champion-copy": "shadow"}
    assert results["champion"].score == pytest.approx(results["champion-copy"].score)
    assert [i.prediction_id for i in _rows(db, PublishIntent)] == [results["champion"].id]
    assert len(_rows(db, Job)) == 3  # one job per series x deployment
    assert {o.result_key.split("/")[1] for o in _rows(db, OutboxItem)} == {"champion"}


def test_readiness_refuses_live_and_an_override_is_recorded(tmp_path: Path, settings: Settings,
                                                            db: Database) -> None:
    install(tmp_path, settings, db, SIEMENS_ONLY)
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent"))
    _series(db, settings, _dx(bright_lesion=True))
    Engine(settings, db, options=FAST).run_until_idle(30)
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    result = runner.invoke(app, ["readiness", "ptx", "--json", *data])
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.stdout)
    assert verdict["deployment"] == "ptx" and verdict["ready"] is False
    checks = {c["name"]: c for c in verdict["checks"]}
    assert list(checks) == ["protocol_stability", "prevalence", "sample_size", "subgroup_coverage",
                            "silent_trial", "vendor_claims", "reference_standard"]
    assert all({"name", "ok", "detail"} <= set(c) for c in checks.values())
    assert checks["sample_size"]["ok"] is False and checks["sample_size"]["positives"] == 0
    assert checks["subgroup_coverage"]["ok"] is True and checks["subgroup_coverage"]["outside"] == 0
    assert "no silent trial registered" in checks["silent_trial"]["detail"]

    refused = runner.invoke(app, ["deployments", "set-mode", "ptx", "live", *data, "--by", "dr.lee"])
    assert refused.exit_code == 1 and "not ready to go live" in refused.output
    assert "sample_size" in refused.output and "--override" in refused.output
    with db.session() as s:
        assert get_deployment(s, "ptx").mode == "silent"  # nothing changed
    done = runner.invoke(app, ["deployments", "set-mode", "ptx", "live", *data, "--by", "dr.lee",
                               "--override", "pilot approved by the AI committee, 2026-11-30"])
    assert done.exit_code == 0 and "now live" in done.output, done.output
    assert "Readiness overridden" in done.output
    changes = _rows(db, DeploymentChange)
    override = next(c for c in changes if c.field == "readiness_override")
    assert override.changed_by == "dr.lee" and override.note == "pilot approved by the AI committee, 2026-11-30"
    assert "sample_size" in (override.new_value or "") and override.at.tzinfo is not None
    assert any(c.field == "mode" and c.new_value == "live" for c in changes)


def test_report_from_the_database_never_mixes_deployments(tmp_path: Path, settings: Settings,
                                                          db: Database) -> None:
    """Defect: predictions were keyed by series alone, so a report mixed model versions and sites."""
    install(tmp_path, settings, db, SIEMENS_ONLY)
    install(tmp_path, settings, db, manifest_with(model={**SIEMENS_ONLY["model"], "version": "2.0.0"}))
    deploy(db, DeploymentSpec("v1", "tiny-ptx", "1.0.0", mode="silent", site="north"),
           DeploymentSpec("v2", "tiny-ptx", "2.0.0", mode="shadow", site="south"))
    for bright in (True, False, True):
        _series(db, settings, _dx(bright_lesion=bright))
    Engine(settings, db, options=FAST).run_until_idle(30)
    with pytest.raises(Invalid, match="several deployments: v1 .*v2 .*choose one with --deployment"):
        cases_from_database(db, "tiny-ptx")
    cases = cases_from_database(db, "tiny-ptx", deployment="v2")
    assert cases.source == "database: deployment v2 (tiny-ptx 2.0.0, site south)"
    assert cases.flow.received == 3
    v1 = cases_from_database(db, "tiny-ptx", "1.0.0")
    assert v1.source == "database: deployment v1 (tiny-ptx 1.0.0, site north)"


def test_validate_and_report_use_one_threshold_rule(tmp_path: Path, settings: Settings, db: Database) -> None:
    """Defect: `validate` defaulted to 0.5 while `report validation` used the model's operating point and
    called it "given". One rule now: --threshold, else the deployment's operating point, else 0.5, and the
    output says which."""
    install(tmp_path, settings, db, SIEMENS_ONLY)
    deploy(db, DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent", operating_point="high-sensitivity"))
    uids = [_series(db, settings, _dx(bright_lesion=b)) for b in (True, False, True, False, False)]
    Engine(settings, db, options=FAST).run_until_idle(30)
    labels = tmp_path / "labels.csv"
    labels.write_text("SeriesInstanceUID,label\n" + "".join(f"{u},{int(i in (0, 2))}\n" for i, u in enumerate(uids)))
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    assert runner.invoke(app, ["truth", "import", str(labels), "--source", "radiologist", *data]).exit_code == 0
    export = tmp_path / "predictions.csv"
    assert runner.invoke(app, ["predictions", "export", "--format", "csv", "--out", str(export), *data]).exit_code == 0
    from radgate.audit.tables import AuditEntry

    [exported] = [e for e in _rows(db, AuditEntry) if e.action == "predictions.export"]  # exports are audited
    assert exported.actor.startswith("cli:") and json.loads(exported.detail)["rows"] == 5

    def validate(*extra: str) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(app, ["validate", str(export), "--score-col", "score", "--uid-col",
                                     "SeriesInstanceUID", "--json", *extra, *data])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    from_export = validate()
    assert (from_export["threshold"], from_export["threshold_source"]) == (0.3, "deployment operating point")
    given = validate("--threshold", "0.7")
    assert (given["threshold"], given["threshold_source"]) == (0.7, "given")
    plain = tmp_path / "plain.csv"  # a CSV from elsewhere: no operating point known
    plain.write_text("uid,score,label\n" + "".join(f"u{i},{i / 10},{i % 2}\n" for i in range(10)))
    result = runner.invoke(app, ["validate", str(plain), "--score-col", "score", "--label-col", "label",
                                 "--json", *data])
    assert json.loads(result.stdout)["threshold_source"] == "default"

    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "validation", "--out", str(out), "--deployment", "ptx", *data])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "validation.json").read_text())
    assert report["validation"]["threshold"] == 0.3
    assert report["validation"]["threshold_source"] == "deployment operating point"
    assert report["context"]["deployment"] == "ptx" and report["context"]["model_version"] == "1.0.0"
    assert "Deployment" in (out / "validation-report.html").read_text()
