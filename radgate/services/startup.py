"""What ``radgate serve`` checks before it opens a port: the whole configuration, then the ports.

Everything a user can get wrong is found here, and reported as one line naming the file, the key or the
port, before the gateway starts a thread or binds a socket: the settings (already checked by
:func:`radgate.config.load_settings`), the allowlist entries, every ``[[deployments]]`` entry (keys, mode,
the model and version installed, rules, operating point, findings, and the go-live gate for ``live``), and
whether the DICOM and HTTP ports are free. ``radgate worker`` checks the instance store the same way
(:func:`check_store`): an S3 bucket that does not exist or cannot be reached is one line before anything
runs.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from radgate.config import Settings
from radgate.db import Database, database_for
from radgate.errors import Conflict, Invalid

__all__ = ["Startup", "check_port", "check_startup", "check_store"]


@dataclass(frozen=True)
class Startup:
    """The checked start: the database and what applying the config changed (in words)."""

    db: Database
    changes: list[str]


def check_port(host: str, port: int, what: str, flag: str, key: str) -> None:
    """Raise a one-line :class:`Conflict` when ``host:port`` cannot be listened on (0: any free port)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Invalid(
            f"server.host {host!r} does not resolve ({exc.strerror}); give an address of this machine "
            "(--host, server.host)."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(
                    f"{what} port {port} on {host} is already in use (another radgate, a PACS, Orthanc or "
                    f"storescp?); stop that program or choose another port with {flag} PORT ({key})."
                ) from None
            if exc.errno == errno.EACCES:
                raise Conflict(
                    f"{what} port {port} on {host} needs privileges (ports below 1024); choose a port above "
                    f"1023 with {flag} PORT ({key}), or forward {port} to it."
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise Invalid(
                    f"server.host {host!r} is not an address of this machine; give one of its addresses "
                    "or 0.0.0.0 (--host, server.host)."
                ) from None
            raise Conflict(f"{what} port {port} on {host} cannot be opened: {exc.strerror}.") from None


def check_store(settings: Settings) -> None:
    """Raise a one-line :class:`Invalid` when the instance store (``[store]``) cannot be used."""
    from radgate.storage import BlobStoreError, blobs_for

    try:
        blobs_for(settings).check()
    except BlobStoreError as exc:
        raise Invalid(f"[store] {exc.reason}") from None


def check_startup(settings: Settings, config: Path | None) -> Startup:
    """Check everything ``serve`` needs, in the order a user would fix it; apply the config's deployments.

    Raises a :class:`radgate.errors.RadgateError` with one line; nothing has listened on a port yet.
    """
    from radgate.engine.service import prepare
    from radgate.ingest.scp import parse_allow_entry

    for entry in settings.server.allow_ae:
        try:
            parse_allow_entry(entry)
        except ValueError as exc:
            raise Invalid(f"server.allow_ae: {exc}") from None
    if settings.server.dicom_port and settings.server.dicom_port == settings.server.http_port:
        raise Invalid(
            f"server.dicom_port and server.http_port are both {settings.server.dicom_port}; give them "
            "different ports."
        )
    db = database_for(settings)
    check_store(settings)
    changes = prepare(db, settings, config)  # deployments: checked, gated, applied in one transaction
    check_port(settings.server.host, settings.server.dicom_port, "DICOM", "--dicom-port", "server.dicom_port")
    check_port(settings.server.host, settings.server.http_port, "HTTP", "--http-port", "server.http_port")
    return Startup(db, changes)
