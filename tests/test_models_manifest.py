"""The manifest: valid by construction, errors that name the key, the value and what was expected."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from radgate.models import Manifest, ManifestError
from tests.test_engine_support import manifest_dict


def test_round_trip_through_toml() -> None:
    manifest = Manifest.from_dict(manifest_dict())
    again = Manifest.from_toml(manifest.to_toml())
    assert again == manifest
    assert again.intended_use.views == ("PA", "AP")
    assert again.explanation.method == "cam" and again.explanation.output == "cam"
    assert [op.name for op in again.operating_points] == ["high-sensitivity", "balanced"]
    assert again.primary.code.value == "36118008"


def test_no_cam_output_means_occlusion() -> None:
    manifest = Manifest.from_dict(manifest_dict(with_cam=False))
    assert manifest.explanation.method == "occlusion"
    assert (manifest.explanation.patch, manifest.explanation.stride) == (32, 16)


def _error(mutate: Callable[[dict[str, Any]], object]) -> str:
    raw = copy.deepcopy(manifest_dict())
    mutate(raw)
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(raw)
    return str(info.value)


def test_wrong_task_names_key_value_and_choices() -> None:
    message = _error(lambda m: m["model"].__setitem__("task", "screening"))
    assert "model.task" in message and "'screening'" in message and "'triage'" in message


def test_bad_version_and_name() -> None:
    assert "model.version" in _error(lambda m: m["model"].__setitem__("version", "v1"))
    assert "model.name" in _error(lambda m: m["model"].__setitem__("name", "Bad Name"))


def test_age_range_must_be_ordered() -> None:
    message = _error(lambda m: m["intended_use"].update(age_min=60, age_max=18))
    assert "intended_use.age_min" in message and "60" in message


def test_finding_output_must_exist() -> None:
    message = _error(lambda m: m["findings"][0].__setitem__("output", "prob"))
    assert "findings[pneumothorax].output" in message and "'prob'" in message and "probability" in message


def test_probability_threshold_in_unit_interval() -> None:
    message = _error(lambda m: m["operating_points"][0].__setitem__("threshold", 1.5))
    assert "threshold" in message and "1.5" in message


def test_unknown_key_is_refused() -> None:
    message = _error(lambda m: m["preprocessing"].__setitem__("heigth", 10))
    assert "'heigth'" in message and "[preprocessing]" in message


def test_sha256_must_be_hex() -> None:
    message = _error(lambda m: m["weights"].__setitem__("sha256", "abc"))
    assert "weights.sha256" in message and "64" in message


def test_missing_section() -> None:
    assert "intended_use" in _error(lambda m: m.pop("intended_use"))


def test_cam_explanation_needs_cam_output() -> None:
    message = _error(lambda m: m.__setitem__("explanation", {"method": "cam", "output": "probability"}))
    assert "explanation.output" in message and "class_activation_map" in message


def test_invalid_toml_is_reported() -> None:
    with pytest.raises(ManifestError, match="not valid TOML"):
        Manifest.from_toml("schema_version = = 1")
