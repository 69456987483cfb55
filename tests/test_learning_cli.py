"""The retraining loop through the command line on a simulated site: queue, truth import, compare, lock,
promote, changes, rollback, pool (JSON on stdout, one-line errors)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

import radgate.cli.learning  # noqa: F401  (registers the commands)
import radgate.cli.validation  # noqa: F401
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from tests.helpers.learning import paired_site

runner = CliRunner()


def radgate(settings: Settings, *args: str) -> Result:
    return runner.invoke(app, [*args, "--data-dir", str(settings.data_dir)], env={"RADGATE_CONFIG": ""})


def test_loop_end_to_end(tmp_path: Path, settings: Settings, db: Database) -> None:
    paired_site(tmp_path, settings, db, n=800, label_share=0.7, challenger_gain=2.5)

    queued = radgate(
        settings,
        "learn",
        "queue",
        "--deployment",
        "champion",
        "--budget",
        "25",
        "--strategy",
        "uncertainty",
        "--json",
        "--by",
        "ds",
    )
    assert queued.exit_code == 0, queued.output
    cases = json.loads(queued.stdout)
    assert len(cases) == 25 and all({"SeriesInstanceUID", "score", "reason"} <= set(c) for c in cases)
    truth = tmp_path / "labels.csv"
    with truth.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SeriesInstanceUID", "label", "source", "date"])
        for c in cases:
            w.writerow([c["SeriesInstanceUID"], 1, "radiologist", "2025-11-01"])
    imported = radgate(settings, "truth", "import", str(truth))
    assert imported.exit_code == 0, imported.output
    requests = json.loads(radgate(settings, "learn", "requests", "--status", "labelled", "--json").stdout)
    assert len(requests) == 25

    compared = radgate(settings, "compare", "champion", "challenger", "--json")
    assert compared.exit_code == 0, compared.output
    c = json.loads(compared.stdout)
    assert {"n_pairs", "auc_champion", "auc_challenger", "delta_auc", "delong_p", "mcnemar_p"} <= set(c)
    assert c["delta_auc"] == pytest.approx(c["auc_challenger"] - c["auc_champion"], abs=1e-12)
    table = radgate(settings, "compare", "champion", "challenger")
    assert table.exit_code == 0 and "Per scanner" in table.stdout and "not a medical device" in table.stdout

    unlocked = radgate(settings, "deployments", "promote", "challenger", "--override", "x")
    assert (
        unlocked.exit_code != 0 and "lock-criteria" in unlocked.stderr and "Traceback" not in unlocked.output
    )
    criteria = tmp_path / "promotion.toml"
    criteria.write_text("[promotion]\nmin_pairs = 300\ndelta_auc_ci_lower_min = 0.0\n")
    locked = radgate(
        settings,
        "deployments",
        "lock-criteria",
        "challenger",
        "--champion",
        "champion",
        "--criteria",
        str(criteria),
        "--by",
        "ds",
    )
    assert locked.exit_code == 0, locked.output
    gated = radgate(settings, "deployments", "promote", "challenger", "--by", "dr-lead")
    assert gated.exit_code != 0 and "not ready to go live" in gated.stderr
    promoted = radgate(
        settings,
        "deployments",
        "promote",
        "challenger",
        "--by",
        "dr-lead",
        "--override",
        "validated on paired shadow cases",
        "--json",
    )
    assert promoted.exit_code == 0, promoted.output
    record = json.loads(promoted.stdout)
    assert record["approved_by"] == "dr-lead" and record["override"] == "validated on paired shadow cases"
    changes = json.loads(radgate(settings, "deployments", "changes", "challenger", "--json").stdout)
    assert [r["status"] for r in changes] == ["promoted"]
    back = radgate(
        settings, "deployments", "rollback", "challenger", "--by", "dr-lead", "--override", "restore"
    )
    assert back.exit_code == 0, back.output
    assert "champion live" in back.stdout
    again = radgate(settings, "deployments", "rollback", "challenger")
    assert again.exit_code != 0 and "no promotion" in again.stderr


def test_pool_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for name, shift in (("north", 1.5), ("south", 0.8)):
        with (tmp_path / f"{name}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["uid", "score", "label"])
            for i in range(200):
                y = int(i % 4 == 0)
                w.writerow([f"{name}{i}", 1 / (1 + np.exp(-(rng.normal(-1, 1) + shift * y))), y])
    out = runner.invoke(
        app,
        ["pool", str(tmp_path / "north.csv"), str(tmp_path / "south.csv"), "--json", "--threshold", "0.5"],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [s["site"] for s in data["sites"]] == ["north", "south"] and "i2" in data["heterogeneity"]
    bad = runner.invoke(app, ["pool", str(tmp_path / "north.csv"), str(tmp_path / "missing.csv")])
    assert bad.exit_code != 0 and "missing.csv" in bad.stderr and "Traceback" not in bad.output
