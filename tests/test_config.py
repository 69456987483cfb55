"""Settings: every key documented, TOML and environment overrides, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from radgate.config import ConfigError, iter_keys, load_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))
    keys = {key for key, _ in iter_keys()}
    assert keys - documented == set(), f"undocumented settings: {sorted(keys - documented)}"
    assert documented - keys == set(), f"documented settings that do not exist: {sorted(documented - keys)}"


def test_toml_env_and_override_order(tmp_path: Path) -> None:
    cfg = tmp_path / "radgate.toml"
    cfg.write_text('site = "north"\n[server]\ndicom_port = 11113\nallow_ae = ["PACS@127.0.0.1"]\n')
    s = load_settings(config=cfg, environ={})
    assert (s.site, s.server.dicom_port, s.server.allow_ae) == ("north", 11113, ["PACS@127.0.0.1"])
    s = load_settings(
        config=cfg, environ={"RADGATE_SERVER_DICOM_PORT": "2000", "RADGATE_SERVER_ALLOW_AE": "A,B"}
    )
    assert (s.server.dicom_port, s.server.allow_ae) == (2000, ["A", "B"])
    s = load_settings(config=cfg, environ={"RADGATE_SERVER_DICOM_PORT": "2000"}, server__dicom_port=3000)
    assert s.server.dicom_port == 3000
    s = load_settings(environ={"RADGATE_CONFIG": str(cfg), "RADGATE_DATA_DIR": str(tmp_path / "d")})
    assert s.site == "north" and s.data_dir == tmp_path / "d"


def test_data_dir_config_is_found(tmp_path: Path) -> None:
    (tmp_path / "radgate.toml").write_text('site = "in-data-dir"\n')
    assert load_settings(data_dir=tmp_path, environ={}).site == "in-data-dir"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\ndicom_port = 'abc'\n", "server.dicom_port' must be int"),
        ("[server]\nbogus = 1\n", "Unknown setting 'server.bogus'"),
        ("[assembly]\nincomplete_policy = 'maybe'\n", "expected one of"),
        ("[server]\ndicom_port = 70000\n", "expected 0-65535"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_errors_name_key_and_expectation(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config=cfg, environ={})


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config=tmp_path / "nope.toml", environ={})


def test_the_example_config_loads_and_its_deployments_parse() -> None:
    from radgate.routing import parse_deployments

    example = DOC.parent / "radgate.example.toml"
    settings = load_settings(config=example, environ={})
    assert settings.site == "north-hospital" and settings.server.allow_ae[0] == "PACS@10.0.0.5"
    [spec] = parse_deployments(settings.deployments, settings.site)
    assert (spec.name, spec.mode, spec.site) == ("ptx-triage", "silent", "north-hospital")
