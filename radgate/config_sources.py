"""Where settings come from, before any schema: defaults < the TOML file < the environment < the command line.

:func:`gather` is the one place that decides which file is read, how ``RADGATE_<SECTION>_<KEY>`` variables
map onto keys, which source wins, and where each key came from (for error messages).
:func:`radgate.config.load_settings` validates what it gathers against the schema (pydantic models).

Read-only listings (``radgate series``, ``radgate models list``) need four keys of it: the data directory,
the database URL and the two log keys. :func:`light_settings` reads those from the same gathered values
and imports neither pydantic nor the schema, which together cost about 0.2 s of every such command's
start-up on a 2-core machine (``bench/startup.py``); :meth:`LightSettings.full` validates everything
when a command turns out to need more (PostgreSQL, a schema to explain). So a mistake in a key such a
listing never reads (a ``[server]`` typo) is reported by the next command that uses it, not by the listing.

This module imports only the standard library. The section names are declared again here (the schema
cannot be imported); ``tests/test_config_sources.py`` requires them to equal :data:`radgate.config.SECTIONS`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from radgate.errors import Invalid

if TYPE_CHECKING:
    from radgate.config import Settings

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_LOG_LEVEL",
    "ENV_PREFIX",
    "LOG_FORMATS",
    "SECTION_NAMES",
    "ConfigError",
    "DatabaseLocation",
    "Gathered",
    "LightSettings",
    "default_database_url",
    "gather",
    "light_settings",
]

ENV_PREFIX = "RADGATE_"
#: The ``[section]`` tables of the schema, by key (:data:`radgate.config.SECTIONS`).
SECTION_NAMES: tuple[str, ...] = (
    "database",
    "server",
    "ingest",
    "store",
    "assembly",
    "inference",
    "results",
    "policy",
    "monitoring",
    "auth",
    "tls",
)
DEFAULT_DATA_DIR = Path("radgate-data")
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LOG_FORMAT = "human"  # human: one line per event; json: one JSON object per line
LOG_FORMATS = ("human", "json")


class ConfigError(Invalid, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


def default_database_url(data_dir: Path) -> str:
    """The database when ``database.url`` is empty: SQLite (WAL) in the data directory."""
    return f"sqlite:///{(data_dir / 'radgate.sqlite').resolve()}"


class DatabaseLocation(Protocol):
    """Where a command's database is: what :class:`radgate.config.Settings` and :class:`LightSettings`
    both say, and all that opening a data directory's SQLite file needs (:mod:`radgate.db.light`)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def database_url(self) -> str: ...

    def full(self) -> Settings: ...


@dataclass
class Gathered:
    """Every key given, as nested values (``{"server": {"dicom_port": "11113"}}``), and where each came from
    (``"server.dicom_port" -> "RADGATE_SERVER_DICOM_PORT"``)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def _env_values(
    environ: Mapping[str, str], is_list: Callable[[str], bool]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``RADGATE_<SECTION>_<KEY>`` variables as nested values, and the variable each key came from."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "RADGATE_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in SECTION_NAMES:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                dotted = f"{section}.{key}"
                value: Any = raw
                if is_list(dotted):
                    value = [part.strip() for part in raw.split(",") if part.strip()]
                out.setdefault(section, {})[key] = value
                names[dotted] = name
                break
        else:
            out[rest] = raw
            names[rest] = name
    return out, names


def _merge(into: dict[str, Any], values: dict[str, Any], source: str, sources: dict[str, str]) -> None:
    """Lay ``values`` over ``into`` (a section's keys one by one), noting where each key came from."""
    for key, value in values.items():
        if key in SECTION_NAMES and isinstance(value, dict):
            section = into.setdefault(key, {})
            if not isinstance(section, dict):  # a file's `server = 1`: the schema's error names it
                continue
            for sub, sub_value in value.items():
                section[sub] = sub_value
                sources[f"{key}.{sub}"] = source
        else:
            into[key] = value
            sources[key] = source


def gather(
    config: Path | None = None,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    is_list: Callable[[str], bool] = lambda dotted: False,
) -> Gathered:
    """The TOML file, the environment and explicit overrides laid over one another, later winning.

    The file is ``config``, else ``$RADGATE_CONFIG``, else ``DATA_DIR/radgate.toml`` when it exists.
    ``overrides`` use dotted keys with ``__`` for the dot (``server__dicom_port=11113``); ``None`` leaves
    a key alone (a CLI flag that was not given). ``is_list(dotted)`` says which environment variables hold
    comma-separated lists (the schema knows). Raises :class:`ConfigError` for a file that is missing, not
    readable or not TOML.
    """
    environ = os.environ if environ is None else environ
    env, env_names = _env_values(environ, is_list)
    if data_dir is None and "data_dir" in env:
        data_dir = Path(env["data_dir"])
    if config is None and environ.get("RADGATE_CONFIG"):
        config = Path(environ["RADGATE_CONFIG"])
    if config is None and data_dir is not None and (data_dir / "radgate.toml").is_file():
        config = data_dir / "radgate.toml"
    out = Gathered()
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"Config file {str(config)!r} does not exist.")
        try:
            file_values = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {str(config)!r} is not valid TOML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {str(config)!r} cannot be read: {exc}") from exc
        _merge(out.values, file_values, str(config), out.sources)
    _merge(out.values, env, "", out.sources)
    out.sources.update(env_names)  # each key from the environment: the variable's name
    if data_dir is not None:
        out.values["data_dir"] = str(data_dir)
        out.sources["data_dir"] = env_names.get("data_dir", "--data-dir")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        path = key.split("__")
        nested: dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        _merge(out.values, nested, f"command line ({'.'.join(path)})", out.sources)
    return out


@dataclass(frozen=True)
class LightSettings:
    """The settings a read-only listing needs, read without the schema (:func:`light_settings`).

    :meth:`full` validates every setting from the same sources, for a command that needs more.
    """

    data_dir: Path
    database_url: str
    log_level: str
    log_format: str
    config: Path | None = None
    given_data_dir: Path | None = None
    environ: Mapping[str, str] | None = None

    def full(self) -> Settings:
        """:func:`radgate.config.load_settings` from the same sources (raises its :class:`ConfigError`)."""
        from radgate.config import load_settings

        return load_settings(config=self.config, data_dir=self.given_data_dir, environ=self.environ)


def light_settings(
    config: Path | None = None, data_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> LightSettings | None:
    """The data directory, database URL and log keys as the schema would read them; None when one of them
    is not a plain string, or the log format not one radgate knows, so that the caller validates
    everything (:meth:`LightSettings.full`) and its error names the key. Raises :class:`ConfigError` for
    a config file that is missing or not TOML, as :func:`radgate.config.load_settings` does."""
    values = gather(config, data_dir, environ).values
    database = values.get("database", {})
    if not isinstance(database, dict):
        return None
    raw = {
        "data_dir": values.get("data_dir", str(DEFAULT_DATA_DIR)),
        "url": database.get("url", ""),
        "log_level": values.get("log_level", DEFAULT_LOG_LEVEL),
        "log_format": values.get("log_format", DEFAULT_LOG_FORMAT),
    }
    if not all(isinstance(v, str) for v in raw.values()) or raw["log_format"] not in LOG_FORMATS:
        return None
    directory = Path(raw["data_dir"])
    return LightSettings(
        data_dir=directory,
        database_url=raw["url"] or default_database_url(directory),
        log_level=raw["log_level"],
        log_format=raw["log_format"],
        config=config,
        given_data_dir=data_dir,
        environ=environ,
    )
