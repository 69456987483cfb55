"""Monitoring test helpers: simulated sites with and without a known change, a plug-in rule, a webhook receiver.

The sites are written straight into the tables (:func:`radgate.monitoring.simulate.simulate_site`): studies
planned by :mod:`radgate.synth` (dates, vendor per month, labels), scores from a binormal model per vendor,
no pixels rendered, so that a year or two of months is quick to build.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from radgate.config import MonitoringSettings
from radgate.monitoring.rules import Finding, RuleContext
from radgate.synth.scenario import Scenario, builtin_scenario, parse_scenario

__all__ = ["EveryPeriodRule", "Receiver", "demo_site", "receiver", "steady_site"]


def demo_site() -> Scenario:
    """The demo story: 12 months, a new Agfa DR room from month 8 (2025-08)."""
    return builtin_scenario("demo-site")


def steady_site(months: int = 24, per_month: int = 300) -> Scenario:
    """No change at all: the demo site's first vendor mix for every month."""
    return parse_scenario(
        {
            "scenario": {
                "name": "steady-site",
                "start": dt.date(2024, 1, 1),
                "months": months,
                "studies_per_month": per_month,
                "prevalence": 0.15,
            },
            "vendors": [{"from_month": 1, "mix": {"ge-dx": 0.6, "fuji-cr": 0.1, "carestream-portable": 0.3}}],
        }
    )


class EveryPeriodRule:
    """A third-party rule, as a plug-in would be written: fires once per monitored period."""

    name = "every_period"
    sound = False
    description = "test plug-in: fires in every monitored period"

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings

    def evaluate(self, context: RuleContext) -> list[Finding]:
        return [
            Finding(self.name, context.deployment, context.site, "all", p.key, p.end, f"period {p.key}", {})
            for p in context.monitored_periods()
        ]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that answers 500 to the first ``fail_first`` requests, then 200."""

    url: str
    fail_first: int
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def receiver(fail_first: int = 1) -> Iterator[Receiver]:
    state = Receiver("", fail_first)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"headers": dict(self.headers), "body": body})
            status = 500 if len(state.requests) <= state.fail_first else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"ok": status == 200}).encode())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/radgate"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
