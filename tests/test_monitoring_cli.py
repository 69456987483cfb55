"""``radgate monitor run|report`` and ``radgate alerts list|ack|resolve`` end to end (JSON on stdout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import radgate.cli.monitoring  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from radgate.db import open_database
from radgate.monitoring.simulate import simulate_site
from tests.helpers.monitoring import demo_site

ALERT_KEYS = {"rule", "deployment", "scope", "period", "opened_at", "status", "detail"}


runner = CliRunner()


def radgate(data_dir: Path, *args: str) -> Result:
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)], env={"RADGATE_CONFIG": ""})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("moncli")
    db = open_database(f"sqlite:///{root / 'radgate.sqlite'}")
    simulate_site(db, demo_site(), seed=1)
    db.dispose()
    return root


def test_run_list_ack_resolve_report(data_dir: Path) -> None:
    run = radgate(data_dir, "monitor", "run", "--until", "2026-02-28", "--json")
    assert run.exit_code == 0, run.output
    payload = json.loads(run.stdout)
    assert payload["predictions"] == 1440 and payload["opened"]
    assert payload["deployments"][0]["periods"][7]["period"] == "2025-08"

    listed = radgate(data_dir, "alerts", "list", "--json")
    alerts = json.loads(listed.stdout)["alerts"]
    assert alerts and all(set(a) >= ALERT_KEYS for a in alerts)
    scanner = next(a for a in alerts if a["rule"] == "new_scanner")
    assert scanner["period"] == "2025-08" and scanner["detail"]["scanner"]["Manufacturer"] == "Agfa"

    ack = radgate(data_dir, "alerts", "ack", str(scanner["id"]), "--note", "new room", "--by", "dr-director")
    assert ack.exit_code == 0, ack.output
    again = radgate(data_dir, "alerts", "ack", str(scanner["id"]), "--note", "again")
    assert again.exit_code == 1 and "only an open alert" in again.stderr and "Traceback" not in again.stderr
    done = radgate(data_dir, "alerts", "resolve", str(scanner["id"]), "--note", "validated")
    assert done.exit_code == 0
    resolved = json.loads(radgate(data_dir, "alerts", "list", "--status", "resolved", "--json").stdout)[
        "alerts"
    ]
    assert [a["id"] for a in resolved] == [scanner["id"]]
    assert resolved[0]["acknowledged_by"] == "dr-director" and resolved[0]["resolve_note"] == "validated"

    bad = radgate(data_dir, "monitor", "run", "--until", "30/09/2025")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr

    out = data_dir / "report"
    report = radgate(data_dir, "monitor", "report", "--period", "2025-09", "--out", str(out))
    assert report.exit_code == 0, report.output
    html = (out / "monitoring-report.html").read_text()
    assert "Monitoring report 2025-09" in html and html.count("data:image/png;base64,") == 5
    assert (out / "monitoring-report.pdf").read_bytes().startswith(b"%PDF")
    empty = radgate(data_dir, "monitor", "report", "--period", "2030-01", "--out", str(out))
    assert empty.exit_code == 2 and "no predictions acquired in 2030-01" in empty.stderr
