"""The policy stage: one Decision per result; validated subgroups, incidental findings, operating points."""

from __future__ import annotations

import pytest

from radgate.errors import Invalid
from radgate.models import Manifest
from radgate.policy import (
    IncidentalRule,
    InstanceScores,
    Mode,
    PolicyContext,
    Release,
    ThresholdSource,
    ValidatedSubgroups,
    choose_operating_point,
    decide,
    urgency,
)
from tests.helpers.models import manifest_with

TWO_FINDINGS = manifest_with(
    findings=[
        {"name": "pneumothorax", "output": "probability",
         "code": {"scheme": "SCT", "value": "36118008", "meaning": "Pneumothorax"}},
        {"name": "nodule", "output": "nodule_probability",
         "code": {"scheme": "SCT", "value": "27925004", "meaning": "Nodule"}},
    ],
    outputs={
        "probability": {"kind": "probability", "meaning": "P(pneumothorax)", "calibrated": False},
        "nodule_probability": {"kind": "probability", "meaning": "P(nodule)", "calibrated": False},
        "cam": {"kind": "class_activation_map"},
    },
    validated_subgroups={"Manufacturer": ["SIEMENS"], "ViewPosition": ["PA", "AP"]},
)


def _context(mode: Mode = Mode.LIVE, incidental: IncidentalRule = IncidentalRule.REVIEW_ONLY,
             local: tuple[tuple[str, str, str], ...] = (), op: str | None = None) -> PolicyContext:
    manifest = Manifest.from_dict(TWO_FINDINGS)
    point, source = choose_operating_point(manifest, op)
    return PolicyContext(
        deployment="ptx", site="north", mode=mode, manifest=manifest, operating_point=point,
        threshold_source=source, declared_findings=frozenset({"pneumothorax"}), incidental=incidental,
        subgroups=ValidatedSubgroups.build(manifest.validated_subgroups, local),
    )


def _image(uid: str, ptx: float, nodule: float = 0.1, manufacturer: str = "SIEMENS",
           view: str = "PA") -> InstanceScores:
    return InstanceScores(uid, {"pneumothorax": ptx, "nodule": nodule},
                          {"Manufacturer": manufacturer, "ViewPosition": view})


def test_live_result_inside_the_validated_subgroups_is_released_with_its_urgency() -> None:
    d = decide(_context(), [_image("1.1", 0.2), _image("1.2", 0.9)])
    assert d.release is Release.RELEASED and d.released
    assert (d.score, d.SOPInstanceUID, d.used_instances) == (0.9, "1.2", ("1.1", "1.2"))  # max over the images
    # the model's first operating point for the primary finding: high-sensitivity, 0.3
    assert (d.operating_point, d.threshold, d.threshold_source) == ("high-sensitivity", 0.3, ThresholdSource.MODEL)
    assert d.flag and d.flags == {"high-sensitivity": True, "balanced": True}
    assert d.urgency == pytest.approx(0.5 + 0.5 * 0.9)


def test_live_result_outside_the_validated_subgroups_is_withheld_with_the_reason() -> None:
    d = decide(_context(), [_image("1.1", 0.95, manufacturer="GE Healthcare")])
    assert d.release is Release.WITHHELD and not d.released
    assert d.reason == "Manufacturer GE Healthcare not in validated SIEMENS"
    assert d.urgency == 0.0 and d.findings_sent == ()  # never sent, never ranked
    missing = decide(_context(), [InstanceScores("1.3", {"pneumothorax": 0.9, "nodule": 0.1}, {"ViewPosition": "PA"})])
    assert missing.release is Release.WITHHELD and "Manufacturer unknown" in missing.reason


def test_a_subgroup_validated_at_the_site_widens_the_model_card() -> None:
    local = (("Manufacturer", "GE Healthcare", "north"),)
    d = decide(_context(local=local), [_image("1.1", 0.95, manufacturer="GE Healthcare")])
    assert d.release is Release.RELEASED
    # a local validation of an attribute the model card does not constrain adds no restriction
    extra = (("PatientSex", "F", "north"),)
    assert decide(_context(local=extra), [_image("1.1", 0.95)]).release is Release.RELEASED


@pytest.mark.parametrize(("mode", "release"), [(Mode.SILENT, Release.SILENT), (Mode.SHADOW, Release.SHADOW)])
def test_silent_and_shadow_results_are_never_released(mode: Mode, release: Release) -> None:
    d = decide(_context(mode=mode), [_image("1.1", 0.99)])
    assert d.release is release and d.urgency == 0.0 and d.findings_sent == ()
    assert d.flag  # still scored and flagged, for the trial and the comparison


@pytest.mark.parametrize(
    ("rule", "sent", "reviewable"),
    [(IncidentalRule.REPORT, True, True), (IncidentalRule.SUPPRESS, False, False),
     (IncidentalRule.REVIEW_ONLY, False, True)],
)
def test_incidental_findings_follow_the_deployment_rule(rule: IncidentalRule, sent: bool, reviewable: bool) -> None:
    d = decide(_context(incidental=rule), [_image("1.1", 0.9, nodule=0.8)])
    by_name = {f.name: f for f in d.findings}
    assert by_name["pneumothorax"].declared and by_name["pneumothorax"].sent
    nodule = by_name["nodule"]
    assert not nodule.declared and nodule.disposition is rule
    assert (nodule.sent, nodule.reviewable) == (sent, reviewable)
    assert {f.name for f in d.findings_sent} == ({"pneumothorax", "nodule"} if sent else {"pneumothorax"})


def test_deployment_operating_point_and_unknown_one() -> None:
    d = decide(_context(op="balanced"), [_image("1.1", 0.4)])
    assert (d.threshold, d.threshold_source, d.flag) == (0.5, ThresholdSource.DEPLOYMENT, False)
    assert d.flags == {"high-sensitivity": True, "balanced": False}
    with pytest.raises(Invalid, match="operating point 'strict' is not in model tiny-ptx 1.0.0; known: high-sensitivity, balanced"):
        _context(op="strict")


def test_urgency_orders_flagged_released_results_only() -> None:
    assert urgency(Release.RELEASED, True, 0.6) < urgency(Release.RELEASED, True, 0.9) <= 1.0
    assert urgency(Release.RELEASED, False, 0.99) == 0.0
    assert urgency(Release.WITHHELD, True, 0.99) == 0.0


def test_mode_parse_names_the_allowed_values() -> None:
    assert Mode.parse("shadow") is Mode.SHADOW
    with pytest.raises(Invalid, match="mode is 'loud'; expected one of off, silent, shadow, live"):
        Mode.parse("loud")
