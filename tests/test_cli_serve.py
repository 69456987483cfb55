"""`radgate serve` checks the whole configuration before it opens a port; one console line per event.

Issue 16: an unknown model, version or bad mode in `[[deployments]]` gave ~40 lines of traceback after
"SCP listening"; a DICOM port in use did not name the port; `serve` printed a raw JSON line and repeated
log lines (the model registered twice).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from radgate import __version__
from tests.helpers.datadir import make_data_dir

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(
    r"radgate \d+\.\d+\.\d+ listening: DICOM RADGATE@127\.0\.0\.1:(\d+), web http://127\.0\.0\.1:(\d+)"
)


def serve(tmp_path: Path, *args: str, toml: str | None = None) -> tuple[int, str]:
    """`radgate serve` in this process (it stops at its first complaint, before starting anything)."""
    import radgate.cli as cli

    argv = ["serve", "--data-dir", str(make_data_dir(tmp_path / "data")), "--dicom-port", "0", "--http-port", "0", *args]
    if toml is not None:
        (tmp_path / "radgate.toml").write_text(toml)
        argv += ["--config", str(tmp_path / "radgate.toml")]
    result = CliRunner().invoke(cli.app, argv, env={"COLUMNS": "200", "RADGATE_CONFIG": None})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output and "listening" not in output, output
    errors = [line for line in lines if line.startswith(("Error:", "Configuration error:"))]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('model = "no-such-model"\nversion = "1.0.0"', r"deployment 'ptx'.*no-such-model"),
        ('model = "demo-pneumothorax"\nversion = "9.9.9"', r"deployment 'ptx'.*9\.9\.9"),
        (
            'model = "demo-pneumothorax"\nversion = "1.0.0"\nmode = "loud"',
            r"deployment 'ptx': mode is 'loud'; expected one of off, silent, shadow, live",
        ),
        (
            'model = "demo-pneumothorax"\nversion = "1.0.0"\nmodee = "silent"',
            r"unknown key\(s\) modee",
        ),
    ],
)
def test_a_bad_deployment_is_one_line_naming_the_file_before_any_port(
    tmp_path: Path, entry: str, expected: str
) -> None:
    code, output = serve(tmp_path, toml=f'[[deployments]]\nname = "ptx"\n{entry}\n')
    line = one_error_line(output)
    assert code == 2, output
    assert str(tmp_path / "radgate.toml") in line and re.search(expected, line), line


def test_a_bad_setting_names_the_file_and_the_key(tmp_path: Path) -> None:
    code, output = serve(tmp_path, toml="[server]\nmax_associations = 'many'\n")
    line = one_error_line(output)
    assert code == 2
    assert f"{tmp_path / 'radgate.toml'}: Setting 'server.max_associations' must be int, got 'many'" in line


def test_a_live_deployment_in_the_config_does_not_bypass_the_gate(tmp_path: Path) -> None:
    toml = '[[deployments]]\nname = "ptx"\nmodel = "demo-pneumothorax"\nversion = "1.0.0"\nmode = "live"\n'
    code, output = serve(tmp_path, toml=toml)
    line = one_error_line(output)
    assert code == 1 and "go-live gate" in line and "radgate deployments set-mode ptx live" in line, line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_dicom_port_in_use_is_named(tmp_path: Path, busy_port: int) -> None:
    code, output = serve(tmp_path, "--dicom-port", str(busy_port))
    line = one_error_line(output)
    assert code == 1
    assert f"DICOM port {busy_port} on 127.0.0.1 is already in use" in line and "--dicom-port" in line


def test_an_http_port_in_use_is_named(tmp_path: Path, busy_port: int) -> None:
    code, output = serve(tmp_path, "--http-port", str(busy_port))
    assert f"HTTP port {busy_port} on 127.0.0.1 is already in use" in one_error_line(output)


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    env.pop("RADGATE_CONFIG", None)
    argv = [sys.executable, "-m", "radgate", "serve", "--data-dir", str(make_data_dir(tmp_path / "data"))]
    return subprocess.Popen(
        [*argv, "--dicom-port", "0", "--http-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _until(proc: subprocess.Popen[str], pattern: str) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line) or time.monotonic() > deadline:
            break
    return lines


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return out, err


def test_serve_prints_one_human_line_per_event(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        lines = _until(proc, "listening")
    finally:
        rest, err = _stop(proc)
    lines += rest.splitlines()
    text = "\n".join(lines)
    assert LISTENING.search(text), text
    assert proc.returncode == 0, err
    assert not [line for line in lines if line.lstrip().startswith("{")], "a raw JSON line on the console"
    assert sum("registered demo-pneumothorax" in line for line in lines + err.splitlines()) == 1, text
    assert "SCP" not in text and "Traceback" not in text + err
    assert len(lines) == len(set(lines)), "a line printed twice"


def test_log_format_json_is_one_object_per_line_with_the_listening_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADGATE_LOG_LEVEL", "WARNING")  # serve's own events show at any level
    proc = _start(tmp_path, "--log-format", "json")
    try:
        lines = _until(proc, '"event": "listening"')
    finally:
        rest, _ = _stop(proc)
    records = [json.loads(line) for line in lines + rest.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    [ready] = [r for r in records if r.get("event") == "listening"]
    assert ready["version"] == __version__ and ready["dicom_port"] > 0 and ready["http_port"] > 0
    assert LISTENING.search(ready["message"])
    assert [r["event"] for r in records if r.get("event") in ("stopping", "stopped")] == ["stopping", "stopped"]
