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


# -- the pydantic schema keeps the one-line errors: full key, value, what was expected --------------------


def test_nested_error_names_the_full_key() -> None:
    message = _error(lambda m: m["findings"][0]["code"].__setitem__("value", "x" * 70))
    assert message.startswith("manifest key 'findings[0].code.value' is 'xxx")
    assert "at most 64 characters" in message and message.count("manifest key") == 1


def test_types_are_strict_not_converted() -> None:
    assert _error(lambda m: m["preprocessing"].__setitem__("height", "512")) == (
        "manifest key 'preprocessing.height' is '512'; expected an integer."
    )
    assert _error(lambda m: m["model"].__setitem__("synthetic_training_data", 1)) == (
        "manifest key 'model.synthetic_training_data' is 1; expected true or false."
    )
    assert "expected a string in quotes" in _error(lambda m: m["model"].__setitem__("version", 1.0))
    assert "finite number" in _error(lambda m: m["operating_points"][0].__setitem__("threshold", float("nan")))


def test_single_table_where_an_array_is_expected() -> None:
    message = _error(lambda m: m.__setitem__("findings", {"name": "x"}))
    assert "'findings'" in message and "an array of tables ([[findings]])" in message
    assert "at least one [[findings]] table" in _error(lambda m: m.__setitem__("findings", []))


def test_unknown_key_in_a_nested_table_and_at_top() -> None:
    message = _error(lambda m: m["findings"][0]["code"].__setitem__("colour", 1))
    assert message == "manifest has unknown key(s) 'colour' in [findings[0].code]; expected only scheme, value, meaning."
    assert "in the top level" in _error(lambda m: m.__setitem__("colour", 1))
    assert "'name'" in _error(lambda m: m["outputs"]["probability"].__setitem__("name", "p"))


def test_missing_keys_listed_in_one_line() -> None:
    message = _error(lambda m: [m["model"].pop(k) for k in ("task", "licence")])
    assert message == "manifest keys 'model.task', 'model.licence' are missing."
    assert "'schema_version' is missing" in _error(lambda m: m.pop("schema_version"))


def test_error_names_the_file(tmp_path: Any) -> None:
    from tests.test_engine_support import build_package

    pkg = build_package(tmp_path / "pkg")
    path = pkg / "manifest.toml"
    path.write_text(path.read_text().replace('task = "triage"', 'task = "screening"'))
    with pytest.raises(ManifestError) as info:
        Manifest.load(path)
    assert str(info.value).startswith(f"{path}: manifest key 'model.task' is 'screening'")
    assert "\n" not in str(info.value)


def test_constructors_raise_manifest_error_with_the_key() -> None:
    from radgate.models import Code, Preprocessing

    with pytest.raises(ManifestError, match=r"'preprocessing.height' is 2; expected an integer in \[8, 4096\]"):
        Preprocessing(height=2, width=64)
    with pytest.raises(ManifestError, match="'code.value' is ''; expected a non-empty string"):
        Code("SCT", "", "Pneumothorax")
    assert Code("SCT", "36118008", "Pneumothorax").value == "36118008"


# -- parsed once per text: the registry row's manifest is read on every series' path ----------------------


def test_same_text_is_parsed_once_and_errors_still_name_each_source(tmp_path: Any) -> None:
    text = Manifest.from_dict(manifest_dict()).to_toml()
    first = Manifest.from_toml(text)
    assert Manifest.from_toml(text) is first  # immutable (frozen), so one parsed object serves every reader
    assert Manifest.from_toml(text, source="a/manifest.toml") is first
    other = Manifest.from_toml(text.replace('task = "triage"', 'task = "diagnostic"'))
    assert other is not first and other.model.task == "diagnostic"
    bad = text.replace('task = "triage"', 'task = "screening"')
    for source in ("a/manifest.toml", "b/manifest.toml"):  # a failure is not cached under another name
        with pytest.raises(ManifestError) as info:
            Manifest.from_toml(bad, source=source)
        assert str(info.value).startswith(f"{source}: manifest key 'model.task' is 'screening'")
