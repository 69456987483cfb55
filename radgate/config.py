"""radgate's settings: one TOML file, environment overrides, documented keys.

Resolution order, later wins:

1. the defaults below;
2. the TOML file (``--config FILE``, else ``$RADGATE_CONFIG``, else ``DATA_DIR/radgate.toml`` if present);
3. environment variables ``RADGATE_<SECTION>_<KEY>`` (for example ``RADGATE_SERVER_DICOM_PORT=11112``);
4. command-line flags (``--data-dir``, ``--dicom-port`` ...), applied by the CLI.

The schema is declared once, as pydantic v2 models with ``extra="forbid"``: a section is a model, a key is a
field with its type and default. Every complaint is one line naming where the value came from (the file,
the environment variable or the command line), the key, the value and what was expected, e.g.
``/etc/radgate.toml: Setting 'server.dicom_port' must be int, got 'abc'.``

Every key is documented in ``docs/configuration.md``; ``tests/test_config.py`` fails when one is not.
Which file is read and which source wins is decided in :mod:`radgate.config_sources` (no pydantic there: the
light commands read their four keys from it without this schema).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from radgate.config_sources import (
    DEFAULT_DATA_DIR,
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    LOG_FORMATS,
    ConfigError,
    default_database_url,
    gather,
)

__all__ = [
    "DEFAULT_HTTP_PORT",
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
    "StoreSettings",
    "TlsSettings",
    "iter_keys",
    "load_settings",
]

#: radgate's HTTP port. Not 8042 (Orthanc's), 8080/8443 (dcm4chee, Tomcat, most Java PACS), 3000 (OHIF),
#: 4242 (Orthanc DICOM), 104/11112 (DICOM), 5432 (PostgreSQL) or 8000/5000 (development servers): a gateway
#: runs beside a PACS and a viewer, often on the same host. 11180 sits next to the DICOM port 11112, so the
#: pair is easy to remember and to open in a firewall.
DEFAULT_HTTP_PORT = 11180


def _not_bool(value: Any) -> Any:
    """TOML ``true`` is not a number (pydantic would take it as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
Bool = bool  # pydantic's lax bool: true/false in TOML; 1/0, true/false, yes/no, on/off from the environment
Str = Annotated[str, Strict()]
StrList = list[Annotated[str, Strict()]]


class _Section(BaseModel):
    """A ``[section]`` of the file: unknown keys refused, values checked against the field's type."""

    model_config = ConfigDict(extra="forbid", validate_default=False)


class DatabaseSettings(_Section):
    url: Str = ""  # empty: SQLite (WAL) at DATA_DIR/radgate.sqlite
    echo: Bool = False
    sqlite_synchronous: Str = "FULL"  # FULL: every commit is on disk; NORMAL: survives process crashes only


class ServerSettings(_Section):
    host: Str = "127.0.0.1"
    ae_title: Str = "RADGATE"
    dicom_port: Int = 11112
    http_port: Int = DEFAULT_HTTP_PORT  # not 8042 (Orthanc's): see DEFAULT_HTTP_PORT
    allow_ae: StrList = Field(default_factory=list)  # AET or AET@HOST; empty: accept any caller
    max_pdu: Int = 0  # 0: unlimited, lets peers send large PDUs (much faster than 16 KiB)
    max_associations: Int = 16
    network_timeout_s: Float = 60.0
    max_request_bytes: Int = 4 * 1024**3  # an HTTP request body (STOW-RS), checked before reading
    http_idle_timeout_s: Float = 30.0  # no byte of a request body for this long: dropped (408)
    http_min_rate_bytes_s: Float = 1024.0  # after http_idle_timeout_s, a slower body is dropped (408)


def _scp_processes(value: Any) -> Any:
    """``ingest.scp_processes``: a whole number >= 1 or "auto" (the environment gives "2")."""
    given = value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == "auto" or (type(value) is int and value >= 1):
        return value
    value = given
    raise ValueError(
        f"Setting 'ingest.scp_processes' must be a whole number >= 1 or \"auto\", got {value!r} "
        "(1: every association in the gateway's own process)."
    )


ProcessCount = Annotated[int | str, BeforeValidator(_scp_processes)]


class IngestSettings(_Section):
    max_instance_bytes: Int = 2 * 1024**3
    scp_processes: ProcessCount = 1  # processes running DIMSE associations; "auto": one per CPU
    fsync: Bool = True
    reject_sop_classes: StrList = Field(default_factory=list)
    decode_check: Bool = True  # try to decode pixel data once stored; failures are quarantined
    # Rows x Columns x Samples x Frames x Bits Allocated, checked before decoding
    max_decoded_bytes: Int = 1024**3
    max_inflated_bytes: Int = 512 * 1024**2  # a Deflated transfer syntax dataset, inflated


class StoreSettings(_Section):
    """Where instance files live (:mod:`radgate.storage`); S3 credentials come from the AWS_* environment
    variables or boto3's other sources, never from this file."""

    backend: Str = "filesystem"  # filesystem: DATA_DIR/instances | s3: an S3-compatible object store
    s3_endpoint_url: Str = ""  # empty: AWS's own endpoint for s3_region
    s3_bucket: Str = ""
    s3_prefix: Str = ""  # keys are PREFIX + <Study>/<Series>/<SOP>.<digest>.dcm
    s3_region: Str = ""  # empty: boto3's default (AWS_DEFAULT_REGION, ~/.aws/config)
    s3_cache_gib: Float = 20.0  # DATA_DIR/s3-cache, least recently used copies dropped


class AssemblySettings(_Section):
    quiet_period_s: Float = 30.0
    incomplete_policy: Str = "process_partial"  # wait | process_partial | skip
    poll_interval_s: Float = 1.0


class InferenceSettings(_Section):
    workers: Int = 1
    intra_op_threads: Int = 2
    providers: StrList = Field(default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    batch_size: Int = 8
    lease_s: Float = 60.0
    max_attempts: Int = 3
    retry_backoff_s: Float = 2.0
    poll_interval_s: Float = 0.5
    explanations: Bool = True
    allow_spinning: Bool = False
    max_images_per_series: Int = 32


class ResultsSettings(_Section):
    send_to: StrList = Field(default_factory=list)  # AET@HOST:PORT, default C-STORE destinations
    outbox_max_attempts: Int = 8
    outbox_backoff_s: Float = 5.0
    outbox_poll_s: Float = 1.0
    folder_destination: Str = ""  # empty: DATA_DIR/outbox-folder when no other destination exists
    release: Str = "immediate"  # immediate | after_review (sent only after a radiologist's review)


class PolicySettings(_Section):
    # The go-live gate (radgate readiness) and local validation of subgroups
    min_positives: Int = 100  # a local validation needs this many positives (and negatives) ...
    min_negatives: Int = 100  # ... to pass sample_size and to validate a subgroup at the site
    stability_months: Int = 6  # protocol_stability: no new scanner, software or kernel in this many months
    max_fp_per_tp: Float = 10.0  # prevalence: expected false positives per true positive at the threshold
    max_outside_share: Float = 0.2  # subgroup_coverage: share of cases outside the validated subgroups


class MonitoringSettings(_Section):
    """``[monitoring]``: periods, baseline, rules and their parameters, alerts (docs/configuration.md)."""

    period: Str = "month"  # week | month | quarter, by acquisition date (StudyDate)
    reference_period: Str = ""  # "2025-01..2025-03" (period keys or ISO dates); empty: go-live validation
    reference_periods: Int = 3  # without a go-live validation or reference_period: the first N periods
    rules: StrList = Field(
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
    plugins: StrList = Field(default_factory=list)  # "package.module:RuleClass", each a MonitoringRule
    subgroups: StrList = Field(default_factory=lambda: ["ViewPosition", "PatientSex", "AgeBand"])
    min_positives: Int = 10  # per period, for the performance rules
    min_negatives: Int = 10
    auc_margin: Float = 0.02  # auc_drop: point AUC < baseline - margin (the article's heuristic)
    auc_ci_margin: Float = 0.0  # auc_drop_ci: one-sided upper bound < baseline - margin
    auc_ci_confidence: Float = 0.95
    cusum_in_control_years: Float = 2.0  # in-control ARL, in years of the reference's case volume
    cusum_odds_ratio: Float = 2.0  # the shift each CUSUM is tuned for: error odds x this
    cusum_reference_guard: Float = 0.9  # in-control rate: one-sided upper Wilson bound of the reference's
    drift_categorical: StrList = Field(
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
    drift_numeric: StrList = Field(
        default_factory=lambda: [
            "PatientAge",
            "KVP",
            "Exposure",
            "PixelSpacing",
            "Rows",
            "Columns",
            "SliceThickness",
        ]
    )
    drift_categorical_method: Str = "jensen_shannon"  # jensen_shannon | chi2
    drift_numeric_method: Str = "ks"  # ks | wasserstein
    drift_chunks: Int = 50
    drift_sigmas: Float = 3.0
    flag_rate_alpha: Float = 0.001  # output_drift: two-sided binomial test of the period's flag rate
    cbpe_margin: Float = 0.03  # cbpe: label-free AUC estimate < baseline - margin
    interval_s: Float = 3600.0  # `serve`: how often monitoring runs
    webhook_url: Str = ""  # empty: no webhook
    webhook_secret: Str = ""  # HMAC-SHA256 key for the X-Radgate-Signature header
    webhook_max_attempts: Int = 8
    webhook_backoff_s: Float = 5.0  # first retry after this, doubling each time
    webhook_timeout_s: Float = 10.0


class AuthSettings(_Section):
    session_idle_minutes: Float = 30.0  # a browser session unused this long is signed out
    session_max_hours: Float = 12.0  # and any session ends this long after sign-in
    lockout_attempts: Int = 5  # consecutive wrong passwords before the account is locked
    lockout_minutes: Float = 15.0
    min_password_length: Int = 12
    accept_any_called_ae: Bool = False  # False: associations must call this gateway's own AE title


class TlsSettings(_Section):
    cert_file: Str = ""  # PEM certificate (with chain) for HTTPS and DICOM TLS
    key_file: Str = ""  # PEM private key
    ca_file: Str = ""  # DICOM TLS: require client certificates signed by these CAs; empty: none asked
    http: Bool = False  # serve HTTPS instead of HTTP
    dicom: Bool = False  # DIMSE over TLS (PS3.15 Annex B) on server.dicom_port


class Settings(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    site: Str = "default"
    log_level: Str = DEFAULT_LOG_LEVEL
    log_format: Str = DEFAULT_LOG_FORMAT  # human: one line per event; json: one JSON object per line
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    assembly: AssemblySettings = Field(default_factory=AssemblySettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    # [[deployments]] tables, parsed and validated by radgate.routing (keys in docs/model-package.md).
    deployments: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.database.url or default_database_url(self.data_dir)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "instances"

    def full(self) -> Settings:
        """These settings (the :class:`radgate.config_sources.DatabaseLocation` that is already whole)."""
        return self

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"


#: The sections (``[server]`` ...) of :class:`Settings`, by key.
SECTIONS: dict[str, type[_Section]] = {
    name: typing.cast(type[_Section], f.annotation)
    for name, f in Settings.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, _Section)
}


def iter_keys(obj: Any = None, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    """Yield ``(dotted.key, default)`` for every setting, sections included as ``section.key``."""
    inst = obj if obj is not None else Settings()
    for name in type(inst).model_fields:
        value = getattr(inst, name)
        if isinstance(value, _Section):
            yield from iter_keys(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _field(dotted: str) -> Any:
    """The field of a dotted key (``server.dicom_port``), or ``None`` when there is none."""
    section, _, key = dotted.rpartition(".")
    model: type[BaseModel] = SECTIONS[section] if section else Settings
    if section and section not in SECTIONS:
        return None
    return model.model_fields.get(key)


def _is_list(dotted: str) -> bool:
    f = _field(dotted)
    return f is not None and typing.get_origin(f.annotation) is list


def _type_name(dotted: str) -> str:
    f = _field(dotted)
    if f is None:
        return "a table"
    annotation = f.annotation
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if typing.get_origin(item) is dict:
            return "an array of tables ([[deployments]])"
        return "a list of strings"
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is Path:
        return "a path (a string)"
    return getattr(annotation, "__name__", str(annotation))


def _explain(exc: ValidationError, sources: dict[str, str]) -> ConfigError:
    """pydantic's first complaint as radgate's one line: where, the key, the value, what was expected."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    if len(loc) > 2 and loc[0] in SECTIONS:  # an item of a list: server.allow_ae.0
        loc = loc[:2]
    dotted = ".".join(loc[:2]) if loc and loc[0] in SECTIONS else (loc[0] if loc else "")
    where = sources.get(dotted) or sources.get(loc[0] if loc else "", "")
    prefix = f"{where}: " if where else ""
    raw = error.get("input")
    if error["type"] == "extra_forbidden":
        return ConfigError(
            f"{prefix}Unknown setting {dotted!r}. See docs/configuration.md for the keys radgate understands."
        )
    if error["type"] == "model_type" or (error["type"] == "model_attributes_type"):
        return ConfigError(f"{prefix}Setting {dotted!r} must be a table ([{dotted}]), got {raw!r}.")
    if error["type"] == "value_error" and not str(error["msg"]).startswith("Value error, a boolean"):
        message = str(error["ctx"]["error"]) if "ctx" in error else str(error["msg"])
        return ConfigError(f"{prefix}{message}")
    return ConfigError(f"{prefix}Setting {dotted!r} must be {_type_name(dotted)}, got {raw!r}.")


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
    gathered = gather(config, data_dir, environ, overrides, is_list=_is_list)
    values, sources = gathered.values, gathered.sources
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise _explain(exc, sources) from None
    _validate(settings, sources)
    return settings


class _Bad(Exception):  # noqa: N818 - internal: a key and what is wrong with its value
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _validate(settings: Settings, sources: dict[str, str] | None = None) -> None:
    """The checks the types cannot say (choices, ranges, files that must exist), each naming its key."""
    try:
        _check(settings)
    except _Bad as bad:
        where = (sources or {}).get(bad.key, "")
        raise ConfigError(f"{where}: {bad.message}" if where else bad.message) from None


def _choice(key: str, value: str, allowed: typing.Collection[str]) -> None:
    if value not in allowed:
        raise _Bad(key, f"{key} is {value!r}; expected one of {sorted(allowed)}.")


def _check(settings: Settings) -> None:
    _choice("log_format", settings.log_format, LOG_FORMATS)
    if settings.database.sqlite_synchronous.upper() not in {"FULL", "NORMAL"}:
        raise _Bad(
            "database.sqlite_synchronous",
            f"database.sqlite_synchronous is {settings.database.sqlite_synchronous!r}; "
            "expected FULL or NORMAL.",
        )
    _choice(
        "assembly.incomplete_policy", settings.assembly.incomplete_policy, ("wait", "process_partial", "skip")
    )
    _choice("results.release", settings.results.release, ("immediate", "after_review"))
    _choice("store.backend", settings.store.backend, ("filesystem", "s3"))
    if settings.store.backend == "s3" and not settings.store.s3_bucket:
        raise _Bad("store.s3_bucket", 'store.s3_bucket is empty but store.backend is "s3"; name the bucket.')
    if settings.store.s3_cache_gib <= 0:
        raise _Bad(
            "store.s3_cache_gib",
            f"store.s3_cache_gib is {settings.store.s3_cache_gib}; expected a size in GiB above 0 (e.g. 20).",
        )
    _check_monitoring(settings.monitoring)
    for port_key in ("dicom_port", "http_port"):
        port = getattr(settings.server, port_key)
        if not 0 <= port <= 65535:
            raise _Bad(
                f"server.{port_key}", f"server.{port_key} is {port}; expected 0-65535 (0 picks a free port)."
            )
    if not 1 <= len(settings.server.ae_title) <= 16:
        raise _Bad(
            "server.ae_title", f"server.ae_title {settings.server.ae_title!r} must be 1 to 16 characters."
        )
    _check_auth_tls(settings)


def _check_monitoring(m: MonitoringSettings) -> None:
    _choice("monitoring.period", m.period, ("week", "month", "quarter"))
    _choice("monitoring.drift_categorical_method", m.drift_categorical_method, ("jensen_shannon", "chi2"))
    _choice("monitoring.drift_numeric_method", m.drift_numeric_method, ("ks", "wasserstein"))
    if not 0.5 < m.auc_ci_confidence < 1:
        raise _Bad(
            "monitoring.auc_ci_confidence",
            f"monitoring.auc_ci_confidence is {m.auc_ci_confidence}; expected a value in (0.5, 1).",
        )
    if not 0.5 <= m.cusum_reference_guard < 1:
        raise _Bad(
            "monitoring.cusum_reference_guard",
            f"monitoring.cusum_reference_guard is {m.cusum_reference_guard}; expected a value in [0.5, 1).",
        )
    if m.cusum_in_control_years <= 0:
        raise _Bad(
            "monitoring.cusum_in_control_years",
            f"monitoring.cusum_in_control_years is {m.cusum_in_control_years}; expected a value > 0.",
        )
    if m.cusum_odds_ratio <= 1:
        raise _Bad(
            "monitoring.cusum_odds_ratio",
            f"monitoring.cusum_odds_ratio is {m.cusum_odds_ratio}; expected a value > 1.",
        )
    for key, least in (("drift_chunks", 2), ("reference_periods", 1), ("webhook_max_attempts", 1)):
        if getattr(m, key) < least:
            raise _Bad(
                f"monitoring.{key}", f"monitoring.{key} is {getattr(m, key)}; expected {least} or more."
            )


def _check_auth_tls(settings: Settings) -> None:
    auth = settings.auth
    for key in ("session_idle_minutes", "session_max_hours", "lockout_minutes"):
        if getattr(auth, key) <= 0:
            raise _Bad(f"auth.{key}", f"auth.{key} is {getattr(auth, key)}; expected a positive number.")
    if auth.lockout_attempts < 1:
        raise _Bad(
            "auth.lockout_attempts", f"auth.lockout_attempts is {auth.lockout_attempts}; expected 1 or more."
        )
    if auth.min_password_length < 8:
        raise _Bad(
            "auth.min_password_length",
            f"auth.min_password_length is {auth.min_password_length}; expected 8 or more.",
        )
    tls = settings.tls
    if tls.http or tls.dicom:
        for key in ("cert_file", "key_file"):
            value = getattr(tls, key)
            if not value:
                raise _Bad(
                    f"tls.{key}", f"tls.{key} is empty but tls.http or tls.dicom is on; give a PEM file."
                )
            if not Path(value).is_file():
                raise _Bad(f"tls.{key}", f"tls.{key} {value!r} does not exist; give the path of a PEM file.")
    if tls.ca_file and not Path(tls.ca_file).is_file():
        raise _Bad(
            "tls.ca_file", f"tls.ca_file {tls.ca_file!r} does not exist; give a PEM file of CA certificates."
        )
