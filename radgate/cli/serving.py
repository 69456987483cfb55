"""``radgate serve``'s run: check everything, start the gateway, one console line per event.

Not a command module (``radgate.cli.ingest`` declares ``serve``); kept apart so that the start-up order is
in one place: settings (one line naming the file and key), :func:`radgate.services.startup.check_startup`
(deployments, models, the go-live gate, ports), then the gateway, then the ``listening`` event::

    2026-12-02 00:10:00Z radgate 0.1.0 listening: DICOM RADGATE@0.0.0.0:11112, web http://127.0.0.1:11180

With ``--log-format json`` every event is one JSON object on standard output; scripts wait for
``"event": "listening"`` and read ``dicom_port`` and ``http_port`` from it.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from radgate import __version__, logs
from radgate.cli.app import cli_errors, fail, settings_from

log = logging.getLogger(logs.SERVE_LOGGER)


def run_serve(data_dir: Path | None, config: Path | None, workers: bool = True, **overrides: Any) -> None:
    settings = settings_from(data_dir, config, server=True, **overrides)
    with cli_errors():
        from radgate.services.startup import check_startup

        startup = check_startup(settings, config)
    for change in startup.changes:
        logs.event(log, "config", change)
    from radgate.gateway import Gateway

    gateway = Gateway(settings, startup.db, workers=workers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        gateway.start()
    except (OSError, RuntimeError) as exc:
        # check_startup found the ports free; something took one meanwhile, or the TLS files are unusable.
        raise fail(f"Could not start the gateway: {exc}") from None
    logs.caller_reports(False)  # from now on nobody else reports what the server does
    server = settings.server
    logs.event(
        log,
        "listening",
        f"radgate {__version__} listening: DICOM {server.ae_title}@{server.host}:{gateway.dicom.port}, "
        f"web {gateway.http_url} (data in {settings.data_dir}; Ctrl-C stops)",
        version=__version__,
        ae_title=server.ae_title,
        host=server.host,
        dicom_port=gateway.dicom.port,
        http_port=gateway.http_port,
        url=gateway.http_url,
        data_dir=str(settings.data_dir),
    )
    stop.wait()
    logs.event(log, "stopping", "radgate stopping: finishing the work in hand")
    gateway.stop()
    logs.event(log, "stopped", "radgate stopped")
