"""Console logging: one human line per event, or one JSON object per line for machines.

Two kinds of records reach the console. *Events* (``event(log, "listening", message, **fields)``) are what
an operator watches for; in JSON each carries its name and fields, so a script can wait for
``{"event": "listening", "dicom_port": ..., "http_port": ...}`` instead of parsing text. Other records are
logged as usual.

Some events are also reported by the command that caused them: ``radgate import`` prints every rejection,
``radgate models install`` the model it registered. Such records are logged with ``extra=REPORTED``; while
:func:`caller_reports` is on (every one-shot command, and ``serve`` until it is listening) they are left off
the console, so nothing shows twice. A rejection by the running server is still logged: nobody else
reports it.

This module imports only the standard library: ``radgate --version`` and the light commands use it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

__all__ = ["REPORTED", "caller_reports", "configure", "event"]

#: ``log.warning(..., extra=REPORTED)``: an event the command that caused it reports itself.
REPORTED: dict[str, Any] = {"radgate_reported": True}

_state = {"caller_reports": False}
#: The logger of ``radgate serve``'s lifecycle events (radgate.cli.serving).
SERVE_LOGGER = "radgate.serve"
_HANDLER_NAME = "radgate-console"


def caller_reports(on: bool) -> None:
    """Whether records logged with ``extra=REPORTED`` are left off the console (the caller prints them)."""
    _state["caller_reports"] = on


def event(log: logging.Logger, name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event: ``message`` for people, ``name`` and ``fields`` for machines (``--log-format json``)."""
    log.log(level, message, extra={"radgate_event": name, "radgate_fields": fields})


class _Reported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_state["caller_reports"] and getattr(record, "radgate_reported", False))


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS message`` for a server's events, ``warning: message`` for a command's warnings."""

    def __init__(self, timestamps: bool) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        if record.exc_info and record.levelno >= logging.ERROR:
            # A bug, not a user error: keep the traceback (it names no patient data, only code).
            message += "\n" + self.formatException(record.exc_info)
        if self.timestamps:
            stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            return f"{stamp} {message}"
        return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, event fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        name = getattr(record, "radgate_event", None)
        if name is not None:
            out["event"] = name
            out.update(getattr(record, "radgate_fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _StandardStream(logging.StreamHandler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when a record is emitted (not when set up)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._sys_stream = name

    @property
    def stream(self) -> IO[str]:
        current: IO[str] = getattr(sys, self._sys_stream)
        return current

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # StreamHandler.__init__ sets it; the current sys stream is used instead


def configure(
    level: str = "INFO",
    fmt: str = "human",
    stream: IO[str] | str | None = None,
    *,
    timestamps: bool = False,
) -> logging.Handler:
    """Route radgate's logs to one console handler (replacing a previous one); returns the handler.

    ``level`` is the configured ``log_level``; libraries that narrate every association or SQL statement
    (pynetdicom, uvicorn's access log) stay at WARNING unless it is DEBUG.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.StreamHandler[IO[str]]
    if stream is None or isinstance(stream, str):  # "stdout" | "stderr": whatever sys has at emit time
        handler = _StandardStream(stream or "stderr")
    else:
        handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter(timestamps))
    handler.addFilter(_Reported())
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    # `radgate serve`'s own events (applied config, listening, stopping) show at any log_level: scripts wait
    # for "listening", and an operator must see where the gateway listens even with log_level = "WARNING".
    logging.getLogger(SERVE_LOGGER).setLevel(min(root.level, logging.INFO))
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in ("pynetdicom", "uvicorn", "uvicorn.error", "uvicorn.access", "multipart"):
        logging.getLogger(name).setLevel(quiet)
    # pydicom narrates what it tolerates in a file ("Expected implicit VR ..."); radgate says what it did with
    # the file (stored, quarantined, rejected and why), so pydicom's own warnings only show at DEBUG.
    logging.getLogger("pydicom").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.ERROR)
    return handler
