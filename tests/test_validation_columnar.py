"""The vectorised case-table reader gives exactly what the row-by-row reader gives, and hands anything
irregular back to it (so its error messages, naming row and value, are unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import radgate.validation.columnar as columnar
from radgate.validation.cases import CaseSet, CaseTableError, read_cases_csv

HEADER = "StudyInstanceUID,score,label,vendor,other,decision,reason\n"
ROWS = [
    "1.2.1,0.9,1,GE,0.8,matched,",
    "1.2.2, 0.1 ,0, Siemens ,NA,,",  # spaces around a score: the row reader's job
    "1.2.3,0.4,0.0,Philips,0.3,matched,",
    "1.2.4,,1,GE,0.2,,",  # no score
    "1.2.5,0.7,,GE,0.6,,",  # no label
    "1.2.6,NaN,1,Agfa,0.1,,",
    "1.2.7,0.2,NULL,Agfa,,,",
    "1.2.8,0.3,1.0,Canon,0.5,not_applicable,lateral view",
    ",0.6,0,Canon,0.4,failed,decode error",  # empty UID: "row N"
    "1.2.10,0.55,1,Fujifilm,None,matched,",
    "1.2.11,1e-3,0,GE,n/a,,",
    ",0.35,0,GE,0.2,,",  # analysed, without a UID
]


def write(path: Path, header: str, rows: list[str], newline: str = "\n", bom: bool = False) -> Path:
    text = header.replace("\n", newline) + "".join(r + newline for r in rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def row_reader(monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any) -> CaseSet:
    with monkeypatch.context() as m:
        m.setattr(columnar, "read_cases_columnar", lambda *a, **k: None)
        return read_cases_csv(*args, **kwargs)


def assert_same(a: CaseSet, b: CaseSet) -> None:
    assert tuple(a.uids) == tuple(b.uids)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.scores.dtype == b.scores.dtype and a.labels.dtype == b.labels.dtype
    assert {k: tuple(v) for k, v in a.attributes.items()} == {k: tuple(v) for k, v in b.attributes.items()}
    if a.other_scores is None or b.other_scores is None:
        assert a.other_scores is None and b.other_scores is None
    else:
        np.testing.assert_array_equal(a.other_scores, b.other_scores)
    assert a.flow == b.flow and a.source == b.source


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_same_cases_as_the_row_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, bom: bool) -> None:
    rows = [r for r in ROWS if " 0.1 " not in r]
    path = write(tmp_path / "c.csv", HEADER, rows, newline, bom)
    calls: list[object] = []
    real = columnar.read_cases_columnar
    monkeypatch.setattr(columnar, "read_cases_columnar", lambda *a: calls.append(r := real(*a)) or r)
    fast = read_cases_csv(path, "score", "label", ["vendor"], compare_col="other")
    monkeypatch.undo()
    assert isinstance(calls[0], CaseSet), "the vectorised reader handled the file"
    slow = row_reader(monkeypatch, path, "score", "label", ["vendor"], compare_col="other")
    assert_same(fast, slow)
    assert fast.flow.excluded == {
        "failed: decode error": 1, "failed: no score": 2, "no reference label": 2, "not applicable: lateral view": 1
    }
    assert fast.uids[0] == "1.2.1" and fast.uids[-1] == f"row {len(rows) + 1}"


def test_irregular_files_fall_back_and_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "spaces": (HEADER, ROWS),
        "quoted, with a newline": ("uid,score,label,site\n", ['a,0.2,1,"North, ward\n3"', "b,0.1,0,South"]),
        "no uid column": ("score,label\n", ["0.3,1", "0.2,0", "0.9,1"]),
        "mixed-case missing words": ("uid,score,label\n", ["a,nUlL,1", "b,0.5,NoNe", "c,0.7,1", "d,0.1,0"]),
        "header only": ("uid,score,label\n", []),
        "duplicate column": ("uid,score,label,score\n", ["a,0.1,1,0.9", "b,0.2,0,0.3"]),
    }
    for name, (header, rows) in cases.items():
        path = write(tmp_path / f"{name}.csv", header, rows)
        label = "label"
        fast = read_cases_csv(path, "score", label)
        slow = row_reader(monkeypatch, path, "score", label)
        assert_same(fast, slow)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,high,1", "row 3: score column 'score' has 'high', expected a number"),
        ("x,inf,1", "row 3: score column 'score' has 'inf', expected a finite number"),
        ("x,-nan,1", "row 3: score column 'score' has '-nan', expected a finite number"),
        ("x,0.5,2", "row 3: label column 'label' has '2', expected 0 (negative) or 1 (positive)"),
        ("x,0.5,1.00", "row 3: label column 'label' has '1.00', expected 0 (negative) or 1 (positive)"),
        ("x,0.5,yes", "row 3: label column 'label' has 'yes', expected 0 (negative) or 1 (positive)"),
    ],
)
def test_malformed_values_keep_their_messages(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", "uid,score,label\n", ["a,0.1,0", row, "b,0.9,1"])
    with pytest.raises(CaseTableError) as exc:
        read_cases_csv(path, "score", "label")
    assert str(exc.value) == message


def test_labels_from_the_ground_truth_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.csv", "StudyInstanceUID,score\n", ["1.2.1,0.9", " 1.2.2 ,0.2", "1.2.3,0.4", ",0.3"])
    truth = {"1.2.1": 1, "1.2.2": 0}
    fast = read_cases_csv(path, "score", None, labels_by_uid=truth)
    assert_same(fast, row_reader(monkeypatch, path, "score", None, labels_by_uid=truth))
    assert tuple(fast.uids) == ("1.2.1", "1.2.2") and fast.flow.excluded == {"no reference label": 2}


def test_uids_are_read_on_demand_and_a_changed_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "uid,score,label\n", ["a,0.9,1", "b,0.2,0", "c,,1", "d,0.4,0"])
    cases = read_cases_csv(path, "score", "label")
    assert isinstance(cases.uids, columnar.CaseUIDs)
    assert len(cases.uids) == 3 and cases.uids[1:] == ("b", "d") and cases.uids[-1] == "d"
    assert cases.uids == ("a", "b", "d")
    with pytest.raises(IndexError):
        cases.uids[3]
    later = read_cases_csv(path, "score", "label")
    path.write_text("uid,score,label\nz,0.9,1\ny,0.2,0\nx,0.1,1\n")
    with pytest.raises(CaseTableError, match="changed while"):
        later.uids[0]
