"""Routing by intended use: adult PA/AP chests go to the model; lateral and paediatric ones are skipped with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from radgate.config import Settings
from radgate.db import Database
from radgate.models import Manifest, add_model
from radgate.routing import (
    AgeRange,
    DeploymentError,
    DeploymentSpec,
    Equals,
    OneOf,
    Range,
    Regex,
    RuleError,
    age_in_years,
    decide,
    deployment_history,
    effective_rules,
    evaluate_rules,
    features_from_dataset,
    get_deployment,
    intended_use_rules,
    list_deployments,
    load_deployments_file,
    parse_deployments,
    rule_from_dict,
    set_mode,
    sync_deployments,
)
from tests.test_engine_support import build_package, make_dx, manifest_dict

MANIFEST = Manifest.from_dict(manifest_dict())
RULES = intended_use_rules(MANIFEST.intended_use)


def _route(**kwargs: object) -> tuple[bool, str]:
    return evaluate_rules(RULES, features_from_dataset(make_dx(**kwargs)))  # type: ignore[arg-type]


def test_adult_pa_and_ap_chests_match() -> None:
    for view in ("PA", "AP"):
        ok, reason = _route(view=view, age="045Y")
        assert ok, reason
        assert reason.startswith("fits Modality in CR, DX")


def test_lateral_is_skipped_with_reason() -> None:
    assert _route(view="LL") == (False, "ViewPosition LL is not in PA, AP")


def test_paediatric_is_skipped_with_reason() -> None:
    assert _route(age="009Y") == (False, "age 9Y outside 18–120")
    assert _route(age="006M") == (False, "age 6M outside 18–120")


def test_every_failed_rule_is_listed() -> None:
    ok, reason = _route(view="LATERAL", age="004Y", body_part="ABDOMEN")
    assert not ok
    assert reason == "BodyPartExamined ABDOMEN is not in CHEST; ViewPosition LATERAL is not in PA, AP; age 4Y outside 18–120"


def test_other_modality_names_its_sop_class() -> None:
    features = features_from_dataset(make_dx(modality="CT"))
    features["SOPClassUID"] = "1.2.840.10008.5.1.4.1.1.2"
    ok, reason = evaluate_rules(RULES, features)
    assert not ok
    assert "Modality CT is not in CR, DX" in reason
    assert "SOPClassUID 1.2.840.10008.5.1.4.1.1.2 (CT Image Storage) is not in" in reason


def test_missing_age_fails_unless_allowed() -> None:
    features = features_from_dataset(make_dx(age=None))
    assert AgeRange(18, 120).check(features) == "PatientAge is missing (expected an age in 18–120)"
    assert AgeRange(18, 120, missing="pass").check(features) is None


def test_age_from_birth_date_when_no_patient_age() -> None:
    # Born 2016-06-15, studied 2026-01-01: 9 whole years.
    features = {"PatientBirthDate": "20160615", "StudyDate": "20260101"}
    assert age_in_years(features) == 9.0
    assert AgeRange(18, 120).check(features) == "age 9Y outside 18–120"
    assert age_in_years({"PatientAge": "010W"}) == pytest.approx(70 / 365.25)


def test_rule_kinds_from_toml_tables() -> None:
    features = {"Modality": "DX", "SeriesDescription": "Chest PA erect", "KVP": 125.0, "PatientAge": 30.0}
    assert rule_from_dict({"attribute": "Modality", "equals": "dx"}).check(features) is None  # case-insensitive
    assert rule_from_dict({"attribute": "SeriesDescription", "regex": "(?i)chest"}).check(features) is None
    assert rule_from_dict({"attribute": "KVP", "min": 60, "max": 110}).check(features) == "KVP 125 outside 60–110"
    assert isinstance(rule_from_dict({"attribute": "PatientAge", "min": 16}), AgeRange)
    assert Regex("SeriesDescription", "LAT").check(features) == "SeriesDescription 'Chest PA erect' does not match /LAT/"
    assert Equals("Modality", "CR").check(features) == "Modality DX is not CR"
    assert OneOf("Modality", ("CR",)).to_dict() == {"attribute": "Modality", "one_of": ["CR"], "missing": "fail"}
    assert Range("KVP", max=150).describe() == "KVP in up to 150"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"attribute": "ViewPositon", "one_of": ["PA"]}, "'ViewPositon' is not a DICOM keyword"),
        ({"attribute": "KVP", "min": 100, "max": 50}, "min 100 is above max 50"),
        ({"attribute": "SeriesDescription", "regex": "("}, "regex '(' is invalid"),
        ({"attribute": "Modality", "equals": "DX", "one_of": ["CR"]}, "expected exactly one of"),
        ({"attribute": "Modality", "equal": "DX"}, "unknown key(s) equal"),
    ],
)
def test_bad_rules_are_explained(table: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError) as info:
        rule_from_dict(table, "deployments[0].rules[0]")
    assert message in str(info.value)


def test_overrides_replace_intended_use_rules_by_attribute() -> None:
    rules = effective_rules(MANIFEST, [AgeRange(16, 120)], drop=["BodyPartExamined"])
    attributes = [r.attribute for r in rules]
    assert "BodyPartExamined" not in attributes and attributes.count("PatientAge") == 1
    features = features_from_dataset(make_dx(age="017Y", body_part=""))
    assert evaluate_rules(rules, features)[0]
    assert not evaluate_rules(RULES, features)[0]


CONFIG = """
site = "st-elsewhere"

