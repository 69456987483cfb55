"""`radgate deployments add` / `remove`: one owner per deployment (config file or command line), the gate.

Issue 16: no way to create a deployment from the command line; a config file's `mode = "live"` bypassed
the go-live gate (issue 9).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import radgate.cli as cli
from tests.helpers.datadir import make_data_dir


def run(tmp_path: Path, *args: str, toml: str | None = None) -> Result:
    argv = [*args, "--data-dir", str(make_data_dir(tmp_path / "data"))]
    if toml is not None:
        (tmp_path / "radgate.toml").write_text(toml)
        argv += ["--config", str(tmp_path / "radgate.toml")]
    result = CliRunner().invoke(cli.app, argv, env={"COLUMNS": "200", "RADGATE_CONFIG": None})
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def listed(tmp_path: Path, toml: str | None = None) -> dict[str, dict[str, object]]:
    result = run(tmp_path, "deployments", "list", "--json", toml=toml)
    assert result.exit_code == 0, result.output
    start = result.stdout.index("[")
    return {d["name"]: d for d in json.loads(result.stdout[start:])}


MODEL = ("--model", "demo-pneumothorax", "--version", "1.0.0")


def test_add_creates_a_silent_deployment_with_rules_and_remove_deletes_it(tmp_path: Path) -> None:
    result = run(
        tmp_path, "deployments", "add", "ptx-cli", *MODEL, "--rule", "ViewPosition=PA", "--rule",
        "PatientAge=18..90", "--by", "dr.lee",
    )
    assert result.exit_code == 0, result.output
    assert "Deployment ptx-cli created: demo-pneumothorax 1.0.0" in result.output and "silent" in result.output
    d = listed(tmp_path)["ptx-cli"]
    assert (d["mode"], d["managed_by"], d["model"], d["version"]) == ("silent", "cli", "demo-pneumothorax", "1.0.0")
    rules = " ".join(d["rules"])  # type: ignore[arg-type]
    assert "ViewPosition" in rules and "PA" in rules and "18" in rules and "90" in rules
    shown = run(tmp_path, "deployments", "show", "ptx-cli")
    assert "created" in shown.output and "dr.lee" in shown.output
    again = run(tmp_path, "deployments", "add", "ptx-cli", *MODEL)
    assert again.exit_code == 2 and "already exists" in again.output
    removed = run(tmp_path, "deployments", "remove", "ptx-cli")
    assert removed.exit_code == 0 and "Deployment ptx-cli removed." in removed.output
    assert "ptx-cli" not in listed(tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bad name", *MODEL), "deployment name 'bad name' is invalid"),
        (("ptx", "--model", "nope", "--version", "1.0.0"), "nope"),
        (("ptx", *MODEL, "--mode", "loud"), "mode is 'loud'; expected one of off, silent, shadow, live"),
        (("ptx", *MODEL, "--rule", "ViewPosition"), "--rule 'ViewPosition' is not a rule"),
        (("ptx", *MODEL, "--rule", "NoSuchAttribute=1"), "NoSuchAttribute"),
    ],
)
def test_add_refuses_bad_values_in_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run(tmp_path, "deployments", "add", *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_add_live_passes_the_gate_and_a_refusal_creates_nothing(tmp_path: Path) -> None:
    refused = run(tmp_path, "deployments", "add", "ptx", *MODEL, "--mode", "live")
    assert refused.exit_code == 1 and "is not ready to go live" in refused.output
    assert "ptx" not in listed(tmp_path)
    forced = run(tmp_path, "deployments", "add", "ptx", *MODEL, "--mode", "live", "--override", "pilot, signed off")
    assert forced.exit_code == 0, forced.output
    assert "Readiness overridden" in forced.output and listed(tmp_path)["ptx"]["mode"] == "live"
    history = run(tmp_path, "deployments", "show", "ptx").output
    assert "readiness_override" in history and "pilot, signed off" in history


CONFIG = '[[deployments]]\nname = "ptx-config"\nmodel = "demo-pneumothorax"\nversion = "1.0.0"\nmode = "{mode}"\n'


def test_config_and_command_line_each_manage_their_own(tmp_path: Path) -> None:
    toml = CONFIG.format(mode="silent")
    assert run(tmp_path, "deployments", "add", "ptx-cli", *MODEL, toml=toml).exit_code == 0
    both = listed(tmp_path, toml)
    assert (both["ptx-config"]["managed_by"], both["ptx-cli"]["managed_by"]) == ("config", "cli")
    # The config does not list ptx-cli: it stays as it is (a config only turns off its own entries).
    assert both["ptx-cli"]["mode"] == "silent"
    clash = run(tmp_path, "deployments", "add", "ptx-config", *MODEL, toml=toml)
    assert clash.exit_code == 1 and "declared in" in clash.output and "radgate.toml" in clash.output
    config_owned = run(tmp_path, "deployments", "remove", "ptx-config", toml=toml)
    assert config_owned.exit_code == 1 and "managed by the config file" in config_owned.output
    taken = CONFIG.format(mode="silent").replace("ptx-config", "ptx-cli")
    refused = run(tmp_path, "deployments", "list", toml=taken)
    assert refused.exit_code == 2 and "managed from the command line" in refused.output
    # Removed from the config: turned off; its history stays.
    assert listed(tmp_path, "deployments = []\n")["ptx-config"]["mode"] == "off"


def test_a_config_mode_live_passes_the_gate(tmp_path: Path) -> None:
    new_live = run(tmp_path, "deployments", "list", toml=CONFIG.format(mode="live"))
    assert new_live.exit_code == 1 and "go-live gate" in new_live.output and "radgate.toml" in new_live.output
    assert listed(tmp_path, CONFIG.format(mode="silent"))["ptx-config"]["mode"] == "silent"
    # silent -> live by editing the file: refused while the checks fail, nothing changed
    edited = run(tmp_path, "deployments", "list", toml=CONFIG.format(mode="live"))
    assert edited.exit_code == 1 and "is not ready to go live" in edited.output
    assert listed(tmp_path, CONFIG.format(mode="silent"))["ptx-config"]["mode"] == "silent"
    # Through the gate (here with a recorded override), then the file may say live.
    assert run(
        tmp_path, "deployments", "set-mode", "ptx-config", "live", "--override", "test", toml=CONFIG.format(mode="silent")
    ).exit_code == 0
    assert listed(tmp_path, CONFIG.format(mode="live"))["ptx-config"]["mode"] == "live"


def test_remove_keeps_a_deployment_that_results_refer_to(tmp_path: Path) -> None:
    from radgate.clock import utcnow
    from radgate.config import load_settings
    from radgate.db import database_for
    from radgate.engine.tables import Job

    assert run(tmp_path, "deployments", "add", "ptx-cli", *MODEL).exit_code == 0
    db = database_for(load_settings(data_dir=make_data_dir(tmp_path / "data"), environ={}))
    now = utcnow()
    with db.session() as s:
        s.add(Job(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3", deployment="ptx-cli",
                  model_name="demo-pneumothorax", model_version="1.0.0", status="queued", attempts=0, max_attempts=3,
                  available_at=now, enqueued_at=now))
    result = run(tmp_path, "deployments", "remove", "ptx-cli")
    assert result.exit_code == 0 and "turned off" in result.output
    assert listed(tmp_path)["ptx-cli"]["mode"] == "off"
