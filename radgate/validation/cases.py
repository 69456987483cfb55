"""The cases a validation analyses: plain records in, arrays out, and the case flow (what was left out, why).

Every source — a CSV file today, radgate's own predictions joined with the final reads tomorrow — produces
a list of :class:`CaseRecord`; :meth:`CaseSet.from_records` keeps the analysable ones and counts the rest
by reason, so the report's case-flow section (received → not applicable / failed → analysed) is exact.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from radgate.errors import Invalid

if TYPE_CHECKING:
    from radgate.validation.columnar import CaseUIDs

__all__ = [
    "NO_LABEL",
    "NO_SCORE",
    "UID_COLUMNS",
    "CaseFlow",
    "CaseRecord",
    "CaseSet",
    "CaseTableError",
    "no_cases_reason",
    "read_cases_csv",
]

NO_SCORE = "failed: no score"
NO_LABEL = "no reference label"
UID_COLUMNS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "uid")
_MISSING = {"", "nan", "na", "n/a", "null", "none"}


class CaseTableError(Invalid, ValueError):
    """A case table cannot be read: a column is missing or a value is malformed (row and value named)."""


@dataclass(frozen=True)
class CaseRecord:
    """One case: its UID, the model's score, the reference label and the columns used for subgroups.

    ``score`` or ``label`` may be ``None`` (no output, no reference yet); ``exclusion`` names why a case that
    arrived is not analysed (``"not applicable: lateral view"``, ``"failed: decode error"``).
    """

    uid: str
    score: float | None
    label: int | None
    attributes: Mapping[str, str] = field(default_factory=dict)
    other_score: float | None = None
    exclusion: str | None = None


@dataclass(frozen=True)
class CaseFlow:
    """Cases received, left out (by reason) and analysed."""

    received: int
    excluded: Mapping[str, int]
    analysed: int

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "excluded": dict(self.excluded), "analysed": self.analysed}


@dataclass(frozen=True)
class CaseSet:
    """The analysable cases as arrays (scores, 0/1 labels, attributes by column) plus the case flow."""

    uids: tuple[str, ...] | CaseUIDs  # CaseUIDs: read on demand from a large CSV
    scores: NDArray[np.float64]
    labels: NDArray[np.int64]
    attributes: Mapping[str, tuple[str, ...]]
    other_scores: NDArray[np.float64] | None  # NaN where a case has no comparison score
    flow: CaseFlow
    source: str

    @classmethod
    def from_records(
        cls, records: Iterable[CaseRecord], columns: Sequence[str] = (), source: str = "records"
    ) -> CaseSet:
        """Keep records with a score, a label and no exclusion; count the others by reason."""
        kept: list[CaseRecord] = []
        excluded: Counter[str] = Counter()
        received = 0
        for rec in records:
            received += 1
            if rec.exclusion:
                excluded[rec.exclusion] += 1
            elif rec.score is None:
                excluded[NO_SCORE] += 1
            elif rec.label is None:
                excluded[NO_LABEL] += 1
            else:
                kept.append(rec)
        for col in columns:
            missing = sum(1 for rec in kept if col not in rec.attributes)
            if missing:
                available = sorted({k for rec in kept for k in rec.attributes})
                raise CaseTableError(
                    f"subgroup column {col!r} is missing on {missing} of {len(kept)} case(s)"
                    + (f"; the cases have: {', '.join(available)}" if available else "")
                )
        has_other = any(rec.other_score is not None for rec in kept)
        return cls(
            uids=tuple(rec.uid for rec in kept),
            scores=np.asarray([rec.score for rec in kept], dtype=np.float64),
            labels=np.asarray([rec.label for rec in kept], dtype=np.int64),
            attributes={col: tuple(rec.attributes[col] for rec in kept) for col in columns},
            other_scores=(
                np.asarray(
                    [np.nan if r.other_score is None else r.other_score for r in kept], dtype=np.float64
                )
                if has_other
                else None
            ),
            flow=CaseFlow(received, dict(sorted(excluded.items())), len(kept)),
            source=source,
        )

    @property
    def n(self) -> int:
        return int(self.labels.size)


def _parse_score(raw: str | None, row: int, column: str) -> float | None:
    text = (raw or "").strip()
    if text.lower() in _MISSING:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise CaseTableError(f"row {row}: score column {column!r} has {text!r}, expected a number") from exc
    if not math.isfinite(value):
        raise CaseTableError(f"row {row}: score column {column!r} has {text!r}, expected a finite number")
    return value


def _parse_label(raw: str | None, row: int, column: str) -> int | None:
    text = (raw or "").strip()
    if text.lower() in _MISSING:
        return None
    if text in {"0", "1", "0.0", "1.0"}:
        return int(float(text))
    raise CaseTableError(
        f"row {row}: label column {column!r} has {text!r}, expected 0 (negative) or 1 (positive)"
    )


def _routing_exclusion(row: Mapping[str, str | None]) -> str | None:
    """A row of ``radgate predictions export`` that the model never scored says why: keep that reason."""
    decision = (row.get("decision") or "").strip()
    if decision and decision != "matched":
        return f"{decision.replace('_', ' ')}: {(row.get('reason') or '').strip()}".rstrip(": ")
    return None


def read_cases_csv(
    path: Path,
    score_col: str,
    label_col: str | None,
    columns: Sequence[str] = (),
    uid_col: str | None = None,
    compare_col: str | None = None,
    labels_by_uid: Mapping[str, int] | None = None,
) -> CaseSet:
    """Read a CSV of cases (header row; one case per row) into a :class:`CaseSet`.

    ``uid_col`` defaults to the first of ``StudyInstanceUID``, ``SeriesInstanceUID``, ``SOPInstanceUID``,
    ``uid`` present (else the row number). An empty score (or ``NaN``/``NA``) counts as "failed: no score",
    an empty label as "no reference label"; anything else malformed is an error naming the row and value.
    Without ``label_col`` the labels come from ``labels_by_uid`` (the ground-truth table).
    """
    if label_col is None and labels_by_uid is None:
        raise CaseTableError("give a label column, or labels from the ground-truth table")
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CaseTableError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if uid_col is None:
            uid_col = next((c for c in UID_COLUMNS if c in header), None)
        wanted = [score_col, *columns]
        wanted += [c for c in (label_col, uid_col, compare_col) if c is not None]
        missing = [c for c in dict.fromkeys(wanted) if c not in header]
        if missing:
            raise CaseTableError(
                f"{path.name}: column(s) {', '.join(repr(c) for c in missing)} not found; the file has "
                f"{', '.join(repr(c) for c in header) or 'no header'}"
            )
        if label_col is None and uid_col is None:
            raise CaseTableError(f"{path.name}: labels from the ground-truth table need a UID column")
        from radgate.validation.columnar import read_cases_columnar

        fast = read_cases_columnar(
            path, header, score_col, label_col, columns, uid_col, compare_col, labels_by_uid
        )
        if fast is not None:  # else a value is malformed: the rows below name it
            return fast
        records = []
        for row_no, row in enumerate(reader, start=2):
            uid = (row.get(uid_col) or "").strip() if uid_col else f"row {row_no}"
            if label_col is not None:
                label = _parse_label(row.get(label_col), row_no, label_col)
            else:
                assert labels_by_uid is not None
                label = labels_by_uid.get(uid)
            records.append(
                CaseRecord(
                    uid=uid or f"row {row_no}",
                    score=_parse_score(row.get(score_col), row_no, score_col),
                    label=label,
                    attributes={c: (row.get(c) or "").strip() for c in columns},
                    other_score=_parse_score(row.get(compare_col), row_no, compare_col)
                    if compare_col
                    else None,
                    exclusion=_routing_exclusion(row),
                )
            )
    return CaseSet.from_records(records, columns, source=str(path))


def no_cases_reason(
    cases: CaseSet,
    name: str,
    *,
    label_col: str | None,
    uid_col: str | None = None,
    file_uids: Sequence[str] = (),
    truth_labels: int | None = None,
    truth_example: str | None = None,
) -> str:
    """Why no case of ``name`` can be analysed, with the counts and an example, and what to do.

    Tells apart a file with no rows, a label column empty in every row, UIDs that match none of the
    ground-truth table's labels (``truth_labels`` of them, e.g. ``truth_example``), an empty ground-truth
    table, and cases left out for other reasons (the case flow's).
    """
    flow = cases.flow
    if flow.received == 0:
        return (
            f"{name} has a header but no rows: there is no case to validate. If it is a "
            "`radgate predictions export`, the export said why it wrote 0 rows."
        )
    unlabelled = flow.excluded.get(NO_LABEL, 0)
    if unlabelled and unlabelled == flow.received - sum(
        n for reason, n in flow.excluded.items() if reason != NO_LABEL
    ):
        example = next((u for u in file_uids if u), None)
        if label_col is not None:
            return (
                f"column {label_col!r} of {name} is empty in all {unlabelled} row(s) that have a score: no "
                "case has a reference label. Fill it with 0/1, or leave out --label-col to take the labels "
                "imported with `radgate truth import`."
            )
        if not truth_labels:
            return (
                f"none of the {unlabelled} case(s) in {name} has a reference label: the ground-truth table "
                "is empty. Import labels with `radgate truth import LABELS.csv`, or give --label-col."
            )
        return (
            f"none of the {unlabelled} UID(s) in {name} (column {uid_col or 'uid'!s}"
            + (f", e.g. {example}" if example else "")
            + f") matches one of the {truth_labels} reference label(s) in the database"
            + (f" (e.g. {truth_example})" if truth_example else "")
            + ". Labels are matched by StudyInstanceUID or SeriesInstanceUID: check --uid-col, and that "
            "the labels are of these studies."
        )
    left_out = ", ".join(f"{reason}: {n}" for reason, n in flow.excluded.items())
    return f"none of the {flow.received} case(s) in {name} can be analysed ({left_out})."
