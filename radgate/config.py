"""radgate's settings: one TOML file, environment overrides, documented keys.

Resolution order, later wins:

1. the defaults below;
2. the TOML file (``--config FILE``, else ``$RADGATE_CONFIG``, else ``DATA_DIR/radgate.toml`` if present);
3. environment variables ``RADGATE_<SECTION>_<KEY>`` (for example ``RADGATE_SERVER_DICOM_PORT=11112``);
4. command-line flags (``--data-dir``, ``--dicom-port`` ...), applied by the CLI.

Every key is documented in ``docs/configuration.md``; ``tests/test_config.py`` fails when one is not.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radgate.errors import Invalid

__all__ = [
    "AssemblySettings",
    "AuthSettings",
    "ConfigError",
    "DatabaseSettings",
    "InferenceSettings",
    "IngestSettings",
    "PolicySettings",
    "MonitoringSettings",
    "ResultsSettings",
    "ServerSettings",
    "Settings",
    "TlsSettings",
    "iter_keys",
    "load_settings",
]

ENV_PREFIX = "RADGATE_"


class ConfigError(Invalid, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass
class DatabaseSettings:
    url: str = ""  # empty: SQLite (WAL) at DATA_DIR/radgate.sqlite
    echo: bool = False
    sqlite_synchronous: str = "FULL"  # FULL: every commit is on disk; NORMAL: survives process crashes only


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    ae_title: str = "RADGATE"
    dicom_port: int = 11112
    http_port: int = 8042
    allow_ae: list[str] = field(default_factory=list)  # AET or AET@HOST; empty: accept any caller
    max_pdu: int = 0  # 0: unlimited, lets peers send large PDUs (much faster than 16 KiB)
    max_associations: int = 16
    network_timeout_s: float = 60.0
    max_request_bytes: int = 4 * 1024**3  # an HTTP request body (STOW-RS), checked before reading
    http_idle_timeout_s: float = 30.0  # no byte of a request body for this long: dropped (408)
    http_min_rate_bytes_s: float = 1024.0  # after http_idle_timeout_s, a slower body is dropped (408)


@dataclass
class IngestSettings:
    max_instance_bytes: int = 2 * 1024**3
    fsync: bool = True
    reject_sop_classes: list[str] = field(default_factory=list)
    decode_check: bool = True  # try to decode pixel data once stored; failures are quarantined
    # Rows x Columns x Samples x Frames x Bits Allocated, checked before decoding
    max_decoded_bytes: int = 1024**3
    max_inflated_bytes: int = 512 * 1024**2  # a Deflated transfer syntax dataset, inflated


@dataclass
class AssemblySettings:
    quiet_period_s: float = 30.0
    incomplete_policy: str = "process_partial"  # wait | process_partial | skip
    poll_interval_s: float = 1.0


@dataclass
class InferenceSettings:
    workers: int = 1
    intra_op_threads: int = 2
    providers: list[str] = field(default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    batch_size: int = 8
    lease_s: float = 60.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    poll_interval_s: float = 0.5
    explanations: bool = True
    allow_spinning: bool = False
    max_images_per_series: int = 32


@dataclass
class ResultsSettings:
    send_to: list[str] = field(default_factory=list)  # AET@HOST:PORT, default C-STORE destinations
    outbox_max_attempts: int = 8
    outbox_backoff_s: float = 5.0
    outbox_poll_s: float = 1.0
    folder_destination: str = ""  # empty: DATA_DIR/outbox-folder when no other destination exists
    release: str = "immediate"  # immediate | after_review (sent only after a radiologist's review)


@dataclass
class PolicySettings:
    # The go-live gate (radgate readiness) and local validation of subgroups
    min_positives: int = 100  # a local validation needs this many positives (and negatives) ...
    min_negatives: int = 100  # ... to pass sample_size and to validate a subgroup at the site
    stability_months: int = 6  # protocol_stability: no new scanner, software or kernel in this many months
    max_fp_per_tp: float = 10.0  # prevalence: expected false positives per true positive at the threshold
    max_outside_share: float = 0.2  # subgroup_coverage: share of cases outside the validated subgroups


@dataclass
class MonitoringSettings:
    """``[monitoring]``: periods, baseline, rules and their parameters, alerts (docs/configuration.md)."""

    period: str = "month"  # week | month | quarter, by acquisition date (StudyDate)
    reference_period: str = ""  # "2025-01..2025-03" (period keys or ISO dates); empty: go-live validation
    reference_periods: int = 3  # without a go-live validation or reference_period: the first N periods
    rules: list[str] = field(
        default_factory=lambda: [
            "auc_drop",
            "auc_drop_ci",
            "cusum_sensitivity",
            "cusum_specificity",
            "input_drift",
            "output_drift",
            "new_scanner",
            "cbpe",
        ]
    )
    plugins: list[str] = field(default_factory=list)  # "package.module:RuleClass", each a MonitoringRule
    subgroups: list[str] = field(default_factory=lambda: ["ViewPosition", "PatientSex", "AgeBand"])
    min_positives: int = 10  # per period, for the performance rules
    min_negatives: int = 10
    auc_margin: float = 0.02  # auc_drop: point AUC < baseline - margin (the article's heuristic)
    auc_ci_margin: float = 0.0  # auc_drop_ci: one-sided upper bound < baseline - margin
    auc_ci_confidence: float = 0.95
    cusum_in_control_years: float = 2.0  # in-control ARL, in years of the reference's case volume
    cusum_odds_ratio: float = 2.0  # the shift each CUSUM is tuned for: error odds x this
    cusum_reference_guard: float = 0.9  # in-control rate: one-sided upper Wilson bound of the reference's
    drift_categorical: list[str] = field(
        default_factory=lambda: [
            "Manufacturer",
            "ManufacturerModelName",
            "StationName",
            "ConvolutionKernel",
            "ViewPosition",
            "PhotometricInterpretation",
            "BitsStored",
            "PatientSex",
        ]
    )
    drift_numeric: list[str] = field(
        default_factory=lambda: [
            "PatientAge", "KVP", "Exposure", "PixelSpacing", "Rows", "Columns", "SliceThickness"
        ]
    )
    drift_categorical_method: str = "jensen_shannon"  # jensen_shannon | chi2
    drift_numeric_method: str = "ks"  # ks | wasserstein
    drift_chunks: int = 50
    drift_sigmas: float = 3.0
    flag_rate_alpha: float = 0.001  # output_drift: two-sided binomial test of the period's flag rate
    cbpe_margin: float = 0.03  # cbpe: label-free AUC estimate < baseline - margin
    interval_s: float = 3600.0  # `serve`: how often monitoring runs
    webhook_url: str = ""  # empty: no webhook
    webhook_secret: str = ""  # HMAC-SHA256 key for the X-Radgate-Signature header
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 5.0  # first retry after this, doubling each time
    webhook_timeout_s: float = 10.0


@dataclass
class AuthSettings:
    session_idle_minutes: float = 30.0  # a browser session unused this long is signed out
    session_max_hours: float = 12.0  # and any session ends this long after sign-in
    lockout_attempts: int = 5  # consecutive wrong passwords before the account is locked
    lockout_minutes: float = 15.0
    min_password_length: int = 12
    accept_any_called_ae: bool = False  # False: associations must call this gateway's own AE title


@dataclass
class TlsSettings:
    cert_file: str = ""  # PEM certificate (with chain) for HTTPS and DICOM TLS
    key_file: str = ""  # PEM private key
    ca_file: str = ""  # DICOM TLS: require client certificates signed by these CAs; empty: none asked
    http: bool = False  # serve HTTPS instead of HTTP
    dicom: bool = False  # DIMSE over TLS (PS3.15 Annex B) on server.dicom_port


@dataclass
class Settings:
    data_dir: Path = Path("radgate-data")
    site: str = "default"
    log_level: str = "INFO"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    assembly: AssemblySettings = field(default_factory=AssemblySettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    results: ResultsSettings = field(default_factory=ResultsSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    # [[deployments]] tables, parsed and validated by radgate.routing (keys in docs/model-package.md).
    deployments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'radgate.sqlite').resolve()}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "instances"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"


def iter_keys(obj: Any = None, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    """Yield ``(dotted.key, default)`` for every setting, sections included as ``section.key``."""
    cls = type(obj) if obj is not None else Settings
    inst = obj if obj is not None else Settings()
    for f in dataclasses.fields(cls):
        value = getattr(inst, f.name)
        if dataclasses.is_dataclass(value):
            yield from iter_keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value


def _coerce(key: str, raw: Any, typ: Any) -> Any:
    """Convert ``raw`` (from TOML or an environment string) to the annotated type, or explain why not."""
    origin = typing.get_origin(typ)
    from_env = isinstance(raw, str)
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            if from_env and raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if from_env and raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if typ is int:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is str:
            if not isinstance(raw, str):
                raise ValueError
            return raw
        if typ is Path:
            return Path(raw)
        if origin is list and typing.get_args(typ) and typing.get_origin(typing.get_args(typ)[0]) is dict:
            if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
                raise ValueError
            return [dict(v) for v in raw]
        if origin is list:
            if from_env:
                return [part.strip() for part in raw.split(",") if part.strip()]
            if not isinstance(raw, list):
                raise ValueError
            return [str(v) for v in raw]
    except (TypeError, ValueError):
        pass
    else:
        raise ConfigError(f"Setting {key!r} has unsupported type {typ!r}.")
    raise ConfigError(f"Setting {key!r} must be {getattr(typ, '__name__', typ)}, got {raw!r}.")


def _apply(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, raw in values.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(
                f"Unknown setting {dotted!r}. See docs/configuration.md for the keys radgate understands."
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(raw, dict):
                raise ConfigError(f"Setting {dotted!r} must be a table ([{dotted}]), got {raw!r}.")
            _apply(current, raw, f"{dotted}.")
        else:
            setattr(obj, key, _coerce(dotted, raw, hints[key]))


def _env_values(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defaults = Settings()
    sections = {
        f.name for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(getattr(defaults, f.name))
    }
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "RADGATE_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                out.setdefault(section, {})[rest[len(section) + 1 :]] = raw
                break
        else:
            out[rest] = raw
    return out


def load_settings(
    config: Path | None = None,
    data_dir: Path | None = None,
    environ: typing.Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, the TOML file, the environment and explicit overrides.

    ``overrides`` use dotted keys with ``__`` for the dot, e.g. ``server__dicom_port=11113``; a value of
    ``None`` leaves the setting alone (so CLI flags that were not given change nothing).
    """
    environ = os.environ if environ is None else environ
    settings = Settings()
    env = _env_values(environ)
    if data_dir is None and "data_dir" in env:
        data_dir = Path(env["data_dir"])
    if config is None and environ.get("RADGATE_CONFIG"):
        config = Path(environ["RADGATE_CONFIG"])
    if config is None and data_dir is not None and (data_dir / "radgate.toml").is_file():
        config = data_dir / "radgate.toml"
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"Config file {str(config)!r} does not exist.")
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {str(config)!r} is not valid TOML: {exc}") from exc
        _apply(settings, values)
    _apply(settings, env)
    if data_dir is not None:
        settings.data_dir = Path(data_dir)
    for key, value in overrides.items():
        if value is None:
            continue
        path = key.split("__")
        target: Any = settings
        for part in path[:-1]:
            target = getattr(target, part)
        _apply(target, {path[-1]: value}, ".".join(path[:-1]) + "." if len(path) > 1 else "")
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.database.sqlite_synchronous.upper() not in {"FULL", "NORMAL"}:
        raise ConfigError(
            f"database.sqlite_synchronous is {settings.database.sqlite_synchronous!r}; "
            "expected FULL or NORMAL."
        )
    policies = {"wait", "process_partial", "skip"}
    if settings.assembly.incomplete_policy not in policies:
        raise ConfigError(
            f"assembly.incomplete_policy is {settings.assembly.incomplete_policy!r}; "
            f"expected one of {sorted(policies)}."
        )
    if settings.results.release not in {"immediate", "after_review"}:
        raise ConfigError(
            f"results.release is {settings.results.release!r}; expected immediate or after_review."
        )
    _validate_monitoring(settings.monitoring)
    for port_key in ("dicom_port", "http_port"):
        port = getattr(settings.server, port_key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"server.{port_key} is {port}; expected 0-65535 (0 picks a free port).")
    if not 1 <= len(settings.server.ae_title) <= 16:
        raise ConfigError(f"server.ae_title {settings.server.ae_title!r} must be 1 to 16 characters.")
    _validate_auth_tls(settings)


