"""`radgate validate` when no case can be analysed says which of the causes it is, with counts and a UID.

Issue 16: `validate` answered "labels are empty" both for an empty CSV and for UIDs that match no label.
Also `validate --pool`, the name issue 13 gives to what `radgate pool` does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import radgate.cli as cli
from tests.helpers.datadir import make_data_dir

runner = CliRunner()


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _validate(*args: str) -> tuple[int, str]:
    cli.register_commands()
    result = runner.invoke(cli.app, ["validate", *args])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


SCORES = [["1.2.3.1", "1.2.3.11", 0.9], ["1.2.3.2", "1.2.3.12", 0.2], ["1.2.3.3", "1.2.3.13", 0.7]]


def test_a_csv_with_no_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["SeriesInstanceUID", "score", "label"], [])
    code, out = _validate(str(path), "--score-col", "score", "--label-col", "label")
    assert code == 1 and "p.csv has a header but no rows" in out, out
    assert "labels are empty" not in out


def test_a_label_column_empty_in_every_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["SeriesInstanceUID", "score", "label"],
                  [[uid, score, ""] for _, uid, score in SCORES])
    code, out = _validate(str(path), "--score-col", "score", "--label-col", "label")
    assert code == 1 and "column 'label' of p.csv is empty in all 3 row(s)" in out, out


def test_labels_from_an_empty_ground_truth_table(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["StudyInstanceUID", "SeriesInstanceUID", "score"], SCORES)
    code, out = _validate(str(path), "--score-col", "score", "--uid-col", "SeriesInstanceUID",
                          "--data-dir", str(make_data_dir(tmp_path / "data")))
    assert code == 1 and "none of the 3 case(s) in p.csv has a reference label" in out, out
    assert "the ground-truth table is empty" in out and "radgate truth import" in out, out


def test_uids_that_match_no_reference_label(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data")
    labels = _write(tmp_path / "labels.csv", ["SeriesInstanceUID", "label", "source"],
                    [["9.9.1", 1, "consensus"], ["9.9.2", 0, "consensus"]])
    cli.register_commands()
    imported = runner.invoke(cli.app, ["truth", "import", str(labels), "--data-dir", str(data)])
    assert imported.exit_code == 0, imported.output
    path = _write(tmp_path / "p.csv", ["StudyInstanceUID", "SeriesInstanceUID", "score"], SCORES)
    code, out = _validate(str(path), "--score-col", "score", "--uid-col", "SeriesInstanceUID",
                          "--data-dir", str(data))
    assert code == 1, out
    assert (
        "none of the 3 UID(s) in p.csv (column SeriesInstanceUID, e.g. 1.2.3.11) matches one of the 2 "
        "reference label(s) in the database (e.g. 9.9.1)"
    ) in out, out
    # The same file keyed by the study UID column by default: the message names that column.
    code, out = _validate(str(path), "--score-col", "score", "--data-dir", str(data))
    assert "(column StudyInstanceUID, e.g. 1.2.3.1)" in out, out


def _sites(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(2)
    paths = []
    for name, shift in (("north", 1.5), ("south", 0.8)):
        rows = []
        for i in range(200):
            y = int(i % 4 == 0)
            rows.append([f"{name}{i}", 1 / (1 + np.exp(-(rng.normal(-1, 1) + shift * y))), y])
        paths.append(_write(tmp_path / f"{name}.csv", ["uid", "score", "label"], rows))
    return paths


def test_validate_pool_is_radgate_pool(tmp_path: Path) -> None:
    files = [str(p) for p in _sites(tmp_path)]
    code, _ = _validate("--pool", *files, "--json")
    assert code == 0
    via_validate = json.loads(runner.invoke(cli.app, ["validate", "--pool", *files, "--json"]).stdout)
    via_pool = json.loads(runner.invoke(cli.app, ["pool", *files, "--json"]).stdout)
    assert via_validate == via_pool and [s["site"] for s in via_validate["sites"]] == ["north", "south"]
    code, out = _validate(*files, "--score-col", "score", "--label-col", "label")
    assert code == 2 and "give one CSV file (2 given); several only with --pool" in out, out
    code, out = _validate(files[0])
    assert code == 2 and "--score-col is required" in out, out


def test_report_and_trial_say_the_same(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["StudyInstanceUID", "SeriesInstanceUID", "score"], SCORES)
    data = str(make_data_dir(tmp_path / "data"))
    cli.register_commands()
    report = runner.invoke(cli.app, ["report", "validation", "--csv", str(path), "--score-col", "score",
                                     "--out", str(tmp_path / "r"), "--data-dir", data])
    assert report.exit_code == 1 and "the ground-truth table is empty" in " ".join(report.output.split())
    criteria = tmp_path / "c.toml"
    criteria.write_text("[criteria]\nauc_min = 0.8\n", encoding="utf-8")
    trial = runner.invoke(cli.app, ["trial", "evaluate", str(path), "--score-col", "score", "--criteria",
                                    str(criteria), "--data-dir", data])
    assert trial.exit_code == 1 and "the ground-truth table is empty" in " ".join(trial.output.split()), trial.output
