"""Settings sources without the schema (radgate.config_sources): the light commands' four keys read exactly as
radgate.config.load_settings reads them, from every source; anything the light reader cannot vouch for goes
to the schema, whose error names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from radgate.config import SECTIONS, ConfigError, Settings, load_settings
from radgate.config_sources import (
    DEFAULT_DATA_DIR,
    SECTION_NAMES,
    LightSettings,
    light_settings,
)


def test_section_names_are_the_schemas() -> None:
    assert tuple(SECTIONS) == SECTION_NAMES


def test_defaults_are_the_schemas() -> None:
    light = light_settings(environ={})
    settings = Settings()
    assert light is not None
    assert (light.data_dir, light.log_level, light.log_format) == (
        settings.data_dir,
        settings.log_level,
        settings.log_format,
    )
    assert light.data_dir == DEFAULT_DATA_DIR and light.database_url == settings.database_url


def _cases(tmp_path: Path) -> list[tuple[Path | None, Path | None, dict[str, str]]]:
    toml = tmp_path / "site.toml"
    toml.write_text('data_dir = "from-file"\nlog_format = "json"\n[database]\nurl = "postgresql+psycopg://db/x"\n')
    in_dir = tmp_path / "dd"
    in_dir.mkdir()
    (in_dir / "radgate.toml").write_text('log_level = "DEBUG"\n')
    return [
        (None, None, {}),
        (None, tmp_path / "flag", {}),
        (None, None, {"RADGATE_DATA_DIR": str(tmp_path / "env")}),
        (None, tmp_path / "flag", {"RADGATE_DATA_DIR": str(tmp_path / "env")}),  # the flag wins
        (toml, None, {}),
        (toml, None, {"RADGATE_DATABASE_URL": "sqlite:////tmp/other.sqlite", "RADGATE_LOG_FORMAT": "human"}),
        (None, None, {"RADGATE_CONFIG": str(toml)}),
        (None, in_dir, {}),  # DATA_DIR/radgate.toml is read
        (None, None, {"RADGATE_DATA_DIR": str(in_dir), "RADGATE_LOG_LEVEL": "ERROR"}),
    ]


def test_light_settings_agree_with_the_schema_for_every_source(tmp_path: Path) -> None:
    for config, data_dir, environ in _cases(tmp_path):
        light = light_settings(config, data_dir, environ)
        full = load_settings(config=config, data_dir=data_dir, environ=environ)
        assert light is not None, (config, data_dir, environ)
        got = (light.data_dir, light.database_url, light.log_level, light.log_format)
        assert got == (full.data_dir, full.database_url, full.log_level, full.log_format), (config, environ)
        assert light.full() == full


def test_what_the_light_reader_cannot_vouch_for_goes_to_the_schema(tmp_path: Path) -> None:
    cases = {
        'log_format = "xml"\n': "log_format is 'xml'",
        "log_level = 3\n": "'log_level' must be str",
        "database = 1\n": "'database' must be a table",
        '[database]\nurl = ["a"]\n': "'database.url' must be str",
    }
    for text, message in cases.items():
        toml = tmp_path / "bad.toml"
        toml.write_text(text)
        assert light_settings(toml, tmp_path, {}) is None, text
        with pytest.raises(ConfigError, match=message):
            load_settings(config=toml, data_dir=tmp_path, environ={})


def test_a_missing_or_broken_config_file_is_the_same_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[database\n")
    for path in (tmp_path / "absent.toml", broken):
        with pytest.raises(ConfigError) as light_error:
            light_settings(path, tmp_path, {})
        with pytest.raises(ConfigError) as full_error:
            load_settings(config=path, data_dir=tmp_path, environ={})
        assert str(light_error.value) == str(full_error.value)


def test_a_typo_elsewhere_is_left_to_the_commands_that_read_it(tmp_path: Path) -> None:
    """A listing reads four keys; `full()` (the SQLAlchemy path, every other command) still refuses it."""
    toml = tmp_path / "typo.toml"
    toml.write_text("[server]\ndicom_prot = 1\n")
    light = light_settings(toml, tmp_path, {})
    assert isinstance(light, LightSettings)
    with pytest.raises(ConfigError, match="Unknown setting 'server.dicom_prot'"):
        light.full()
