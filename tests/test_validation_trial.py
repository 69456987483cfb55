"""Ground truth import and silent trials in the database (SQLite): upserts, precedence, criteria hash checks."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from radgate.db import Database, open_database
from radgate.validation.cases import CaseRecord, CaseSet
from radgate.validation.criteria import EXTEND, GO_LIVE
from radgate.validation.trial import TrialError, evaluate_trial, get_trial, start_trial
from radgate.validation.truth import TruthImportError, import_ground_truth, reference_labels

CRITERIA = """
[analysis]
threshold = 0.5
subgroups = ["Manufacturer"]

[criteria]
min_positives = 100
min_negatives = 100
auc_min = 0.75
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'radgate.sqlite'}")
    yield database
    database.dispose()


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_truth_import_is_idempotent_and_updates(db: Database, tmp_path: Path) -> None:
    header = ["StudyInstanceUID", "SeriesInstanceUID", "label", "source", "date"]
    f = write(
        tmp_path / "t.csv",
        header,
        [
            ["1.2.3.1", "", "1", "radiologist", "2026-01-05"],
            ["1.2.3.2", "", "0", "Radiologist", "20260106"],
            ["", "1.2.3.2.7", "1", "biopsy", ""],
        ],
    )
    first = import_ground_truth(db, f)
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    again = import_ground_truth(db, f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    write(f, header, [["1.2.3.1", "", "0", "radiologist", "2026-01-05"]])
    changed = import_ground_truth(db, f)
    assert (changed.inserted, changed.updated) == (0, 1)
    assert reference_labels(db, ["1.2.3.1", "1.2.3.2", "1.2.3.2.7", "9.9"]) == {
        "1.2.3.1": 0,
        "1.2.3.2": 0,
        "1.2.3.2.7": 1,
    }


def test_reference_standard_precedence(db: Database, tmp_path: Path) -> None:
    f = write(
        tmp_path / "t.csv",
        ["StudyInstanceUID", "label", "source", "date"],
        [
            ["1.5.1", "0", "radiologist", "2026-02-01"],
            ["1.5.1", "1", "biopsy", "2026-01-01"],  # biopsy outranks the radiologist's read, even if older
            ["1.5.2", "0", "radiologist", "2026-01-01"],
            ["1.5.2", "1", "radiologist-2", "2026-03-01"],  # unknown sources rank after the known ones
        ],
    )
    import_ground_truth(db, f)
    assert reference_labels(db, ["1.5.1", "1.5.2"]) == {"1.5.1": 1, "1.5.2": 0}


def test_truth_import_rejects_the_whole_file_naming_rows(db: Database, tmp_path: Path) -> None:
    f = write(
        tmp_path / "bad.csv",
        ["StudyInstanceUID", "label", "source", "date"],
        [
            ["1.2.3", "1", "biopsy", "2026-01-01"],
            ["1.2.x", "2", "", "yesterday"],
        ],
    )
    with pytest.raises(TruthImportError) as info:
        import_ground_truth(db, f)
    message = str(info.value)
    assert "4 problem(s), nothing imported" in message
    assert "row 3: StudyInstanceUID '1.2.x' is not a DICOM UID" in message
    assert "row 3: label '2', expected 0 or 1" in message
    assert "row 3: date 'yesterday'" in message
    assert reference_labels(db, ["1.2.3"]) == {}
    with pytest.raises(TruthImportError, match="missing column"):
        import_ground_truth(db, write(tmp_path / "nouid.csv", ["label", "source"], [["1", "biopsy"]]))


def cases(n: int = 600, seed: int = 0) -> CaseSet:
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        y = int(rng.random() < 0.4)
        recs.append(
            CaseRecord(
                f"1.9.{i}",
                float(1 / (1 + np.exp(-(1.6 * y + rng.normal() - 0.8)))),
                y,
                {"Manufacturer": str(rng.choice(["A", "B"]))},
            )
        )
    return CaseSet.from_records(recs, ["Manufacturer"])


def test_trial_records_criteria_and_flags_later_edits(db: Database, tmp_path: Path) -> None:
    crit = tmp_path / "criteria.toml"
    crit.write_text(CRITERIA)
    info = start_trial(
        db, crit, "demo-ptx", name="ptx-silent", model_version="1.0", now=datetime(2026, 1, 10, 9, 0)
    )
    assert info.criteria_text == CRITERIA and info.started_at == datetime(2026, 1, 10, 9, 0)
    with pytest.raises(TrialError, match="already exists"):
        start_trial(db, crit, "demo-ptx", name="ptx-silent")

    ev = evaluate_trial(db, "ptx-silent", cases())
    assert ev.flags == ()
    assert ev.verdict.recommendation == GO_LIVE

    # Someone lowers the bar after the start: flagged, and the recorded criteria still apply.
    crit.write_text(CRITERIA.replace("min_positives = 100", "min_positives = 10"))
    ev = evaluate_trial(db, "ptx-silent", cases(150, 1))
    assert any("criteria changed after the trial started" in f for f in ev.flags)
    assert ev.criteria.criteria["min_positives"] == 100
    assert ev.verdict.recommendation == EXTEND  # about 60 positives < 100 recorded
    assert get_trial(db, "ptx-silent").criteria_sha256 == info.criteria_sha256


def test_unknown_trial_lists_known_ones(db: Database, tmp_path: Path) -> None:
    crit = tmp_path / "c.toml"
    crit.write_text(CRITERIA)
    start_trial(db, crit, "m", name="first")
    with pytest.raises(TrialError, match="no trial named 'second'; known trials: first"):
        get_trial(db, "second")
