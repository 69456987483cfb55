"""One line per event on the console (issue 16: a model registered twice, each import rejection twice)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from typer.testing import CliRunner

import radgate.cli as cli
from radgate import logs
from tests.helpers.datadir import make_data_dir


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200", "RADGATE_CONFIG": None})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_registered_model_is_said_once(tmp_path: Path) -> None:
    output = invoke("deployments", "list", "--data-dir", str(make_data_dir(tmp_path / "d")))
    assert output.count("registered") == 1 and "demo-pneumothorax 1.0.0" in output, output


def test_each_import_rejection_is_said_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("not DICOM")
    output = invoke("import", str(folder), "--data-dir", str(make_data_dir(tmp_path / "d")))
    rejected = [line for line in output.splitlines() if "notes.txt" in line or "Rejected instance" in line]
    assert len(rejected) == 1, output


def test_reported_records_are_kept_off_the_console_only_while_the_caller_reports_them() -> None:
    out = io.StringIO()
    log = logging.getLogger("radgate.test-console")
    logs.configure("INFO", "human", out)
    try:
        logs.caller_reports(True)
        log.warning("rejected x", extra=logs.REPORTED)
        log.warning("disk almost full")
        logs.caller_reports(False)
        log.warning("rejected y", extra=logs.REPORTED)
    finally:
        logs.caller_reports(False)
    assert out.getvalue().splitlines() == ["warning: disk almost full", "warning: rejected y"]


def test_json_records_carry_the_event_and_its_fields() -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    logs.event(logging.getLogger("radgate.serve"), "listening", "radgate listening", dicom_port=11112)
    record = json.loads(out.getvalue())
    assert (record["event"], record["dicom_port"], record["level"], record["message"]) == (
        "listening", 11112, "info", "radgate listening"
    )