def _validate_monitoring(m: MonitoringSettings) -> None:
    choices = {
        "monitoring.period": (m.period, {"week", "month", "quarter"}),
        "monitoring.drift_categorical_method": (m.drift_categorical_method, {"jensen_shannon", "chi2"}),
        "monitoring.drift_numeric_method": (m.drift_numeric_method, {"ks", "wasserstein"}),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key} is {value!r}; expected one of {sorted(allowed)}.")
    if not 0.5 < m.auc_ci_confidence < 1:
        raise ConfigError(
            f"monitoring.auc_ci_confidence is {m.auc_ci_confidence}; expected a value in (0.5, 1)."
        )
    if not 0.5 <= m.cusum_reference_guard < 1:
        raise ConfigError(
            f"monitoring.cusum_reference_guard is {m.cusum_reference_guard}; expected a value in [0.5, 1)."
        )
    if m.cusum_in_control_years <= 0 or m.cusum_odds_ratio <= 1:
        raise ConfigError(
            f"monitoring.cusum_in_control_years ({m.cusum_in_control_years}) must be > 0 and "
            f"monitoring.cusum_odds_ratio ({m.cusum_odds_ratio}) > 1."
        )
    if m.drift_chunks < 2 or m.reference_periods < 1 or m.webhook_max_attempts < 1:
        raise ConfigError(
            "monitoring.drift_chunks must be >= 2, monitoring.reference_periods >= 1 and "
            "monitoring.webhook_max_attempts >= 1."
        )


def _validate_auth_tls(settings: Settings) -> None:
    auth = settings.auth
    for key in ("session_idle_minutes", "session_max_hours", "lockout_minutes"):
        if getattr(auth, key) <= 0:
            raise ConfigError(f"auth.{key} is {getattr(auth, key)}; expected a positive number.")
    if auth.lockout_attempts < 1:
        raise ConfigError(f"auth.lockout_attempts is {auth.lockout_attempts}; expected 1 or more.")
    if auth.min_password_length < 8:
        raise ConfigError(f"auth.min_password_length is {auth.min_password_length}; expected 8 or more.")
    tls = settings.tls
    if tls.http or tls.dicom:
        for key in ("cert_file", "key_file"):
            value = getattr(tls, key)
            if not value:
                raise ConfigError(f"tls.{key} is empty but tls.http or tls.dicom is on; give a PEM file.")
            if not Path(value).is_file():
                raise ConfigError(f"tls.{key} {value!r} does not exist; give the path of a PEM file.")
    if tls.ca_file and not Path(tls.ca_file).is_file():
        raise ConfigError(f"tls.ca_file {tls.ca_file!r} does not exist; give a PEM file of CA certificates.")
