"""Settings: every key documented, TOML and environment overrides, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from radgate.config import ConfigError, iter_keys, load_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", text, flags=re.M))
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


def test_errors_name_the_file_the_variable_or_the_flag(tmp_path: Path) -> None:
    """One line naming where the bad value came from: the file, the environment variable, the command line."""
    cfg = tmp_path / "site.toml"
    cfg.write_text("[server]\ndicom_port = 'abc'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config=cfg, environ={})
    assert str(info.value) == f"{cfg}: Setting 'server.dicom_port' must be int, got 'abc'."
    cfg.write_text("[server]\nbogus = 1\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(cfg))}: Unknown setting 'server.bogus'"):
        load_settings(config=cfg, environ={})
    cfg.write_text("[server]\nhttp_port = 1\n")
    with pytest.raises(ConfigError, match=r"^RADGATE_SERVER_HTTP_PORT: Setting 'server.http_port' must be int"):
        load_settings(config=cfg, environ={"RADGATE_SERVER_HTTP_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"^RADGATE_SERVER_HTTP_PORT: server.http_port is 70000"):
        load_settings(config=cfg, environ={"RADGATE_SERVER_HTTP_PORT": "70000"})
    with pytest.raises(ConfigError, match=r"^command line \(server.dicom_port\): server.dicom_port is -1"):
        load_settings(environ={}, server__dicom_port=-1)
    cfg.write_text("server = 3\n")
    with pytest.raises(ConfigError, match=r"Setting 'server' must be a table \(\[server\]\), got 3"):
        load_settings(config=cfg, environ={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\ndicom_port = true\n", "'server.dicom_port' must be int, got True"),  # not 1
        ("site = 3\n", "'site' must be str, got 3"),
        ("[server]\nallow_ae = 'PACS'\n", "'server.allow_ae' must be a list of strings, got 'PACS'"),
        ("log_format = 'xml'\n", "log_format is 'xml'; expected one of ['human', 'json']"),
        ("[monitoring]\nperiod = 'day'\n", "monitoring.period is 'day'; expected one of"),
        ("deployments = 3\n", "'deployments' must be an array of tables ([[deployments]]), got 3"),
        ("data_dir = 3\n", "'data_dir' must be a path (a string), got 3"),
    ],
)
def test_types_are_checked_strictly(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config=cfg, environ={})


def test_environment_strings_become_typed_values(tmp_path: Path) -> None:
    s = load_settings(
        environ={
            "RADGATE_INGEST_FSYNC": "off",
            "RADGATE_ASSEMBLY_QUIET_PERIOD_S": "2.5",
            "RADGATE_INFERENCE_PROVIDERS": "CPUExecutionProvider",
            "RADGATE_LOG_FORMAT": "json",
        }
    )
    assert (s.ingest.fsync, s.assembly.quiet_period_s, s.inference.providers, s.log_format) == (
        False, 2.5, ["CPUExecutionProvider"], "json"
    )


def test_the_default_http_port_is_no_common_pacs_or_viewer_port() -> None:
    from radgate.config import DEFAULT_HTTP_PORT, Settings

    assert Settings().server.http_port == DEFAULT_HTTP_PORT
    # Orthanc HTTP/DICOM, dcm4chee/Tomcat, OHIF, DICOM, PostgreSQL, development servers
    assert DEFAULT_HTTP_PORT not in {8042, 4242, 8080, 8443, 3000, 104, 11112, 5432, 8000, 5000}