[[deployments]]
name = "ptx-triage"
model = "tiny-ptx"
version = "1.0.0"
mode = "silent"
destinations = ["PACS@127.0.0.1:11112"]
drop_rules = ["BodyPartExamined"]
rules = [{ attribute = "PatientAge", min = 16, max = 120 }]
"""


def test_deployments_from_config_file(tmp_path: Path) -> None:
    path = tmp_path / "radgate.toml"
    path.write_text(CONFIG, encoding="utf-8")
    [spec] = load_deployments_file(path, default_site="st-elsewhere")
    assert (spec.name, spec.model, spec.version, spec.mode, spec.site) == (
        "ptx-triage", "tiny-ptx", "1.0.0", "silent", "st-elsewhere")
    assert spec.destinations == ("PACS@127.0.0.1:11112",) and spec.drop_rules == ("BodyPartExamined",)
    assert spec.rules == (AgeRange(16, 120),)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{"name": "a", "model": "m", "version": "1", "mode": "on"}], "mode is 'on'; expected one of off, silent, shadow, live"),
        ([{"name": "a", "model": "m"}], "has no 'version'"),
        ([{"name": "a", "model": "m", "version": "1", "modes": "off"}], "unknown key(s) modes"),
        ([{"name": "a", "model": "m", "version": "1"}] * 2, "appears twice"),
    ],
)
def test_bad_deployments_are_explained(raw: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DeploymentError) as info:
        parse_deployments(raw)
    assert message in str(info.value)


def _install(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)


def test_sync_set_mode_and_audit(tmp_path: Path, settings: Settings, db: Database) -> None:
    _install(tmp_path, settings, db)
    spec = DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="silent")
    with db.session() as s:
        assert sync_deployments(s, [spec]) == ["created ptx (tiny-ptx 1.0.0, silent)"]
        assert sync_deployments(s, [spec]) == []  # unchanged config: nothing to do
    with db.session() as s:
        set_mode(s, "ptx", "live", changed_by="dr.lee", note="silent trial passed")
    with db.session() as s:
        assert sync_deployments(s, [spec]) == []  # a restart with the same config keeps the run-time mode
        assert get_deployment(s, "ptx").mode == "live"
        history = deployment_history(s, "ptx")
    assert [(h.field, h.old_value, h.new_value, h.changed_by) for h in history] == [
        ("created", None, history[0].new_value, "config"),
        ("mode", "silent", "live", "dr.lee"),
    ]
    assert history[1].note == "silent trial passed" and history[1].at >= history[0].at
    with db.session() as s:
        changes = sync_deployments(s, [DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="off")])
        assert changes == ["ptx: mode live -> off"]
        assert sync_deployments(s, []) == []  # already off: removing it from the config changes nothing more
        assert [d.mode for d in list_deployments(s)] == ["off"]


def test_unknown_model_and_double_deployment_are_refused(tmp_path: Path, settings: Settings, db: Database) -> None:
    _install(tmp_path, settings, db)
    with db.session() as s, pytest.raises(DeploymentError, match="No model named 'other'"):
        sync_deployments(s, [DeploymentSpec("x", "other", "1.0.0")])
    with db.session() as s:  # one model version at two sites: two deployments, each with its own results
        sync_deployments(s, [DeploymentSpec("a", "tiny-ptx", "1.0.0", site="north"),
                             DeploymentSpec("b", "tiny-ptx", "1.0.0", site="south", mode="shadow")])
        assert [(d.name, d.site, d.mode) for d in list_deployments(s)] == [("a", "north", "silent"),
                                                                           ("b", "south", "shadow")]
    with db.session() as s, pytest.raises(DeploymentError, match="mode 'on' is not one of"):
        sync_deployments(s, [DeploymentSpec("a", "tiny-ptx", "1.0.0")])
        set_mode(s, "a", "on", changed_by="x")


def test_decide_records_off_deployments_too(tmp_path: Path, settings: Settings, db: Database) -> None:
    _install(tmp_path, settings, db)
    with db.session() as s:
        sync_deployments(s, [DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="off")])
        deployment = get_deployment(s, "ptx")
    decision = decide(features_from_dataset(make_dx(view="LL")), deployment)
    assert (decision.decision, decision.reason) == ("off", "deployment is off (and ViewPosition LL is not in PA, AP)")


def test_a_series_of_unfit_images_names_each_failed_rule_once() -> None:
    """A child's PA + lateral series: the lateral fails on view and age, the PA on age alone.

    The demo's routing table showed "age 9Y outside 18–120" twice in one cell (each instance's reasons
    joined whole); each failed rule is named once, in the order first met.
    """
    from datetime import UTC, datetime

    from radgate.routing.deployment import Deployment
    from radgate.routing.router import decide_series

    now = datetime.now(UTC)
    deployment = Deployment(
        id=1, name="d", model_version_id=1, model_name=MANIFEST.model.name, model_version=MANIFEST.model.version,
        site="s", mode="live", destinations=(), overrides=(), drop_rules=(), manifest=MANIFEST,
        created_at=now, updated_at=now, rules=tuple(RULES),
    )
    series = [
        ("1.2.3.1", features_from_dataset(make_dx(view="LL", age="009Y"))),  # type: ignore[arg-type]
        ("1.2.3.2", features_from_dataset(make_dx(view="PA", age="009Y"))),  # type: ignore[arg-type]
    ]
    decision = decide_series(series, deployment)
    assert decision.decision == "not_applicable"
    assert decision.reason == "ViewPosition LL is not in PA, AP; age 9Y outside 18–120"
